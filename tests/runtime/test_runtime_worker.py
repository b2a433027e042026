"""Worker processes (issue 11): DeviceRunner(isolate=True) runs the runner in a child process.

Each test starts real worker processes (spawn); the waits that could hang are
run in a thread joined with a bound, so a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simpler_build.runtime import (
    DeviceRunner,
    Graph,
    GraphError,
    InnerSoLatchError,
    InputError,
    InputShapeError,
    OptionError,
    RunnerClosedError,
    RuntimeBinaries,
    aicpu_op,
    sim,
)
from simpler_build.runtime._shm import MEMFD_NAME
from simpler_build.runtime.samples import chain_graph, chain_reference, vector_add_graph
from simpler_build.runtime.worker import (
    WorkerDiedError,
    WorkerPrepared,
    WorkerRunner,
    WorkerTimeoutError,
)
from tests.conftest import ARCHES, RUNTIMES

#: A bound for waits that must not hang (never a timing assertion).
HANG_BOUND = 120.0
N = 1024


def bounded(fn: Callable[[], Any], bound: float = HANG_BOUND) -> Any:
    """fn() in a thread; fails the test if it has not returned within `bound` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(bound)
    assert not t.is_alive(), f"hung for {bound} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def my_memfd_maps() -> list[str]:
    """This process's mappings of worker regions."""
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if MEMFD_NAME in line]


def dev_shm_maps() -> set[str]:
    """The files under /dev/shm this process maps."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {line.split(None, 5)[-1] for line in lines if "/dev/shm/" in line}


def my_memfd_fds() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with_target = Path("/proc/self/fd") / fd
        try:
            if MEMFD_NAME in os.readlink(with_target):
                out.append(fd)
        except OSError:
            continue
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); the runner must have reaped it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def chain_inputs(seed: int, n: int = N) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n, dtype=np.float32) for _ in range(3))


@pytest.mark.parametrize("arch", ARCHES)
def test_both_runtimes_on_one_device_in_one_program(
    arch: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    runners = [DeviceRunner(load_bins(arch, rt), device_id=0, isolate=True) for rt in RUNTIMES]
    try:
        assert all(isinstance(r, WorkerRunner) for r in runners)
        prepared = [r.prepare(chain_graph(N, s=0.5 + i)) for i, r in enumerate(runners)]
        for step in range(5):  # interleaved: each run goes to its own runtime's worker
            for i, p in enumerate(prepared):
                a, b, c = chain_inputs(10 * step + i)
                (out,) = p(a, b, c)
                np.testing.assert_allclose(out, chain_reference(a, b, c, 0.5 + i), rtol=1e-6)
        stats = [r.stats for r in runners]
        assert [s["runtime"] for s in stats] == list(RUNTIMES)
        assert {s["device_id"] for s in stats} == {0}
        assert stats[0]["inner_fingerprint"] != stats[1]["inner_fingerprint"]
        assert [s["runs"] for s in stats] == [5, 5]
        pids = {s["worker_pid"] for s in stats}
        assert len(pids) == 2 and os.getpid() not in pids
        # The parent loaded no runtime: no device came up here, no inner SO was bootstrapped.
        assert sim.get_device(0) is None
        assert aicpu_op.process_stats() == {}
    finally:
        for r in runners:
            r.finalize()
    assert not any(alive(r.pid) for r in runners)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_latch_in_process_and_the_way_out_with_isolate(
    arch: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """Issue 11: two runtimes on one device in one process raise InnerSoLatchError;
    with isolate=True the same two give correct results."""
    first, second = (load_bins(arch, rt) for rt in RUNTIMES)
    isolated = [DeviceRunner(b, device_id=0, isolate=True) for b in (first, second)]
    try:
        with DeviceRunner(first, device_id=0) as in_process:
            with pytest.raises(InnerSoLatchError) as info:
                DeviceRunner(second, device_id=0)
            assert second.inner_fingerprint in str(info.value)
            for i, runner in enumerate((in_process, *isolated)):
                prepared = runner.prepare(chain_graph(N, s=1.5 + i))
                a, b, c = chain_inputs(i)
                (out,) = prepared(a, b, c)
                np.testing.assert_allclose(out, chain_reference(a, b, c, 1.5 + i), rtol=1e-6)
        assert [r.stats["runtime"] for r in isolated] == list(RUNTIMES)
    finally:
        for r in isolated:
            r.finalize()


def test_isolated_results_and_counters_equal_in_process(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    bins = load_bins("a5", "aicpu_build_graph")
    a, b, c = chain_inputs(7)
    results = {}
    for isolate in (False, True):
        with DeviceRunner(bins, device_id=1, isolate=isolate, aicpu_threads=3) as runner:
            with runner.prepare(chain_graph(N)) if isolate else _nullcm(runner) as prepared:
                for _ in range(3):
                    (out,) = prepared(a, b, c)
                order = prepared.last_order()
                stats = runner.stats
            results[isolate] = (out, order, prepared.last_threads, stats)
    (out0, order0, threads0, s0), (out1, order1, threads1, s1) = results[False], results[True]
    np.testing.assert_array_equal(out0, out1)
    assert sorted(order0) == sorted(order1) == [0, 1, 2]
    assert threads0 == threads1 == 3
    for key in ("runs", "aicpu_launches", "aicore_launches", "aicore_registrations", "hbm_in_use"):
        assert s0[key] == s1[key], key
    assert s1["aicpu_threads"] == 3 and s1["device_id"] == 1


class _nullcm:
    """The in-process runner's prepared graph as a context manager (prepared once)."""

    def __init__(self, runner: Any) -> None:
        self.prepared = runner.prepare(chain_graph(N))

    def __enter__(self) -> Any:
        return self.prepared

    def __exit__(self, *exc: object) -> None:
        return None


def _error_of(fn: Callable[[], Any]) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


def _errors(
    bins: RuntimeBinaries, isolate: bool, calls: list[Callable[[Any, Any], Any]]
) -> list[tuple[type, str]]:
    """The error of each call on a fresh runner, then of a call after finalize."""
    ones = np.ones(8, np.float32)
    with DeviceRunner(bins, isolate=isolate) as runner:
        prepared = runner.prepare(chain_graph(8))
        seen = [_error_of(lambda c=c: c(runner, prepared)) for c in calls]
        # Still usable after every refusal.
        (out,) = prepared(ones, ones * 2, ones * 3)
        np.testing.assert_array_equal(out, np.full(8, 11.5, np.float32))
    seen.append(_error_of(lambda: prepared(ones, ones, ones)))
    return seen


def test_bad_input_raises_what_the_in_process_runner_raises(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    bins = load_bins("a2a3", "host_build_graph")
    ones = np.ones(8, np.float32)
    big = Graph("big")
    x, y = big.input("x", 8), big.output("y", 8)
    big.adds(y, x, 1.0, block_dim=99)
    mm = Graph("mm")
    p, q, r = mm.input("p", (2, 2)), mm.input("q", (2, 2)), mm.output("r", (2, 2))
    mm.matmul(r, p, q)
    calls: list[Callable[[Any, Any], Any]] = [
        lambda rn, pr: pr(ones, ones, np.ones(9, np.float32)),  # wrong shape
        lambda rn, pr: pr(ones, ones),  # missing input
        lambda rn, pr: pr(ones, ones, ones, ones),  # too many
        lambda rn, pr: pr(ones, ones, ones, d=ones),  # unknown name
        lambda rn, pr: pr(ones, ones, ones, a=ones),  # given twice
        lambda rn, pr: pr(ones, ones, np.array(["x"] * 8)),  # not convertible to float32
        lambda rn, pr: rn.prepare(big),  # block_dim above the limit
        lambda rn, pr: rn.prepare(mm),  # a cube kernel on a vector-only arch
        lambda rn, pr: rn.prepare(Graph("empty")),  # no tasks
    ]
    seen = {isolate: _errors(bins, isolate, calls) for isolate in (False, True)}
    assert seen[True] == seen[False]
    # The runtime's usage errors (runtime/errors.py) cross by class, raised in the worker
    # (shapes, binding, prepare) or in the parent (a finalized runner).
    usage = {GraphError, InputError, InputShapeError, RunnerClosedError}
    assert usage <= {t for t, _ in seen[True]}
    # A constructor the in-process runner refuses is refused the same way.
    bad = {"aicpu_threads": 99}
    refused = _error_of(lambda: WorkerRunner(bins, **bad))
    assert refused == _error_of(lambda: DeviceRunner(bins, **bad))
    assert refused[0] is OptionError


def test_runtime_errors_cross_the_process_boundary_whole() -> None:
    """Errors whose __init__ takes several arguments (so pickle fails) keep class and fields."""
    import pickle

    from simpler_build.runtime import DeviceUnusableError, KernelExecError, Status
    from simpler_build.runtime.worker import _decode, _encode

    fault = sim.CannError(507018, "rtsLaunchCpuKernel", "the exec returned 3")
    for exc in (KernelExecError("g", Status.BAD_KERNEL, 1), DeviceUnusableError(2, fault)):
        with pytest.raises(TypeError):
            pickle.loads(pickle.dumps(exc))
        back = _decode(pickle.loads(pickle.dumps(_encode(exc))))
        assert type(back) is type(exc) and str(back) == str(exc)
        assert {k: str(v) for k, v in vars(back).items()} == {
            k: str(v) for k, v in vars(exc).items()
        }
    back = _decode(pickle.loads(pickle.dumps(_encode(DeviceUnusableError(2, fault)))))
    assert isinstance(back.fault, sim.CannError) and back.fault.code == 507018


def test_worker_options_are_checked_and_only_with_isolate(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    bins = load_bins("a2a3")
    with pytest.raises(ValueError, match=r"reply_timeout=0: must be a positive number"):
        DeviceRunner(bins, isolate=True, reply_timeout=0)
    with pytest.raises(TypeError, match="reply_timeout"):
        DeviceRunner(bins, reply_timeout=5)
    assert sim.get_device(0) is None


def test_threads_sharing_one_isolated_runner_each_get_their_own_results(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """Calls from several threads are serialised on the worker; no call sees another's data."""
    with DeviceRunner(load_bins("a5", "aicpu_build_graph"), isolate=True) as runner:
        graphs = [runner.prepare(chain_graph(N, s=float(k), name=f"g{k}")) for k in range(2)]
        failures: list[str] = []

        def hammer(t: int) -> None:
            for i in range(15):
                k = (t + i) % 2
                a, b, c = chain_inputs(100 * t + i)
                (out,) = graphs[k](a, b, c)
                if not np.allclose(out, chain_reference(a, b, c, float(k)), rtol=1e-6):
                    failures.append(f"thread {t} call {i}")

        threads = [threading.Thread(target=hammer, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG_BOUND)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        assert runner.stats["runs"] == 4 * 15


@pytest.mark.parametrize("when", ["between_runs", "during_runs"])
def test_a_killed_worker_is_a_clear_error_not_a_hang(
    when: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    runner = DeviceRunner(load_bins("a5"), device_id=3, isolate=True)
    prepared = runner.prepare(chain_graph(N))
    a, b, c = chain_inputs(1)
    prepared(a, b, c)
    pid = runner.pid
    if when == "between_runs":
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDiedError) as info:
            bounded(lambda: prepared(a, b, c))
    else:
        started = threading.Event()

        def loop() -> None:
            while True:
                prepared(a, b, c)
                started.set()

        errors: list[BaseException] = []
        t = threading.Thread(target=lambda: _catch(loop, errors), daemon=True)
        t.start()
        assert started.wait(HANG_BOUND)
        os.kill(pid, signal.SIGKILL)
        t.join(HANG_BOUND)
        assert not t.is_alive(), "the run in flight hung on a dead worker"
        assert len(errors) == 1 and isinstance(errors[0], WorkerDiedError)
        info = pytest.ExceptionInfo.from_exc_info((WorkerDiedError, errors[0], None))
    err = info.value
    assert (err.pid, err.device_id, err.signal) == (pid, 3, "SIGKILL")
    assert f"pid {pid}" in str(err) and "device 3" in str(err) and "SIGKILL" in str(err)
    # Every later call says the same; finalize() reaps it and frees the shared memory.
    with pytest.raises(WorkerDiedError, match=f"pid {pid}"):
        runner.stats  # noqa: B018
    bounded(runner.finalize)
    assert not alive(pid)
    assert my_memfd_maps() == [] and my_memfd_fds() == []


def _catch(fn: Callable[[], Any], errors: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:
        errors.append(exc)


def test_an_unresponsive_worker_times_out_and_is_killed(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    runner = DeviceRunner(load_bins("a2a3"), isolate=True, reply_timeout=2)
    prepared = runner.prepare(vector_add_graph(16))
    os.kill(runner.pid, signal.SIGSTOP)
    try:
        with pytest.raises(WorkerTimeoutError, match=f"pid {runner.pid}.*within 2 s"):
            ones = np.ones(16, np.float32)
            bounded(lambda: prepared(ones, ones), bound=12)  # 6x the timeout
    finally:
        if alive(runner.pid):
            os.kill(runner.pid, signal.SIGCONT)
    assert not alive(runner.pid)
    with pytest.raises(WorkerTimeoutError):
        prepared(np.ones(16, np.float32), np.ones(16, np.float32))
    bounded(runner.finalize)
    assert my_memfd_maps() == []


def test_exit_stops_the_worker_and_frees_shared_memory_even_when_the_body_raises(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    assert my_memfd_maps() == []
    shm_before = dev_shm_maps()
    with pytest.raises(KeyError, match="boom"), DeviceRunner(load_bins("a5"), isolate=True) as r:
        pid = r.pid
        graphs = [r.prepare(chain_graph(n, name=f"g{n}")) for n in (16, 4096, 100_000)]
        for g in graphs:
            g(*chain_inputs(2, g.graph.inputs[0].size))
        assert len(my_memfd_maps()) == 3  # one region per prepared graph, mapped here
        worker_maps = Path(f"/proc/{pid}/maps").read_text()
        assert worker_maps.count(f"/memfd:{MEMFD_NAME}") == 3  # the same regions, in the worker
        # Nothing is named in /dev/shm, so nothing there can be left behind.
        assert "/dev/shm/" not in worker_maps
        assert dev_shm_maps() == shm_before  # (other tests' multiprocessing arenas may be here)
        assert len(my_memfd_fds()) == 3  # only each mapping's own (mmap keeps a dup)
        graphs[0].close()  # closing one graph releases its region at once
        assert len(my_memfd_maps()) == len(my_memfd_fds()) == 2
        with pytest.raises(ValueError, match="finalized"):
            graphs[0](*chain_inputs(2, 16))
        raise KeyError("boom")
    assert not alive(pid)
    assert my_memfd_maps() == [] and my_memfd_fds() == []
    assert all(g.released for g in graphs)


def test_a_runner_never_finalized_stops_its_worker_when_collected(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    runner = DeviceRunner(load_bins("a2a3"), isolate=True)
    prepared: WorkerPrepared = runner.prepare(vector_add_graph(16))
    pid = runner.pid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del runner, prepared
        import gc

        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert not alive(pid)
    assert my_memfd_maps() == []


def test_several_programs_each_with_both_runtimes_on_one_device(
    runtime_lib: Path, fresh_device: Path
) -> None:
    """Concurrency: several real parent processes, each with two isolated runners on device 0."""
    from tests.runtime.runtime_workers import run_processes
    from tests.runtime.worker_programs import two_runtimes_program

    manifests = [str(runtime_lib / "a2a3" / rt) for rt in RUNTIMES]
    results = run_processes([(two_runtimes_program, (manifests, seed)) for seed in range(2)])
    assert results == [[True, True]] * 2


def test_a_worker_whose_parent_is_killed_exits_on_its_own(runtime_lib: Path) -> None:
    import multiprocessing as mp
    import time

    from tests.runtime.worker_programs import report_worker_then_wait

    ctx = mp.get_context("spawn")
    pids = ctx.Queue()
    parent = ctx.Process(
        target=report_worker_then_wait, args=(str(runtime_lib / "a2a3" / RUNTIMES[0]), pids)
    )
    parent.start()
    try:
        worker = pids.get(timeout=HANG_BOUND)
        assert alive(worker)
    finally:
        parent.kill()
        parent.join(HANG_BOUND)
    deadline = time.monotonic() + HANG_BOUND  # a hang guard, not a timing claim
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived its killed parent"


def test_per_run_options_and_cast_work_through_a_worker(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """prepared(..., block_dim=, aicpu_threads=, cast=) means the same isolated or not."""
    with (
        DeviceRunner(load_bins("a5"), device_id=0, isolate=True) as isolated,
        DeviceRunner(load_bins("a5"), device_id=1) as in_process,
    ):
        results = []
        for runner in (isolated, in_process):
            prepared = runner.prepare(vector_add_graph(64))
            a, b = np.arange(64.0), np.ones(64)  # float64: only with cast=True
            with pytest.raises(TypeError, match="cast=True"):
                prepared(a, b)
            (out,) = prepared(a, b, cast=True, block_dim=2, aicpu_threads=3)
            np.testing.assert_array_equal(out, (a + b).astype(np.float32))
            with pytest.raises(ValueError, match="block_dim=37"):
                prepared(a, b, cast=True, block_dim=37)
            results.append(out)
        np.testing.assert_array_equal(results[0], results[1])
