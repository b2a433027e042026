"""Issue 8, runtime side: nothing leaks, nothing hangs, and the host is never asked for too much.

* Class 7: a runner never finalized, Ctrl-C at any point of finalize() or of a
  runner's construction, and SIGKILL mid-bootstrap leave no file in the temp
  or preinstall directory and no device state; the next bootstrap sweeps what
  a killed writer left, and leaves a live writer's file alone.
* Class 8: a request the host cannot back is 207001, never a MemoryError, and
  the default capacity is capped by the host.
* Class 3 (simulated device): a FIFO where the runtime or the simulator opens
  a file gives one error naming it, or is replaced -- never a hang.

Children run in real processes (`reliability_child.py`); every wait is bounded
and no assertion is about time.
"""

from __future__ import annotations

import _ctypes
import ctypes
import gc
import json
import linecache
import os
import select
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, Graph, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime import runner as runner_module
from simpler_build.runtime.runner import release_collected
from simpler_build.runtime.samples import chain_graph, chain_reference
from simpler_build.runtime.sim import host
from simpler_build.runtime.sim.errors import ACL_ERROR_RT_FILE_OPEN, ACL_ERROR_RT_MEMORY_ALLOCATION
from simpler_build.runtime.sim.sharedlib import SharedLib, path_of

CHILD = Path(__file__).with_name("reliability_child.py")
# As the code objects name them (a scratch copy imports through symlinks: never resolve).
HOST_FILES = {runner_module.__file__, aicpu_op.__file__}
SIM_DIR = os.path.dirname(sim.__file__) + os.sep
WAIT = 15.0  # seconds a child may take before it counts as hung (one takes about 1 s)


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp directory of this process and its children, to be checked for leftovers."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def _manifest(runtime_lib: Path, arch: str = "a5", runtime: str = "host_build_graph") -> str:
    return str(runtime_lib / arch / runtime / "runtime_binaries.json")


def _check_chain(runner: DeviceRunner, n: int = 256) -> None:
    x = [np.full(n, v, dtype=np.float32) for v in (1.0, 2.0, 3.0)]
    (out,) = runner.prepare(chain_graph(n))(*x)
    np.testing.assert_allclose(out, chain_reference(*x), rtol=1e-6)


def _open_fds() -> int:
    gc.collect()  # an abandoned file object closes its descriptor when collected
    return len(os.listdir("/proc/self/fd"))


def _leftovers(tmpdir: Path, bins: RuntimeBinaries) -> list[str]:
    """Everything in the temp dir, and everything in the preinstall dir but the installed SO."""
    pre = sim.preinstall_dir(0)
    installed = f"simpler_inner_{bins.inner_fingerprint}_0.so"
    found = [f"tmp/{p.name}" for p in tmpdir.iterdir()]
    if pre.is_dir():
        found += [f"preinstall/{p.name}" for p in pre.iterdir() if p.name != installed]
    return sorted(found)


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    """Block until the child reports it reached its seam (bounded, never a timing assertion)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    line = proc.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        proc.kill()
        _, err = proc.communicate(timeout=WAIT)
        raise AssertionError(f"child never reached its seam: {line!r}\n{err.decode()[-3000:]}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()  # SIGKILL: no handler, no finally, no atexit
    proc.communicate(timeout=WAIT)


def _run_child(*args: str) -> dict[str, Any]:
    """Run a child to completion; a hang is a failure that names it, after WAIT seconds."""
    try:
        proc = subprocess.run(
            [sys.executable, str(CHILD), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=WAIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"child {args} hung (killed after {WAIT:g} s)")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout.decode().splitlines()[-1])


def _interrupt_at(point: int, call: Callable[[], object], inside_sim: bool = False) -> str | None:
    """Run `call`, raising KeyboardInterrupt at its `point`-th step; where it hit, or None.

    The steps are the lines of host code (runner.py, aicpu_op.py) and the calls
    into the simulated device from it: where a Ctrl-C lands between driver
    calls.  With `inside_sim`, every call inside the simulator is a step too.
    The line of a `with` statement is left out: CPython runs its __exit__ on a
    normal exit outside the block's handler, so an interrupt there can leave
    any `with lock:` held (bpo-29988) -- a hazard of the language, not of this code.
    """
    seen = 0

    def step(frame: FrameType, event: str) -> bool:
        file = frame.f_code.co_filename
        if event == "line":
            line = linecache.getline(file, frame.f_lineno).lstrip()
            return file in HOST_FILES and not line.startswith("with ")
        if event != "call" or not file.startswith(SIM_DIR):
            return False
        caller = frame.f_back
        return inside_sim or (caller is not None and caller.f_code.co_filename in HOST_FILES)

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal seen
        if step(frame, event):
            seen += 1
            if seen == point:
                where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
                raise KeyboardInterrupt(f"{where} ({event})")
        return tracer

    sys.settrace(tracer)
    try:
        call()
    except KeyboardInterrupt as exc:
        return str(exc)
    finally:
        sys.settrace(None)
    return None


# -- class 7: leftovers ----------------------------------------------------------------------


def test_an_unfinalized_runner_warns_and_leaves_nothing_once_collected(
    load_bins: Callable[..., RuntimeBinaries], private_tmp: Path
) -> None:
    bins = load_bins("a5")
    fds = _open_fds()
    runner = DeviceRunner(bins)
    _check_chain(runner)
    device = runner.ctx.device
    with pytest.warns(ResourceWarning, match="never finalized"):
        del runner
        gc.collect()
    assert release_collected(timeout=WAIT)
    assert sim.get_device(0) is None and device.hbm.in_use == 0 and not device.contexts
    assert _leftovers(private_tmp, bins) == []
    assert _open_fds() == fds


def test_finalize_cut_short_by_ctrl_c_is_finished_by_the_next_call(
    load_bins: Callable[..., RuntimeBinaries], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = DeviceRunner(load_bins("a5"))
    _check_chain(runner)
    ctx = runner.ctx

    def ctrl_c(stream: sim.Stream) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(sim, "rtStreamDestroy", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            runner.finalize()
    runner.finalize()
    assert sim.get_device(0) is None and ctx.device.hbm.in_use == 0
    assert ctx.released_at_teardown == {"aicore_handle": 1}  # the host released the rest


def test_ctrl_c_anywhere_in_finalize_then_finalize_again_releases_everything(
    load_bins: Callable[..., RuntimeBinaries], private_tmp: Path
) -> None:
    bins = load_bins("a5")
    fds = _open_fds()
    hits = []
    point = 0
    while True:
        point += 1
        runner = DeviceRunner(bins)
        _check_chain(runner)
        ctx = runner.ctx
        hit = _interrupt_at(point, runner.finalize, inside_sim=True)
        runner.finalize()
        where = f"after Ctrl-C at {hit}"
        assert sim.get_device(0) is None and ctx.device.hbm.in_use == 0, where
        assert ctx.released_at_teardown == {"aicore_handle": 1}, where
        assert _open_fds() == fds, where
        if hit is None:
            break
        hits.append(hit)
    assert len(hits) > 10, hits  # the tracer saw finalize's steps
    assert _leftovers(private_tmp, bins) == []


def test_ctrl_c_anywhere_in_a_bootstrapping_runner_leaves_no_state(
    load_bins: Callable[..., RuntimeBinaries], private_tmp: Path
) -> None:
    """A runner whose construction (bootstrap, op JSON, loads) is interrupted anywhere."""
    bins = load_bins("a2a3")
    installed = sim.preinstall_dir(0) / f"simpler_inner_{bins.inner_fingerprint}_0.so"
    fds = _open_fds()
    hits = []
    point = 0
    while True:
        point += 1
        aicpu_op.forget_bootstraps()
        installed.unlink(missing_ok=True)  # every attempt goes through the dispatcher
        made: list[DeviceRunner] = []
        hit = _interrupt_at(point, lambda made=made: made.append(DeviceRunner(bins)))
        for runner in made:
            runner.finalize()
        where = f"after Ctrl-C at {hit}"
        assert sim.get_device(0) is None, where
        assert _leftovers(private_tmp, bins) == [], where
        assert _open_fds() == fds, where
        if hit is None:
            break
        hits.append(hit)
    assert len(hits) > 20, hits
    with DeviceRunner(bins) as runner:
        _check_chain(runner)


def test_a_dlopen_path_still_held_elsewhere_never_names_another_library(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """The loader matches /proc/self/fd/N by name before it looks at the file: while a
    library is registered under that name, no other copy may be loaded through it."""
    bins = load_bins("a5")
    first = SharedLib(bins.dispatcher.read_bytes(), "first")
    assert first._copy is not None
    name = path_of(first._copy)
    held = ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)  # someone else's reference
    first.close()  # so this dlclose does not unload it
    second = SharedLib(bins.inner_so.read_bytes(), "second")
    try:
        assert second.symbol("simpler_aicpu_exec") is not None, "got the dispatcher back"
        assert second.symbol("DynTileFwkBackendKernelServerInit") is None
    finally:
        second.close()
        _ctypes.dlclose(held._handle)


SEAMS = ["dispatcher-temp", "so-copy", "op-json", "no-finalize"]


@pytest.mark.parametrize("seam", SEAMS)
def test_a_process_killed_mid_bootstrap_leaves_nothing_the_next_one_keeps(
    seam: str, runtime_lib: Path, load_bins: Callable[..., RuntimeBinaries], private_tmp: Path
) -> None:
    bins = load_bins("a5")
    if seam == "no-finalize":
        assert _run_child("run", _manifest(runtime_lib), seam)["ok"]
    else:
        child = _start("run", _manifest(runtime_lib), seam)
        _wait_ready(child)
        _kill(child)
    pre = sim.preinstall_dir(0)
    temps = [p.name for p in pre.iterdir() if ".tmp." in p.name] if pre.is_dir() else []
    assert len(temps) == (seam == "dispatcher-temp"), temps  # the seam did its job
    with DeviceRunner(bins) as runner:  # the next bootstrap, in another process
        _check_chain(runner)
    assert _leftovers(private_tmp, bins) == []
    swept = aicpu_op.process_stats().get("swept_temp_files", 0)
    assert swept == len(temps)


def test_a_live_writers_temp_file_is_left_alone_until_it_dies(
    runtime_lib: Path, load_bins: Callable[..., RuntimeBinaries], private_tmp: Path
) -> None:
    """Another process mid-write holds the directory's lock: its temp file is not stale."""
    bins = load_bins("a5")
    child = _start("run", _manifest(runtime_lib), "dispatcher-temp")
    try:
        _wait_ready(child)
        pre = sim.preinstall_dir(0)
        (temp,) = (p for p in pre.iterdir() if ".tmp." in p.name)
        with DeviceRunner(bins) as runner:  # installs beside the live writer
            _check_chain(runner)
            assert runner.stats["dispatcher_bootstraps"] == 1
        assert temp.exists(), "a live writer's temp file was swept"
    finally:
        _kill(child)
    aicpu_op.forget_bootstraps()
    with DeviceRunner(bins) as runner:
        _check_chain(runner)
    assert not temp.exists() and _leftovers(private_tmp, bins) == []


# -- class 8: the host's memory --------------------------------------------------------------


def test_a_buffer_the_host_cannot_back_is_207001_not_memory_error(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    huge = Graph("huge")
    a = huge.input("a", 1 << 46)  # 256 TiB: more than any host's address space
    huge.adds(huge.output("b", 1 << 46), a, 1.0)
    with DeviceRunner(load_bins("a5"), hbm_bytes=1 << 60) as runner:
        before = runner.stats["hbm_in_use"]
        with pytest.raises(sim.CannError) as info:
            runner.prepare(huge)
        assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION
        assert runner.stats["hbm_in_use"] == before
        _check_chain(runner)  # the device is still fine


def test_a_failed_host_allocation_is_207001(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no host figure to go by, the allocation itself fails: still 207001."""
    monkeypatch.setattr(host, "available_bytes", lambda: None)
    ctx = sim.rtCtxCreate(0, "a2a3", hbm_bytes=1 << 64)
    for size in (1 << 50, 1 << 63):  # MemoryError, then OverflowError from ctypes
        with pytest.raises(sim.CannError, match="host could not allocate") as info:
            sim.rtMalloc(ctx, size, "big")
        assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION
    assert ctx.device.hbm.in_use == 0
    sim.rtFree(ctx, sim.rtMalloc(ctx, 4096))
    sim.rtCtxDestroy(ctx)


def test_a_big_allocation_the_host_cannot_spare_now_is_207001(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host, "available_bytes", lambda: 256 << 20)
    ctx = sim.rtCtxCreate(0, "a2a3", hbm_bytes=8 << 30)
    with pytest.raises(sim.CannError, match="host has 268435456 bytes available") as info:
        sim.rtMalloc(ctx, 512 << 20, "big")
    assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION
    sim.rtFree(ctx, sim.rtMalloc(ctx, 64 << 20))  # what the host can spare is served
    sim.rtCtxDestroy(ctx)


def test_the_default_capacity_is_capped_by_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    physical = host.physical_bytes()
    assert physical is not None
    ctx = sim.rtCtxCreate(0, "a5")
    assert ctx.device.hbm.capacity <= min(128 << 30, physical)
    sim.rtCtxDestroy(ctx)
    monkeypatch.setattr(host, "physical_bytes", lambda: 1 << 30)
    ctx = sim.rtCtxCreate(0, "a5")
    assert ctx.device.hbm.capacity == 512 << 20
    with pytest.raises(sim.CannError) as info:
        sim.rtMalloc(ctx, 600 << 20)
    assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION
    sim.rtCtxDestroy(ctx)
    ctx = sim.rtCtxCreate(0, "a5", hbm_bytes=2 << 30)  # an explicit capacity is taken as given
    assert ctx.device.hbm.capacity == 2 << 30
    sim.rtCtxDestroy(ctx)


# -- class 3: special files on the simulated device ------------------------------------------


@pytest.fixture
def special_files(tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:
    """Make a FIFO or a socket at a path (bound through a relative name: sun_path is short)."""
    sockets: list[socket.socket] = []

    def make(path: Path, kind: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
            return
        sock = socket.socket(socket.AF_UNIX)
        cwd = os.getcwd()
        os.chdir(path.parent)
        try:
            sock.bind(path.name)
        finally:
            os.chdir(cwd)
        sockets.append(sock)

    yield make
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_special_file_at_the_preinstalled_name_is_replaced_not_opened(
    kind: str,
    runtime_lib: Path,
    load_bins: Callable[..., RuntimeBinaries],
    special_files: Callable[[Path, str], None],
) -> None:
    bins = load_bins("a5")
    pre = sim.preinstall_dir(0)
    installed = pre / f"simpler_inner_{bins.inner_fingerprint}_0.so"
    special_files(installed, kind)
    special_files(pre / "unrelated.fifo", "fifo")  # not ours: left alone, never opened
    report = _run_child("run", _manifest(runtime_lib))
    assert report["ok"] and report["process"]["replaced_special_files"] == 1, report
    assert installed.is_file() and installed.read_bytes() == bins.inner_so.read_bytes()
    assert (pre / "unrelated.fifo").is_fifo()


@pytest.mark.parametrize("where", ["preinstall", "device"])
def test_a_fifo_instead_of_a_device_directory_is_named(
    where: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    path = sim.preinstall_dir(0) if where == "preinstall" else sim.device_dir(0)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with pytest.raises(NotADirectoryError, match="is a FIFO, not a directory") as info:
        DeviceRunner(load_bins("a5"))
    assert str(path) in str(info.value)
    assert sim.get_device(0) is None  # a device comes up only with a context


def test_simulator_calls_handed_a_fifo_fail_naming_it(tmp_path: Path) -> None:
    fifo = tmp_path / "not-a-file"
    os.mkfifo(fifo)
    errors = _run_child("sim-fifo", str(fifo))
    assert set(errors) == {"json", "kernel_so", "aicore"}, errors
    for name, (code, message) in errors.items():
        assert code == ACL_ERROR_RT_FILE_OPEN, (name, message)
        assert "is a FIFO, not a regular file" in message, (name, message)
    assert str(fifo) in errors["json"][1] and str(fifo) in errors["aicore"][1]
    assert "simpler_inner_0123456789abcdef.so" in errors["kernel_so"][1]
