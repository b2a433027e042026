"""Child processes of test_reliability_runtime.py: bootstraps to kill, and calls that must not hang.

    python reliability_child.py run MANIFEST [SEAM]   # a checked chain run; SEAM blocks it
    python reliability_child.py sim-fifo FIFO         # sim calls handed a FIFO

A SEAM monkeypatches one moment of the bootstrap: the child prints `ready`
there and blocks until its stdin closes, so the parent can SIGKILL it at
exactly that moment.  The seams:

* `dispatcher-temp`: the dispatcher's Init, replaced by its first steps
  (dispatcher.cpp atomic_install: `<final>.tmp.XXXXXX` created, half written)
  -- the state a writer killed between mkstemp and rename leaves;
* `so-copy`: the loader's dlopen of its private copy of the dispatcher;
* `op-json`: rtsBinaryLoadFromFile, while the op JSON exists;
* `no-finalize`: no block; the runner is never finalized and the process exits.

The last stdout line is a JSON report.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import string
import sys
from typing import Any


def _block() -> None:
    print("ready", flush=True)
    sys.stdin.buffer.read()  # until the parent closes it (or kills us)
    os._exit(3)


def _dispatcher_temp_seam() -> None:
    from simpler_build.cache.fingerprint import fingerprint_bytes
    from simpler_build.runtime.abi import DeviceArgs, LoaderKernelArgs
    from simpler_build.runtime.sim import loader

    def server_fn(_address: int) -> Any:
        def init(kernel_args: int) -> int:
            da = DeviceArgs.from_address(LoaderKernelArgs.from_address(kernel_args).device_args)
            inner = ctypes.string_at(da.inner_so_bin, da.inner_so_len)
            directory = ctypes.string_at(da.preinstall_dir).decode()
            os.makedirs(directory, exist_ok=True)  # as the dispatcher does
            suffix = "".join(random.choices(string.ascii_letters + string.digits, k=6))
            temp = f"{directory}/simpler_inner_{fingerprint_bytes(inner)}_0.so.tmp.{suffix}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, inner[: len(inner) // 2])
            _block()
            return 1

        return init

    loader._ServerFn = server_fn  # type: ignore[assignment]


def _so_copy_seam() -> None:
    real = ctypes.CDLL

    def cdll(name: str, mode: int = ctypes.DEFAULT_MODE, *args: Any, **kwargs: Any) -> Any:
        if mode & os.RTLD_NOLOAD == 0:
            _block()  # the first real dlopen: the loader's private copy (not a NOLOAD probe)
        return real(name, mode, *args, **kwargs)

    ctypes.CDLL = cdll  # type: ignore[misc]


def _op_json_seam() -> None:
    from simpler_build.runtime import sim

    def load(*_args: Any, **_kwargs: Any) -> Any:
        _block()

    sim.rtsBinaryLoadFromFile = load  # type: ignore[assignment]


SEAMS = {
    "dispatcher-temp": _dispatcher_temp_seam,
    "so-copy": _so_copy_seam,
    "op-json": _op_json_seam,
}


def run(manifest: str, seam: str | None) -> dict[str, Any]:
    import numpy as np

    from simpler_build.runtime import DeviceRunner, RuntimeBinaries, aicpu_op
    from simpler_build.runtime.samples import chain_graph, chain_reference

    bins = RuntimeBinaries.from_manifest(manifest)
    if seam in SEAMS:
        SEAMS[seam]()
    runner = DeviceRunner(bins)
    x = [np.full(256, v, dtype=np.float32) for v in (1.0, 2.0, 3.0)]
    (out,) = runner.prepare(chain_graph(256))(*x)
    ok = bool(np.allclose(out, chain_reference(*x)))
    if seam != "no-finalize":
        runner.finalize()
    return {"ok": ok, "process": aicpu_op.process_stats()}


def sim_fifo(fifo: str) -> dict[str, Any]:
    """Each sim call that reads a path, handed a FIFO: the error it gives (never a hang)."""
    from simpler_build.runtime import sim

    ctx = sim.rtCtxCreate(0, "a5", hbm_bytes=1 << 20)
    pre = sim.preinstall_dir(0)
    pre.mkdir(parents=True, exist_ok=True)
    so = "simpler_inner_0123456789abcdef.so"
    os.mkfifo(pre / so)
    doc = pre.parent / "op.json"
    info = {
        "kernelSo": so,
        "functionName": "f",
        "opKernelLib": "AICPUKernel",
        "userDefined": "False",
    }
    doc.write_text(json.dumps({"Op": {"opInfo": info}}))
    calls = {
        "json": lambda: sim.rtsBinaryLoadFromFile(ctx, fifo),
        "kernel_so": lambda: sim.rtsBinaryLoadFromFile(ctx, doc),
        "aicore": lambda: sim.rtRegisterAllKernel(ctx, fifo),
    }
    errors = {}
    for name, call in calls.items():
        try:
            call()
        except sim.CannError as exc:
            errors[name] = [exc.code, str(exc)]
    sim.rtCtxDestroy(ctx)
    return errors


def main(argv: list[str]) -> int:
    if argv[0] == "run":
        report = run(argv[1], argv[2] if len(argv) > 2 else None)
    elif argv[0] == "sim-fifo":
        report = sim_fifo(argv[1])
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
