"""The exec's multi-threaded scheduler: identical results for every number of active threads,
and the block limits `prepare` enforces (issue 10; docs/simulated-device.md).

Random graphs of 1 to 500 tasks read and write a small pool of buffers, so
RAW, WAR and WAW hazards are everywhere; every run is compared bit for bit
with a NumPy evaluation in program order, for 1..max scheduler threads, on
both runtimes and both arches.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, Graph, RuntimeBinaries, sim
from simpler_build.runtime.abi import Task
from simpler_build.runtime.sim import profile_for
from tests.conftest import ARCHES, RUNTIMES

N = 8  # elements per buffer: the scheduler, not the kernels, is under test
SIZES = (1, 2, 3, 5, 17, 64, 181, 500)  # plus four drawn at random per test


def _random_graph(rng: np.random.Generator, n: int, max_block_dim: int) -> tuple[Graph, Callable]:
    """A graph of `n` tasks and the function computing its output with NumPy in program order."""
    g = Graph(f"random{n}")
    inputs = [g.input(f"in{i}", N) for i in range(3)]
    temps = [g.temp(f"t{i}", N) for i in range(min(n, 12))]
    out = g.output("out", N)
    written = list(inputs)  # only what this run already wrote is read: runs are independent
    steps = []
    for i in range(n):
        dst = out if i == n - 1 or not temps else temps[rng.integers(len(temps))]
        if rng.random() < 0.15 and out in written:
            dst = out
        a, b = (written[rng.integers(len(written))] for _ in range(2))
        op = int(rng.integers(3))
        dim = int(rng.integers(max_block_dim + 1))  # 0: every block
        if op == 0:
            g.add(dst, a, b, block_dim=dim)
        elif op == 1:
            g.mul(dst, a, b, block_dim=dim)
        else:
            s = float(rng.integers(-4, 5)) / 4
            g.adds(dst, a, s, block_dim=dim)
            b = s
        steps.append((op, dst.name, a.name, b if op == 2 else b.name))
        if dst not in written:
            written.append(dst)

    def reference(values: dict[str, np.ndarray]) -> np.ndarray:
        env = {k: v.copy() for k, v in values.items()}
        with np.errstate(all="ignore"):  # long chains may overflow; the device must agree
            return _evaluate(env, steps)

    return g, reference


def _evaluate(env: dict[str, np.ndarray], steps: list[tuple]) -> np.ndarray:
    for op, dst, a, b in steps:
        if op == 0:
            env[dst] = env[a] + env[b]
        elif op == 1:
            env[dst] = env[a] * env[b]
        else:
            env[dst] = env[a] + np.float32(b)
    return env["out"]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_results_identical_for_every_active_thread_count(
    arch: str, runtime: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    profile = profile_for(arch)
    bins = load_bins(arch, runtime)
    rng = np.random.default_rng(10 + len(arch) + len(runtime))
    runners = [DeviceRunner(bins, aicpu_threads=t) for t in range(1, profile.max_sched_threads + 1)]
    try:
        for n in (*SIZES, *rng.integers(1, 501, 4).tolist()):
            graph, reference = _random_graph(rng, n, profile.max_block_dim)
            values = {f"in{i}": rng.uniform(-1, 1, N).astype(np.float32) for i in range(3)}
            want = reference(values)
            preds = graph.predecessors()
            for runner in runners:
                prepared = runner.prepare(graph)
                for _ in range(2):  # a second run must not see the first one's scheduler state
                    (got,) = prepared(**values)
                    np.testing.assert_array_equal(got, want, err_msg=f"{n} tasks, {runner.stats}")
                assert prepared.last_threads == runner.aicpu_threads
                order = prepared.last_order()
                assert sorted(order) == list(range(n))
                place = {task: k for k, task in enumerate(order)}
                assert all(place[p] < place[t] for t, ps in enumerate(preds) for p in ps)
                assert prepared.num_edges == sum(map(len, preds))
    finally:
        for runner in runners:
            runner.finalize()


@pytest.mark.parametrize(("arch", "limit"), [("a2a3", 24), ("a5", 36)])
def test_block_dim_limit_and_zero_means_all(
    arch: str, limit: int, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    assert profile_for(arch).max_block_dim == limit
    assert (profile_for(arch).aic_cores, profile_for(arch).aiv_cores) == (limit, 2 * limit)
    n = 1000  # more elements than cores: every AIV core of every block gets a slice
    too_big = Graph("too_big")
    x, y = too_big.input("x", n), too_big.output("y", n)
    too_big.adds(y, x, 1.0, block_dim=limit + 1)
    g = Graph("limits")
    x, t, y = g.input("x", n), g.temp("t", n), g.output("y", n)
    g.adds(t, x, 1.0, block_dim=0)
    g.adds(y, t, 2.0, block_dim=limit)
    with DeviceRunner(load_bins(arch)) as runner:
        with pytest.raises(ValueError, match=f"block_dim {limit + 1} exceeds the {arch} limit of "
                           f"{limit}"):  # fmt: skip
            runner.prepare(too_big)
        in_use = runner.stats["hbm_in_use"]
        prepared = runner.prepare(g)
        tasks = (Task * 2)()
        size = ctypes.sizeof(tasks)
        sim.rtMemcpy(runner.ctx, ctypes.addressof(tasks), size, prepared.host_args.tasks, size,
                     sim.MemcpyKind.DEVICE_TO_HOST)  # fmt: skip
        assert [tk.block_dim for tk in tasks] == [limit, limit]  # 0 resolved at prepare
        xs = np.arange(n, dtype=np.float32)
        (out,) = prepared(xs)
        np.testing.assert_array_equal(out, xs + 3)
        assert runner.stats["hbm_in_use"] > in_use  # the refused prepare left nothing behind
