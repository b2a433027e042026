"""Runtime promises no other test pins: dependency order, device memory on failure paths,
and `finalize()` releasing what the runner took.

Each test here exists because a deliberate bug in the promise it names passed
the rest of the suite; `tests/mutants.py` keeps those bugs and checks that
these tests still catch them.
"""

from __future__ import annotations

import ctypes
import gc
import weakref
from collections.abc import Callable

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, Graph, PreparedGraph, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime.abi import Task
from simpler_build.runtime.sim.errors import ACL_ERROR_RT_MEMORY_ALLOCATION
from tests.conftest import ARCHES, RUNTIMES

H2D, D2H = sim.MemcpyKind.HOST_TO_DEVICE, sim.MemcpyKind.DEVICE_TO_HOST
N = 64


def _hazard_graph(n: int = N) -> Graph:
    """RAW, WAR and WAW on shared buffers: the result depends on honouring all three."""
    g = Graph("hazards")
    a, b = g.input("a", n), g.input("b", n)
    t, out1, out2 = g.temp("t", n), g.output("out1", n), g.output("out2", n)
    g.add(t, a, b)  # 0: t = a + b
    g.mul(out1, t, a)  # 1: out1 = t * a
    g.adds(t, b, 1.0)  # 2: t = b + 1
    g.add(out2, t, out1)  # 3: out2 = t + out1
    g.adds(a, a, 0.5)  # 4: a += 0.5, after 0 and 1 have read a
    return g


def _hazard_reference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out1 = (a + b) * a
    return out1, (b + np.float32(1)) + out1


def _read(runner: DeviceRunner, obj: ctypes.Array, addr: int) -> None:
    size = ctypes.sizeof(obj)
    sim.rtMemcpy(runner.ctx, ctypes.addressof(obj), size, addr, size, D2H)


def _write(runner: DeviceRunner, addr: int, obj: ctypes.Array) -> None:
    size = ctypes.sizeof(obj)
    sim.rtMemcpy(runner.ctx, addr, size, ctypes.addressof(obj), size, H2D)


def _reorder_task_array(runner: DeviceRunner, prepared: PreparedGraph, perm: list[int]) -> None:
    """Rewrite the device task array so that slot i holds program task perm[i], with the
    predecessor lists renumbered: the same graph, listed out of dependency order."""
    n, args = len(perm), prepared.host_args
    tasks = (Task * n)()
    _read(runner, tasks, args.tasks)
    deps = (ctypes.c_uint32 * sum(t.dep_count for t in tasks))()
    _read(runner, deps, args.deps)
    slot = {task: i for i, task in enumerate(perm)}
    new_tasks, new_deps = (Task * n)(), (ctypes.c_uint32 * len(deps))()
    filled = 0
    for i, task in enumerate(perm):
        old = tasks[task]
        new_tasks[i] = old
        new_tasks[i].dep_begin = filled
        for p in deps[old.dep_begin : old.dep_begin + old.dep_count]:
            new_deps[filled] = slot[p]
            filled += 1
    _write(runner, args.tasks, new_tasks)
    _write(runner, args.deps, new_deps)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("perm", [[4, 3, 2, 1, 0], [1, 0, 3, 2, 4]], ids=["reversed", "swapped"])
def test_host_build_graph_follows_edges_not_array_order(
    arch: str, perm: list[int], load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """Task 0 of the array waits for task 1: a walk in index order gets it wrong."""
    graph = _hazard_graph()
    preds = graph.predecessors()
    rng = np.random.default_rng(7)
    a, b = rng.random(N, dtype=np.float32), rng.random(N, dtype=np.float32)
    with DeviceRunner(load_bins(arch, "host_build_graph")) as runner:
        prepared = runner.prepare(graph)
        _reorder_task_array(runner, prepared, perm)
        got1, got2 = prepared(a, b)
        order = [perm[slot] for slot in prepared.last_order()]  # back to program numbering
    assert sorted(order) == list(range(len(perm)))
    for task, ps in enumerate(preds):
        assert all(order.index(p) < order.index(task) for p in ps), (order, preds)
    out1, out2 = _hazard_reference(a, b)
    np.testing.assert_allclose(got1, out1, rtol=1e-6)
    np.testing.assert_allclose(got2, out2, rtol=1e-6)


def _two_chains(n: int = N) -> Graph:
    """Chain P of three tasks and chain Q of two, listed P then Q."""
    g = Graph("two_chains")
    x, y = g.input("x", n), g.input("y", n)
    p1, p2, q1 = g.temp("p1", n), g.temp("p2", n), g.temp("q1", n)
    p3, q2 = g.output("p3", n), g.output("q2", n)
    g.add(p1, x, y)  # 0: P
    g.mul(p2, p1, x)  # 1: P
    g.adds(p3, p2, 2.0)  # 2: P
    g.adds(q1, y, 1.0)  # 3: Q
    g.mul(q2, q1, y)  # 4: Q
    return g


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_independent_chains_run_wave_by_wave(
    arch: str, runtime: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """aicpu_build_graph runs every task whose predecessors are done in the same wave
    (the heads of both chains first); host_build_graph's FIFO ready queue agrees."""
    rng = np.random.default_rng(8)
    x, y = rng.random(N, dtype=np.float32), rng.random(N, dtype=np.float32)
    with DeviceRunner(load_bins(arch, runtime), aicpu_threads=1) as runner:
        prepared = runner.prepare(_two_chains())
        p3, q2 = prepared(x, y)
        assert prepared.last_order() == [0, 3, 1, 4, 2]
        assert prepared.num_edges == 3
    np.testing.assert_allclose(p3, (x + y) * x + np.float32(2), rtol=1e-6)
    np.testing.assert_allclose(q2, (y + np.float32(1)) * y, rtol=1e-6)


# -- device memory on failure paths --------------------------------------------------------


def test_prepare_that_runs_out_of_hbm_frees_what_it_allocated(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    bins = load_bins("a5")
    with DeviceRunner(bins) as probe:
        peak = int(probe.stats["hbm_peak"])
        idle = int(probe.stats["context_hbm_in_use"])
    big = 1 << 20  # elements per buffer: 4 MiB each, far above everything else
    cap = idle + 2 * 4 * big + 4 * big // 2  # the third buffer of the graph does not fit
    assert cap > peak
    g = Graph("too_big")
    a, b = g.input("a", big), g.input("b", big)
    g.add(g.output("out", big), a, b)
    with DeviceRunner(bins, hbm_bytes=cap) as runner:
        before = runner.stats["hbm_in_use"]
        with pytest.raises(sim.CannError) as info:
            runner.prepare(g)
        assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION
        assert runner.stats["hbm_in_use"] == before, "the failed prepare leaked its buffers"
        small = Graph("small")
        u, v = small.input("u", 8), small.input("v", 8)
        small.add(small.output("w", 8), u, v)
        (w,) = runner.prepare(small)(np.ones(8, np.float32), np.ones(8, np.float32))
        assert (w == 2).all()


def test_a_runner_that_bootstrapped_holds_what_one_that_skipped_holds(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """The bootstrap's staging buffers (both SOs, DeviceArgs, the loader's KernelArgs) are freed."""
    bins = load_bins("a2a3")
    with DeviceRunner(bins) as first, DeviceRunner(bins) as second:
        assert (first.stats["dispatcher_bootstraps"], second.stats["dispatcher_bootstraps"]) == (
            1,
            0,
        )
        assert first.stats["context_hbm_in_use"] == second.stats["context_hbm_in_use"]
        resident = bins.inner_so.stat().st_size  # rtsBinaryLoadFromFile keeps the inner SO
        assert first.stats["context_hbm_in_use"] == resident


# -- finalize releases what it took ------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_finalize_destroys_its_stream_unloads_its_binary_and_drops_its_handle(
    runtime: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """Context teardown would release everything anyway, so the simulator records what the
    teardown had to release: only the AICore handle, which has no unregister call."""
    bins = load_bins("a5", runtime)
    ones = np.ones(8, np.float32)
    with DeviceRunner(bins) as other:  # keeps the device up: runner's teardown is its own
        runner = DeviceRunner(bins)
        small = Graph("small")
        u, v = small.input("u", 8), small.input("v", 8)
        small.add(small.output("w", 8), u, v)
        runner.prepare(small)(ones, ones)
        ctx, device = runner.ctx, runner.ctx.device
        assert ctx.live() == {"stream": 2, "binary": 1, "aicore_handle": 1}  # AICPU + AICore
        handle = weakref.ref(runner._kernel_handle())
        runner.finalize()
        assert not ctx.alive
        assert ctx.released_at_teardown == {"aicore_handle": 1}
        gc.collect()
        assert handle() is None, "finalize kept a reference to the AICore handle"
        assert device.hbm.in_use == other.stats["context_hbm_in_use"]
        assert other.ctx.live() == {"stream": 2, "binary": 1}
    assert device.released_at_teardown == {"aicore_handle": 1}  # other never registered one


def test_a_corrupt_preinstalled_file_is_reinstalled_without_being_trusted_first(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """A fresh process asks whether the file is installed *and intact* before skipping."""
    bins = load_bins("a5")
    with DeviceRunner(bins) as first:
        path = first._op.preinstalled_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = path.with_name("damaged")
    damaged.write_bytes(bytes(data))
    damaged.replace(path)  # a new inode: no memo can mistake it for the intact file
    aicpu_op.forget_bootstraps()
    with DeviceRunner(bins) as runner:
        assert runner.stats["dispatcher_bootstraps"] == 1
    assert aicpu_op.process_stats() == {"bootstraps": 1}
    assert path.read_bytes() == bins.inner_so.read_bytes()
