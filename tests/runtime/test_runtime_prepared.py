"""The prepared callable: built once, run many times, one AICore registration, flat memory."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import pytest

from simpler_build.runtime import (
    DeviceRunner,
    Graph,
    KernelExecError,
    KernelId,
    RuntimeBinaries,
    Status,
    sim,
)
from simpler_build.runtime.abi import Task
from simpler_build.runtime.samples import chain_reference
from tests.conftest import ARCHES, RUNTIMES

RUNS = 200


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("arch", ARCHES)
def test_prepare_once_run_200_times_under_tight_hbm(
    arch: str,
    runtime: str,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
    one_run_need: Callable[[RuntimeBinaries], int],
) -> None:
    bins = load_bins(arch, runtime)
    elf = bins.aicore.stat().st_size
    cap = one_run_need(bins) + 2 * elf  # one run's need plus room for two AICore ELFs
    rng = np.random.default_rng(1)
    with DeviceRunner(bins, hbm_bytes=cap) as runner:
        prepared = runner.prepare(make_chain(s=-1.25))
        after_first = None
        for i in range(RUNS):
            a, b, c = (rng.standard_normal(4096, dtype=np.float32) for _ in range(3))
            (out,) = prepared(a, b, c)
            expected = chain_reference(a, b, c, -1.25)
            np.testing.assert_allclose(out, expected, rtol=1e-6, err_msg=f"run {i}")
            if i == 0:
                after_first = runner.stats["hbm_in_use"]
        stats = runner.stats
        device = sim.get_device(0)
        assert device is not None and device.hbm.capacity == cap
        assert stats["aicore_registrations"] == 1
        assert device.stats["aicore_registrations"] == 1
        assert stats["hbm_in_use"] == after_first
        assert stats["aicpu_launches"] == RUNS + 1  # + the one simpler_aicpu_init
        assert stats["aicore_launches"] == 3 * RUNS
        assert stats["runs"] == RUNS
    assert sim.get_device(0) is None  # finalize tore the context (and the pinned ELF) down


def test_named_inputs_and_input_checks(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    with DeviceRunner(load_bins("a2a3")) as runner:
        prepared = runner.prepare(make_chain(n=8))
        ones = np.ones(8, np.float32)
        (out,) = runner.run(prepared, ones, c=ones * 3, b=ones * 2)
        np.testing.assert_array_equal(out, np.full(8, 11.5, np.float32))
        with pytest.raises(ValueError, match="shape"):
            prepared(ones, ones, np.ones(9, np.float32))
        with pytest.raises(TypeError, match="missing input 'c'"):
            prepared(ones, ones)
        with pytest.raises(TypeError, match="no input 'd'"):
            prepared(ones, ones, ones, d=ones)
    with pytest.raises(RuntimeError, match="finalized"):
        prepared(ones, ones, ones)


def _hazard_graph(n: int) -> Graph:
    """RAW, WAR and WAW hazards on shared buffers; the result depends on honouring all three."""
    g = Graph("hazards")
    a, b = g.input("a", n), g.input("b", n)
    t, out1, out2 = g.temp("t", n), g.output("out1", n), g.output("out2", n)
    g.add(t, a, b)  # 0: t = a + b
    g.mul(out1, t, a)  # 1: out1 = t * a           (RAW on t)
    g.adds(t, b, 1.0)  # 2: t = b + 1              (WAR with 1, WAW with 0)
    g.add(out2, t, out1)  # 3: out2 = t + out1     (RAW on t and out1)
    g.adds(a, a, 0.5)  # 4: a = a + 0.5 (in place; WAR with 0 and 1)
    return g


def test_host_task_array_encodes_the_predecessor_lists(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """host_build_graph: each task's slice of the device deps array is its predecessor list.

    A FIFO walk of program-ordered tasks can hide a wrong slice, so read it back.
    """
    graph = _hazard_graph(64)
    preds = graph.predecessors()
    n, flat = len(preds), sum(len(p) for p in preds)
    with DeviceRunner(load_bins("a5", "host_build_graph")) as runner:
        prepared = runner.prepare(graph)
        tasks = (Task * n)()
        deps = (ctypes.c_uint32 * flat)()
        d2h = sim.MemcpyKind.DEVICE_TO_HOST
        args = prepared.host_args
        sim.rtMemcpy(runner.ctx, ctypes.addressof(tasks), ctypes.sizeof(tasks), args.tasks,
                     ctypes.sizeof(tasks), d2h)  # fmt: skip
        sim.rtMemcpy(runner.ctx, ctypes.addressof(deps), ctypes.sizeof(deps), args.deps,
                     ctypes.sizeof(deps), d2h)  # fmt: skip
    encoded = [list(deps[t.dep_begin : t.dep_begin + t.dep_count]) for t in tasks]
    assert encoded == preds


@pytest.mark.parametrize("arch", ARCHES)
def test_dependency_order_and_edges_agree_between_runtimes(
    arch: str, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(64, dtype=np.float32), rng.random(64, dtype=np.float32)
    out1 = (a + b) * a
    out2 = (b + 1) + out1
    edges = {}
    graph = _hazard_graph(64)
    preds = graph.predecessors()
    assert preds == [[], [0], [0, 1], [0, 1, 2], [0, 1]]
    for device_id, runtime in enumerate(RUNTIMES):  # one inner SO per device (#923)
        with DeviceRunner(load_bins(arch, runtime), device_id=device_id) as runner:
            prepared = runner.prepare(_hazard_graph(64))
            got1, got2 = prepared(a, b)
            np.testing.assert_allclose(got1, out1, rtol=1e-6)
            np.testing.assert_allclose(got2, out2, rtol=1e-6)
            order = prepared.last_order()
            assert sorted(order) == list(range(5))
            for task, ps in enumerate(preds):
                assert all(order.index(p) < order.index(task) for p in ps), (runtime, order)
            edges[runtime] = prepared.num_edges
    assert edges["host_build_graph"] == edges["aicpu_build_graph"] == 8


def test_matmul_on_a5(load_bins: Callable[..., RuntimeBinaries]) -> None:
    g = Graph("mm")
    x, w, bias = g.input("x", (64, 32)), g.input("w", (32, 48)), g.input("bias", (64, 48))
    y, out = g.temp("y", (64, 48)), g.output("out", (64, 48))
    g.matmul(y, x, w)
    g.add(out, y, bias)
    rng = np.random.default_rng(3)
    xs, ws, bs = (rng.standard_normal(s, dtype=np.float32) for s in ((64, 32), (32, 48), (64, 48)))
    with DeviceRunner(load_bins("a5", "aicpu_build_graph")) as runner:
        (got,) = runner.prepare(g)(xs, ws, bs)
    np.testing.assert_allclose(got, xs @ ws + bs, rtol=1e-4, atol=1e-4)


def test_matmul_refused_on_vector_only_a2a3(load_bins: Callable[..., RuntimeBinaries]) -> None:
    g = Graph("mm")
    x, w, out = g.input("x", (16, 16)), g.input("w", (16, 16)), g.output("out", (16, 16))
    g.matmul(out, x, w)
    with DeviceRunner(load_bins("a2a3")) as runner, pytest.raises(ValueError, match="vector-only"):
        runner.prepare(g)


def test_two_prepared_graphs_share_one_registration(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    with DeviceRunner(load_bins("a5")) as runner:
        p1, p2 = runner.prepare(make_chain(n=16, s=1)), runner.prepare(make_chain(n=32, s=2))
        for _ in range(3):
            (o1,) = p1(*(np.ones(16, np.float32),) * 3)
            (o2,) = p2(*(np.ones(32, np.float32),) * 3)
        assert (o1 == 3).all() and (o2 == 4).all()
        assert runner.stats["aicore_registrations"] == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_aicpu_failure_names_status_and_task_then_runner_recovers(
    runtime: str, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    ones = np.ones(8, np.float32)
    with DeviceRunner(load_bins("a5", runtime)) as runner:
        prepared = runner.prepare(make_chain(n=8))
        prepared(ones, ones, ones)  # the first run loads the AICore module
        handle = runner._kernel_handle()
        assert handle.table is not None
        saved = handle.table[KernelId.VEC_MUL]
        handle.table[KernelId.VEC_MUL] = 0  # the kernel of task 1 disappears
        with pytest.raises(KernelExecError, match="BAD_KERNEL at task 1") as info:
            prepared(ones, ones, ones)
        # Reported through the device-side state: the launch itself succeeded, no fault.
        assert info.value.status == Status.BAD_KERNEL and info.value.failed_task == 1
        assert runner.ctx.device.fault is None
        handle.table[KernelId.VEC_MUL] = saved
        (out,) = prepared(ones, ones, ones)
        np.testing.assert_array_equal(out, np.full(8, 4.5, np.float32))
        assert runner.stats["aicore_registrations"] == 1


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("n", [1, 7, 8, 300, 515, 1024, 2048 + 1000 + 13, 6000])
def test_vector_tiling_covers_every_length_and_core_split(
    arch: str, n: int, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """Tiles of 1024, 512 and 256, a tail of blocks and a rest, aligned or not, in place too."""
    g = Graph("tiles")
    a, b = g.input("a", n), g.input("b", n)
    s, p, out = g.temp("s", n), g.temp("p", n), g.output("out", n)
    g.add(s, a, b)
    g.mul(p, s, a)
    g.adds(p, p, -0.5)  # in place
    g.add(out, p, b)
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    want = ((x + y) * x + np.float32(-0.5)) + y
    with DeviceRunner(load_bins(arch)) as runner:
        prepared = runner.prepare(g)
        for block_dim in (1, 3, 0):  # one core's long slice; odd slices (unaligned); all cores
            (got,) = prepared(x, y, block_dim=block_dim)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{block_dim=}")


@pytest.mark.parametrize(
    ("m", "k", "n"), [(64, 64, 64), (70, 100, 90), (40, 33, 17), (1, 5, 3), (128, 16, 48)]
)
def test_matmul_base_tiles_and_padded_edges(
    m: int, k: int, n: int, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    g = Graph("mm")
    x, w, out = g.input("x", (m, k)), g.input("w", (k, n)), g.output("out", (m, n))
    g.matmul(out, x, w)
    rng = np.random.default_rng(m * k * n)
    xs, ws = (
        rng.standard_normal((m, k), dtype=np.float32),
        rng.standard_normal((k, n), dtype=np.float32),
    )
    with DeviceRunner(load_bins("a5", "aicpu_build_graph")) as runner:
        prepared = runner.prepare(g)
        for block_dim in (1, 2, 0):  # 4x4, 2x2 and 1x1 base tiles; rows split over cores
            (got,) = prepared(xs, ws, block_dim=block_dim)
            np.testing.assert_allclose(got, xs @ ws, rtol=1e-4, atol=1e-4, err_msg=f"{block_dim=}")
