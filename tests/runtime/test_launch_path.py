"""Issue 9's launch path: run() only copies and launches, and the C launch threads keep issue 10's
semantics (docs/simulated-device.md "Launch path").  Behaviour only: nothing here reads a clock
except bounded waits for a hang."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, RuntimeBinaries, sim
from simpler_build.runtime.samples import chain_reference
from simpler_build.runtime.sim import errors, native
from tests.conftest import REPO
from tests.runtime.test_runtime_execution import kernels_on, test_kernels_so  # noqa: F401


def _ctypes_objects() -> int:
    return sum(isinstance(o, ctypes._SimpleCData | ctypes.Structure | ctypes.Array)
               for o in gc.get_objects())  # fmt: skip


def test_runs_leave_nothing_behind(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., object]
) -> None:
    """Device memory, traced host memory and live ctypes objects are the same after 300 more
    runs: a run copies, launches and copies back, with what prepare resolved."""
    ones = np.ones(64, np.float32)
    with DeviceRunner(load_bins("a5")) as runner:
        prepared = runner.prepare(make_chain(n=64))
        for _ in range(20):
            prepared(ones, ones, ones)
        gc.collect()
        tracemalloc.start()
        try:
            hbm, objects = runner.stats["hbm_in_use"], _ctypes_objects()
            # Two windows of 300 runs: what a run leaves behind grows in both, while what
            # another thread of the process allocates (one left by a test module before this
            # one, in the same pytest-xdist worker) lands in one at most.
            grown = []
            for _ in range(2):
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(300):
                    (out,) = prepared(ones, ones, ones)
                gc.collect()
                grown.append(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()
        assert runner.stats["hbm_in_use"] == hbm
        # One object kept per run would be 600; the slack is for the process's other threads.
        assert _ctypes_objects() - objects < 10
        assert min(grown) < 4096, f"{grown} bytes stayed behind after each 300 runs"
        np.testing.assert_allclose(out, chain_reference(ones, ones, ones), rtol=1e-6)


def test_inputs_of_any_layout_are_copied_in_and_other_dtypes_need_cast(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., object]
) -> None:
    rng = np.random.default_rng(1)
    a, b, c = (rng.random(64, dtype=np.float32) for _ in range(3))
    want = chain_reference(a, b, c)
    with DeviceRunner(load_bins("a2a3")) as runner:
        prepared = runner.prepare(make_chain(n=64))
        strided = np.repeat(a, 2)[::2]  # not contiguous
        assert not strided.flags.c_contiguous
        for args, named, options in (
            ((strided, b, c), {}, {}),
            ((strided, b.astype(np.float64), c.tolist()), {}, {"cast": True}),
            ((a,), {"c": c, "b": b}, {}),
        ):
            (out,) = prepared(*args, **named, **options)
            np.testing.assert_allclose(out, want, rtol=1e-6)
        # Not float32 and no cast=True: refused on the fast path too, never silently cast.
        for wrong in ((a, b.astype(np.float64), c), (a, b, c.tolist())):
            with pytest.raises(TypeError, match="cast=True"):
                prepared(*wrong)
        (first,) = prepared(a, b, c)
        (second,) = prepared(a, b, c)
        assert first is not second and first.flags.c_contiguous  # fresh arrays every run
        with pytest.raises(ValueError, match=r"input 'b' has shape \(63,\), graph says \(64,\)"):
            prepared(a, b[:63], c)
        with pytest.raises(TypeError, match="missing input 'c'"):
            prepared(a, b)


def test_a_run_after_the_device_was_reset_under_the_runner_is_refused(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., object]
) -> None:
    """The views prepare checked once die with the context: run() checks that it lives."""
    ones = np.ones(64, np.float32)
    runner = DeviceRunner(load_bins("a2a3"))
    prepared = runner.prepare(make_chain(n=64))
    prepared(ones, ones, ones)
    sim.rtDeviceReset(0)
    with pytest.raises(sim.CannError, match="context was destroyed or reset") as info:
        prepared(ones, ones, ones)
    assert info.value.code == errors.ACL_ERROR_RT_INVALID_HANDLE
    runner.finalize()


def test_a_launch_nobody_waits_for_still_ends_at_the_op_timeout(
    kernels_on: Callable[[sim.Context], dict],  # noqa: F811
) -> None:
    """An idle stream starts a launch at the call; with no sync, the watchdog still ends it in
    507046 and poisons the device, as the stream's worker did."""
    ctx = sim.rtCtxCreate(0, "a2a3")
    stream = sim.rtStreamCreate(ctx, op_timeout=0.5)
    fns = kernels_on(ctx)
    block = ctypes.c_uint64()
    sim.rtsLaunchCpuKernel(fns["sim_test_spin"], 2, stream, ctypes.addressof(block), 8)
    give_up = time.monotonic() + 10  # a bound on a hang (20x the op timeout), not a timing claim
    while not ctx.device.poisoned and time.monotonic() < give_up:
        time.sleep(0.05)
    assert ctx.device.poisoned
    assert ctx.device.fault is not None and ctx.device.fault.code == 507046
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamSynchronize(stream)
    assert info.value.code == 507046
    sim.rtDeviceResetForce(0)


def test_launches_queued_behind_a_started_one_run_in_stream_order(
    kernels_on: Callable[[sim.Context], dict],  # noqa: F811
) -> None:
    """The first launch starts at the call; the next ones queue and run after it, each on its
    own copy of its block, and a sync sees them all done."""
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx, op_timeout=20.0)
    fns = kernels_on(ctx)
    n = 7
    counter, seen = sim.rtMalloc(ctx, 4), sim.rtMalloc(ctx, 4 * n)
    outs = [sim.rtMalloc(ctx, 8) for _ in range(3)]
    zero = (ctypes.c_uint32 * n)()
    sim.rtMemcpy(ctx, counter, 4, ctypes.addressof(zero), 4, sim.MemcpyKind.HOST_TO_DEVICE)
    barrier = (ctypes.c_uint64 * 2)(counter, seen)
    sim.rtsLaunchCpuKernel(fns["sim_test_barrier"], n, stream, ctypes.addressof(barrier), 16)
    assert stream.inflight is not None  # started at the call, no thread handoff
    for out in outs:
        block = (ctypes.c_uint64 * 3)(out, 1, 2)
        sim.rtsLaunchCpuKernel(fns["sim_test_scribble"], 2, stream, ctypes.addressof(block), 24)
    sim.rtStreamSynchronize(stream)
    got = (ctypes.c_uint32 * n)()
    sim.rtMemcpy(ctx, ctypes.addressof(got), 4 * n, seen, 4 * n, sim.MemcpyKind.DEVICE_TO_HOST)
    assert list(got) == [n] * n
    for out in outs:
        assert ctypes.c_uint64.from_address(out).value == 0xDEADBEEF ^ 0xFEEDFACE
    sim.rtCtxDestroy(ctx)


def test_parked_launch_threads_all_enter_the_kernel_together(
    kernels_on: Callable[[sim.Context], dict],  # noqa: F811
) -> None:
    """Threads parked by an earlier launch are woken in a cascade: each wakes the next before
    its kernel, so a barrier over all of them completes (one after another it would fail)."""
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx, op_timeout=20.0)
    fns = kernels_on(ctx)
    n = 7
    out = sim.rtMalloc(ctx, 8)
    warm = (ctypes.c_uint64 * 3)(out, 1, 2)
    for _ in range(3):  # the pool's threads exist and are parked on their futexes
        sim.rtsLaunchCpuKernel(fns["sim_test_scribble"], n, stream, ctypes.addressof(warm), 24)
        sim.rtStreamSynchronize(stream)
    time.sleep(0.2)  # let every thread reach its futex wait (not a timing claim)
    counter, seen = sim.rtMalloc(ctx, 4), sim.rtMalloc(ctx, 4 * n)
    zero = (ctypes.c_uint32 * n)()
    sim.rtMemcpy(ctx, counter, 4, ctypes.addressof(zero), 4, sim.MemcpyKind.HOST_TO_DEVICE)
    sim.rtMemcpy(ctx, seen, 4 * n, ctypes.addressof(zero), 4 * n, sim.MemcpyKind.HOST_TO_DEVICE)
    barrier = (ctypes.c_uint64 * 2)(counter, seen)
    sim.rtsLaunchCpuKernel(fns["sim_test_barrier"], n, stream, ctypes.addressof(barrier), 16)
    sim.rtStreamSynchronize(stream)
    got = (ctypes.c_uint32 * n)()
    sim.rtMemcpy(ctx, ctypes.addressof(got), 4 * n, seen, 4 * n, sim.MemcpyKind.DEVICE_TO_HOST)
    assert list(got) == [n] * n
    sim.rtCtxDestroy(ctx)


_AFFINITY_CHILD = r"""
import os, sys
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph

before = set(os.listdir("/proc/self/task"))  # numpy's BLAS threads: not the runtime's
if sys.argv[2] == "one":  # the user narrowed the main thread to one CPU before the runtime ran
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
main = sorted(os.sched_getaffinity(0))
with DeviceRunner(RuntimeBinaries.from_manifest(sys.argv[1])) as runner:
    x = np.ones(64, np.float32)
    runner.prepare(chain_graph(64))(x, x, x)
    new = set(os.listdir("/proc/self/task")) - before
    masks = [sorted(os.sched_getaffinity(int(t))) for t in new]
print(len(masks), sum(mask == main for mask in masks))
"""


@pytest.mark.parametrize("narrowed", ["all", "one"])
def test_launch_threads_keep_their_creators_cpus(runtime_lib: Path, narrowed: str) -> None:
    """A launch thread starts on its creator's CPU only (so that it does not queue behind
    numpy's spinning BLAS worker), then takes the creator's mask back: after a run every
    thread of the process may run where the main thread may, whatever the user set."""
    manifest = runtime_lib / "a5" / "host_build_graph" / "runtime_binaries.json"
    proc = subprocess.run(
        [sys.executable, "-c", _AFFINITY_CHILD, str(manifest), narrowed],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    threads, same = map(int, proc.stdout.split())
    assert threads >= 8  # the AICore side's thread and the exec's 7 (and the watchdog)
    assert same == threads


def test_the_helper_names_a_compiler_it_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv(native.NATIVE_DIR_ENV, str(tmp_path / "native"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(native.NativeHelperError, match=r"_launch\.c: cannot run the C compiler"):
        native.helper()
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(native.NATIVE_DIR_ENV, str(blocker / "native"))
    monkeypatch.delenv("CC")
    with pytest.raises(native.NativeHelperError, match=f"{native.NATIVE_DIR_ENV}: cannot create"):
        native.helper()


WORKER = """import ctypes, sys
from simpler_build.runtime.sim import native
lib = native.helper()
thread = lib.simlaunch_thread_start()
assert thread
lib.simlaunch_thread_stop(thread)
print(sorted(p.name for p in native.native_dir().iterdir()))
"""


def test_processes_building_the_helper_at_once_share_one_build(tmp_path: Path) -> None:
    """First uses race harmlessly: each compiles privately and renames; one file remains."""
    env = {**os.environ, native.NATIVE_DIR_ENV: str(tmp_path / "native")}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "libsimpler_sim_launch_" in out
    files = sorted(p.name for p in (tmp_path / "native").iterdir())
    assert len(files) == 1 and files[0].startswith("libsimpler_sim_launch_"), files


def test_bench_reports_the_launch_path_and_the_new_process_rows(runtime_lib: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "runtime_bench.py"), "--arch", "a2a3",
         "--runs", "20", "--baseline-runs", "5", "--growth-runs", "20", "--reps", "1",
         "--tasks", "30", "--thread-runs", "2", "--json", "--build-dir", str(runtime_lib.parent)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = report["launch_path"]
    assert set(rows) == {"chain3", "chain30", "independent30"}
    for row in rows.values():
        assert row["us_per_task"] > 0 and row["bare_ctypes_us_per_task"] > 0
        assert isinstance(row["meets_2us"], bool) and isinstance(row["meets_6x"], bool)
        assert row["device_model_us_per_run"] > 0  # both launches made through the C layer
        assert row["runtime_us_per_run"] == pytest.approx(
            row["us_per_run"] - row["device_model_us_per_run"]
        )
    new = report["new_process"]
    assert new["import_numpy_ms"] > 0 and new["first_run_ms"] > 0
    assert isinstance(new["meets_1_2x"], bool)


class _InterruptedAfter:
    """native.helper() whose `name` really runs, then a Ctrl-C arrives before Python goes on."""

    def __init__(self, real: object, name: str) -> None:
        self._real, self._name, self.calls = real, name, 0

    def __getattr__(self, attr: str) -> object:
        fn = getattr(self._real, attr)
        if attr != self._name:
            return fn

        def interrupted(*args: object) -> object:
            self.calls += 1
            if self.calls > 1:
                return None  # counted, never run again: a second real call corrupts the heap
            fn(*args)
            raise KeyboardInterrupt

        return interrupted


@pytest.mark.parametrize(
    ("make", "release", "c_name"),
    [
        (lambda: sim.device.LaunchRecord(8), "free", "simlaunch_launch_free"),
        (lambda: sim.device.LaunchThread(), "stop", "simlaunch_thread_stop"),
    ],
)
def test_a_release_interrupted_after_the_c_call_never_repeats_it(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[], object], release: str, c_name: str
) -> None:
    """A Ctrl-C right after freeing a launch block (or stopping a thread that frees itself),
    then the release again (finalize after Ctrl-C), must not free or stop it twice: the
    block would go to two owners and a later launch would wait on a thread that is gone."""
    obj = make()
    proxy = _InterruptedAfter(native.helper(), c_name)
    monkeypatch.setattr(native, "helper", lambda: proxy)
    with pytest.raises(KeyboardInterrupt):
        getattr(obj, release)()
    getattr(obj, release)()
    assert proxy.calls == 1
