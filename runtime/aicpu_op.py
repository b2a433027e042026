"""LoadAicpuOp: get an inner AICPU runtime SO onto the device once, and its entry points once.

docs/architecture.md "The bootstrap path": the dispatcher preinstalls the inner SO as
`simpler_inner_<fp>.so`; the host then loads an op-registration JSON whose
opTypes carry the fingerprint (two runtimes never collide) and resolves
`simpler_aicpu_init` / `simpler_aicpu_exec` a single time.  The bootstrap is
skipped when this process already did it for the same content and device
filesystem (a thread-safe set), or when another process left a preinstalled
file that verifies.  A preinstalled file that turns out corrupt at load time
is re-bootstrapped once; it is never run.

Nothing is left behind by a crash: the op JSON is an anonymous file, and the
dispatcher's temp files of a writer that was killed are swept by the next
process that looks at the preinstall directory (`sim.fs.PreinstallLock`).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import threading
import warnings
from collections import Counter
from pathlib import Path

from simpler_build.cache.fingerprint import fingerprint_bytes, fingerprint_file, inner_so_name
from simpler_build.files import read_regular

from . import sim
from .abi import ABI_VERSION, AICPU_EXEC, AICPU_INIT, DeviceArgs, InitArgs, LoaderKernelArgs
from .binaries import BinaryError, RuntimeBinaries
from .sim.errors import ACL_ERROR_RT_FILE_OPEN, ACL_ERROR_RT_KERNEL_SO_CORRUPT
from .sim.fs import PreinstallLock
from .sim.sharedlib import anonymous_file, path_of

#: rtAicpuKernelLaunchExWithArgs kernel type of the extend-kernels (KFC) loader.
KERNEL_TYPE_AICPU_KFC = 5
_LOADER_ENTRY = "DynTileFwkBackendKernelServerInit"

_BootKey = tuple[str, str]  # (preinstall directory, fingerprint)
_bootstrapped: set[_BootKey] = set()
_key_locks: dict[_BootKey, threading.Lock] = {}
_registry_lock = threading.Lock()
_process_stats: Counter[str] = Counter()


def _key_lock(key: _BootKey) -> threading.Lock:
    with _registry_lock:
        return _key_locks.setdefault(key, threading.Lock())


def process_stats() -> dict[str, int]:
    """Process-wide bootstrap counters: bootstraps and why the others were skipped."""
    with _registry_lock:
        return dict(_process_stats)


def forget_bootstraps() -> None:
    """Empty the in-process fingerprint set (tests and benchmarks only)."""
    with _registry_lock:
        _bootstrapped.clear()
        _process_stats.clear()


def op_types(fingerprint: str) -> dict[str, str]:
    """opType -> function name; the fingerprint suffix keeps two runtimes apart on a device."""
    return {
        f"SimplerAicpuInit_{fingerprint}": AICPU_INIT,
        f"SimplerAicpuExec_{fingerprint}": AICPU_EXEC,
    }


class LoadAicpuOp:
    """The loaded inner runtime of one runner: cached function handles and its op JSON."""

    def __init__(self, ctx: sim.Context, stream: sim.Stream, bins: RuntimeBinaries) -> None:
        self.ctx = ctx
        self.stream = stream
        self.bins = bins
        self.device_id = ctx.device.device_id
        self.fingerprint = fingerprint_file(bins.inner_so)
        if self.fingerprint != bins.inner_fingerprint:
            raise BinaryError(
                bins.inner_so,
                f"inner SO changed since it was validated ({bins.inner_fingerprint} -> "
                f"{self.fingerprint})",
            )
        self.preinstall_dir = sim.preinstall_dir(self.device_id)
        self.key: _BootKey = (str(self.preinstall_dir), self.fingerprint)
        self.bootstraps = 0
        self.launches = 0
        self.json_path: Path | None = None
        self._json: io.FileIO | None = None
        self.binary: sim.BinHandle | None = None
        try:
            self._ensure_preinstalled()
            self.json_path = self._write_op_json()
            self.binary = self._load()
            init_op, exec_op = op_types(self.fingerprint)
            self.init_fn = sim.rtsFuncGetByName(self.binary, init_op)
            self.exec_fn = sim.rtsFuncGetByName(self.binary, exec_op)
            self.info = self._init()
        except BaseException:
            self.finalize()
            raise

    # -- bootstrap ---------------------------------------------------------------------------
    @property
    def preinstalled_path(self) -> Path:
        return self.preinstall_dir / inner_so_name(self.fingerprint)

    def _verifies(self) -> bool:
        try:
            return fingerprint_file(self.preinstalled_path) == self.fingerprint
        except OSError:
            return False

    def _ensure_preinstalled(self, force: bool = False) -> None:
        with _key_lock(self.key):
            if not force:
                with _registry_lock:
                    if self.key in _bootstrapped:
                        _process_stats["skipped_in_process"] += 1
                        return
            with PreinstallLock(self.preinstall_dir) as lock:
                if lock.swept:
                    with _registry_lock:
                        _process_stats["swept_temp_files"] += len(lock.swept)
                if not force and self._verifies():
                    with _registry_lock:
                        _bootstrapped.add(self.key)
                        _process_stats["skipped_preinstalled"] += 1
                    return
                replaced = lock.make_room(self.preinstalled_path)
                if replaced is not None:
                    with _registry_lock:
                        _process_stats["replaced_special_files"] += 1
                    warnings.warn(
                        f"{self.preinstalled_path}: was {replaced}, not an installed SO; "
                        "replaced it",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                self._bootstrap()
            with _registry_lock:
                _bootstrapped.add(self.key)
                _process_stats["bootstraps"] += 1
            self.bootstraps += 1

    def _bootstrap(self) -> None:
        """Steps 1-4: copy both SOs to the device; the dispatcher preinstalls the inner one."""
        dispatcher = read_regular(self.bins.dispatcher)  # a FIFO: an error naming it, no hang
        inner = read_regular(self.bins.inner_so)
        if not inner:
            raise BinaryError(self.bins.inner_so, "inner SO is empty")
        # The bytes that go to the device are the ones hashed (docs/architecture.md: every
        # byte the runtime loads is checked against the manifest at load time).
        if fingerprint_bytes(inner) != self.fingerprint:
            raise BinaryError(self.bins.inner_so, "inner SO changed while being bootstrapped")
        expected = self.bins.fingerprints.get("dispatcher")
        if expected is not None and fingerprint_bytes(dispatcher) != expected:
            raise BinaryError(
                self.bins.dispatcher, f"dispatcher no longer hashes to {expected}; not loading it"
            )
        directory = os.fsencode(self.preinstall_dir) + b"\0"
        blocks: list[int] = []

        def to_device(data: bytes, tag: str) -> int:
            addr = sim.rtMalloc(self.ctx, len(data), tag)
            blocks.append(addr)
            sim.rtMemcpy(
                self.ctx, addr, len(data), _host(data), len(data), sim.MemcpyKind.HOST_TO_DEVICE
            )
            return addr

        try:
            da = DeviceArgs()
            da.aicpu_so_bin = to_device(dispatcher, "dispatcher SO")
            da.aicpu_so_len = len(dispatcher)
            da.inner_so_bin = to_device(inner, "inner SO bundle")
            da.inner_so_len = len(inner)
            da.device_id = self.device_id
            da.preinstall_dir = to_device(directory, "preinstall dir")
            ka = LoaderKernelArgs(device_args=to_device(bytes(da), "DeviceArgs"))
            sim.rtAicpuKernelLaunchExWithArgs(
                KERNEL_TYPE_AICPU_KFC, _LOADER_ENTRY, 1, ka, self.stream
            )
            sim.rtStreamSynchronize(self.stream)
        finally:
            for addr in blocks:
                with contextlib.suppress(sim.CannError):
                    sim.rtFree(self.ctx, addr)
        if not self._verifies():
            raise RuntimeError(
                f"dispatcher reported success but {self.preinstalled_path} is missing or corrupt"
            )

    # -- op registration ---------------------------------------------------------------------
    def _write_op_json(self) -> Path:
        """The op-registration JSON, as an anonymous file open until finalize().

        It has no name in any directory, so no crash, Ctrl-C or missing
        finalize() can leave it behind; `/proc/self/fd/N` reaches it meanwhile.
        """
        so = inner_so_name(self.fingerprint)
        doc = {
            op: {
                "opInfo": {
                    "opKernelLib": "CUSTAICPUKernel",
                    "engine": "DNN_VM_AICPU",
                    "kernelSo": so,
                    "functionName": fn,
                    "computeCost": "100",
                    "flagAsync": "False",
                    "flagPartial": "False",
                    "userDefined": "True",
                    "runtime": self.bins.runtime,
                    "fingerprint": self.fingerprint,
                }
            }
            for op, fn in op_types(self.fingerprint).items()
        }
        data = json.dumps(doc, indent=2, sort_keys=True).encode()
        self._json = anonymous_file(f"simpler_aicpu_{self.fingerprint}.json", data)
        return Path(path_of(self._json))

    def _load(self) -> sim.BinHandle:
        assert self.json_path is not None
        try:
            return sim.rtsBinaryLoadFromFile(self.ctx, self.json_path)
        except sim.CannError as exc:
            stale = exc.code in (ACL_ERROR_RT_FILE_OPEN, ACL_ERROR_RT_KERNEL_SO_CORRUPT)
            if not stale:
                raise
        # The preinstalled file vanished or was damaged after we trusted it: install it again.
        with _registry_lock:
            _bootstrapped.discard(self.key)
            _process_stats["rebootstraps"] += 1
        self._ensure_preinstalled(force=True)
        return sim.rtsBinaryLoadFromFile(self.ctx, self.json_path)

    def _init(self) -> InitArgs:
        """Call simpler_aicpu_init once and check the SO is the runtime and arch we expect.

        Its by-value argument is the device address of the InitArgs block it fills.
        """
        args = InitArgs(abi_version=ABI_VERSION, device_id=self.device_id)
        size = ctypes.sizeof(InitArgs)
        addr = sim.rtMalloc(self.ctx, size, "InitArgs")
        try:
            h2d = sim.MemcpyKind.HOST_TO_DEVICE
            sim.rtMemcpy(self.ctx, addr, size, ctypes.addressof(args), size, h2d)
            where = ctypes.c_uint64(addr)
            self.launch(self.init_fn, ctypes.addressof(where), ctypes.sizeof(where))
            sim.rtMemcpy(
                self.ctx, ctypes.addressof(args), size, addr, size, sim.MemcpyKind.DEVICE_TO_HOST
            )
        finally:
            with contextlib.suppress(sim.CannError):  # a poisoned device: reset frees it
                sim.rtFree(self.ctx, addr)
        name = args.runtime_name.decode(errors="replace")
        profile = self.ctx.device.profile
        if name != self.bins.runtime:
            raise BinaryError(
                self.bins.inner_so, f"inner SO is runtime {name!r}, expected {self.bins.runtime!r}"
            )
        if (args.aiv_cores, args.aic_cores) != (profile.aiv_cores, profile.aic_cores):
            raise BinaryError(
                self.bins.inner_so,
                f"inner SO was built for {args.aiv_cores} AIV / {args.aic_cores} AIC cores; "
                f"an {profile.arch} device has {profile.aiv_cores} / {profile.aic_cores}",
            )
        return args

    # -- launches ----------------------------------------------------------------------------
    def launch(self, func: sim.FuncHandle, args: int, size: int, threads: int = 1) -> None:
        """One rtsLaunchCpuKernel of `threads` threads on a cached handle, synchronised.

        `args` is a host block, copied at launch; 507018 / 507046 are raised here.
        """
        self.launches += 1
        sim.rtsLaunchCpuKernel(func, threads, self.stream, args, size)
        sim.rtStreamSynchronize(self.stream)

    def finalize(self) -> None:
        """Unload the binary and drop the op JSON; safe to call twice or after a device reset.

        A step is forgotten only once it completed, so a call interrupted (Ctrl-C)
        part-way is finished by the next one.
        """
        if self.binary is not None:
            with contextlib.suppress(sim.CannError):  # already gone with a reset context
                sim.rtsBinaryUnload(self.binary)
            self.binary = None
        self.json_path = None
        if self._json is not None:
            self._json.close()  # idempotent: a resumed call may close it again
            self._json = None


def _host(data: bytes) -> int:
    """Host address of immutable bytes (valid while `data` is referenced)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
