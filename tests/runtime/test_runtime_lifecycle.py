"""The prepared callable's lifecycle (issue 11): close, re-prepare, per-run options, dtypes.

The scenarios follow upstream simpler's prepared-callable tests on a5/host_build_graph
(prepare once and run many, two callables interleaved, release and prepare again, a
double prepare refused, the dlopen counts), checked here against the simulated device's
memory and the process's real mappings.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simpler_build.runtime import (
    AlreadyPreparedError,
    DeviceRunner,
    Graph,
    KernelId,
    PreparedGraph,
    PreparedGraphClosedError,
    RuntimeBinaries,
    aicpu_op,
    sim,
)
from simpler_build.runtime.samples import chain_reference
from tests.conftest import ARCHES, RUNTIMES

N = 256
ONES = np.ones(N, np.float32)


def _inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, c = (rng.standard_normal(N, dtype=np.float32) for _ in range(3))
    return a, b, c


def _run_checked(prepared: PreparedGraph, rng: np.random.Generator, s: float = 2.5) -> None:
    a, b, c = _inputs(rng)
    (out,) = prepared(a, b, c)
    np.testing.assert_allclose(out, chain_reference(a, b, c, s), rtol=1e-6)


def _inner_so_mappings() -> int:
    """Distinct inner-SO files mapped into this process: what dlopen really holds."""
    paths = set()
    for line in Path("/proc/self/maps").read_text(encoding="utf-8").splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and "simpler_inner_" in parts[5]:
            paths.add(parts[5])
    return len(paths)


# -- close -------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("arch", ARCHES)
def test_close_gives_back_exactly_what_prepare_took(
    arch: str,
    runtime: str,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
) -> None:
    rng = np.random.default_rng(11)
    with DeviceRunner(load_bins(arch, runtime)) as runner:
        idle = runner.stats["hbm_in_use"]
        prepared = runner.prepare(make_chain(n=N))
        assert runner.stats["hbm_in_use"] == idle + prepared.nbytes > idle
        prepared.close()
        assert runner.stats["hbm_in_use"] == idle  # never run: nothing else was loaded

        # A warm runner (its AICore module is loaded: runner-wide, kept for the next prepare).
        with runner.prepare(make_chain(n=N, name="warm")) as warm:
            _run_checked(warm, rng)
        before = runner.stats["hbm_in_use"]
        with runner.prepare(make_chain(n=4 * N, name="big")) as big:
            for _ in range(5):
                a, b, c = (rng.standard_normal(4 * N, dtype=np.float32) for _ in range(3))
                (out,) = big(a, b, c)
                np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)
            assert runner.stats["hbm_in_use"] == before + big.nbytes
        assert big.released
        assert runner.stats["hbm_in_use"] == before
        assert runner.stats["open_prepared"] == 0 and runner.stats["closed"] == 3


def test_a_closed_callable_refuses_use_in_one_line(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    with DeviceRunner(load_bins("a5")) as runner:
        prepared = runner.prepare(make_chain(n=N, name="gone"))
        prepared(ONES, ONES, ONES)
        prepared.close()
        prepared.close()  # idempotent, like a file's close
        for use in (
            lambda: prepared(ONES, ONES, ONES),
            lambda: prepared(ONES, ONES, ONES, aicpu_threads=1),
            lambda: prepared(ONES, ONES, ONES, block_dim=2),
            lambda: runner.run(prepared, ONES, ONES, ONES),
            prepared.last_order,
        ):
            with pytest.raises(PreparedGraphClosedError) as info:
                use()
            assert str(info.value).count("\n") == 0
            assert "'gone' was closed" in str(info.value)
        assert "closed" in repr(prepared)
        kept = runner.prepare(make_chain(n=N))
    kept.close()  # after finalize: the teardown freed it already; harmless
    assert kept.released


def test_another_runners_callable_is_refused(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    bins = load_bins("a2a3")
    with DeviceRunner(bins) as one, DeviceRunner(bins) as two:
        prepared = one.prepare(make_chain(n=N))
        with pytest.raises(ValueError, match="belongs to another runner"):
            two.run(prepared, ONES, ONES, ONES)


# -- double prepare ------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_preparing_one_graph_twice_is_refused_and_costs_nothing(
    arch: str, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(12)
    graph = make_chain(n=N)
    with DeviceRunner(load_bins(arch, "host_build_graph")) as runner:
        first = runner.prepare(graph)
        _run_checked(first, rng)
        held = runner.stats["hbm_in_use"]
        mapped = _inner_so_mappings()
        with pytest.raises(AlreadyPreparedError, match="already prepared on this runner"):
            runner.prepare(graph)
        assert runner.stats["hbm_in_use"] == held  # the refused prepare allocated nothing
        assert _inner_so_mappings() == mapped
        assert runner.stats["prepared"] == 1
        _run_checked(first, rng)  # the first callable is untouched
        twin = runner.prepare(make_chain(n=N))  # an equal but distinct graph object is fine
        _run_checked(twin, rng)
        first.close()
        again = runner.prepare(graph)  # closed: the graph may be prepared again
        _run_checked(again, rng)


# -- upstream's scenarios ------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_two_callables_interleaved_share_one_load_and_one_registration(
    runtime: str, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(13)
    baseline = _inner_so_mappings()
    with DeviceRunner(load_bins("a5", runtime)) as runner:
        device = runner.ctx.device
        loads = device.stats["binaries_loaded"]
        primary = runner.prepare(make_chain(n=N, s=1.0, name="primary"))
        secondary = runner.prepare(make_chain(n=N, s=-3.0, name="secondary"))
        for _ in range(5):
            _run_checked(primary, rng, 1.0)
            _run_checked(secondary, rng, -3.0)
        stats = runner.stats
        assert stats["runs"] == 10 and stats["aicore_registrations"] == 1
        assert device.stats["binaries_loaded"] == loads  # prepare loads nothing
        assert _inner_so_mappings() == baseline + 1  # one inner SO dlopened, by the runner
        secondary.close()
        _run_checked(primary, rng, 1.0)
        primary.close()
    assert _inner_so_mappings() == baseline


def test_close_and_prepare_again_reloads_nothing(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(14)
    graph = make_chain(n=N)
    with DeviceRunner(load_bins("a5", "host_build_graph")) as runner:
        device = runner.ctx.device
        with runner.prepare(graph) as prepared:
            _run_checked(prepared, rng)
        loads, modules = device.stats["binaries_loaded"], device.stats["aicore_module_loads"]
        mapped = _inner_so_mappings()
        for _ in range(3):
            with runner.prepare(graph) as prepared:
                _run_checked(prepared, rng)
        assert runner.stats["prepared"] == 4 and runner.stats["closed"] == 4
        assert runner.stats["aicore_registrations"] == 1
        assert device.stats["binaries_loaded"] == loads
        assert device.stats["aicore_module_loads"] == modules
        assert _inner_so_mappings() == mapped


def test_the_inner_so_is_bootstrapped_once_per_process_and_registered_once_per_runner(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(15)
    bins = load_bins("a5", "host_build_graph")
    for i in range(3):
        with DeviceRunner(bins) as runner:
            for _ in range(2):
                with runner.prepare(make_chain(n=N)) as prepared:
                    for _ in range(3):
                        _run_checked(prepared, rng)
            assert runner.stats["aicore_registrations"] == 1
            assert runner.stats["dispatcher_bootstraps"] == (1 if i == 0 else 0)
    assert aicpu_op.process_stats()["bootstraps"] == 1


@pytest.mark.parametrize("arch", ARCHES)
def test_wrong_inputs_are_refused_and_the_callable_still_runs(
    arch: str, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(16)
    with DeviceRunner(load_bins(arch)) as runner:
        prepared = runner.prepare(make_chain(n=N))
        runs = runner.stats["runs"]
        with pytest.raises(ValueError, match=r"input 'b' has shape \(128,\), graph says \(256,\)"):
            prepared(ONES, np.ones(128, np.float32), ONES)
        with pytest.raises(ValueError, match="shape"):
            prepared(ONES, ONES, np.ones((16, 16), np.float32))
        with pytest.raises(TypeError, match="takes 3 inputs, got 4"):
            prepared(ONES, ONES, ONES, ONES)
        assert runner.stats["runs"] == runs
        _run_checked(prepared, rng)


# -- dtypes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [np.ones(N, np.float64), np.ones(N, np.int32), np.ones(N, np.float16), [1.0] * N]
)
def test_non_float32_inputs_are_refused_unless_cast(
    bad: object, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    with DeviceRunner(load_bins("a2a3")) as runner:
        prepared = runner.prepare(make_chain(n=N))
        with pytest.raises(
            TypeError, match=r"input 'c' is \w+, graph 'chain' takes float32.*cast=True"
        ):
            prepared(ONES, ONES, bad)
        with pytest.raises(TypeError, match="input 'c' is"):
            prepared(ONES, ONES, c=bad)
        (out,) = prepared(ONES, ONES, bad, cast=True)
        np.testing.assert_array_equal(out, np.full(N, 4.5, np.float32))
        (out,) = prepared(ONES, b=ONES, c=bad, cast=True)
        np.testing.assert_array_equal(out, np.full(N, 4.5, np.float32))


def test_cast_rounds_float64_like_numpy(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    rng = np.random.default_rng(17)
    a, b, c = (rng.standard_normal(N) for _ in range(3))  # float64
    with DeviceRunner(load_bins("a5")) as runner:
        (out,) = runner.prepare(make_chain(n=N))(a, b, c, cast=True)
    f = [x.astype(np.float32) for x in (a, b, c)]
    np.testing.assert_allclose(out, chain_reference(*f), rtol=1e-6)


def test_input_names_that_are_run_options_are_refused() -> None:
    g = Graph("g")
    for name in ("block_dim", "aicpu_threads", "cast"):
        with pytest.raises(ValueError, match=f"input name '{name}' is a run option"):
            g.input(name, 4)
    g.output("cast", 4)  # outputs are never passed by name: allowed


# -- per-run options -----------------------------------------------------------------------


KernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)


@pytest.mark.parametrize(("arch", "most"), [("a2a3", 24), ("a5", 36)])
def test_block_dim_per_run_reaches_the_kernels_and_is_restored(
    arch: str,
    most: int,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
) -> None:
    """A probe in the kernel table records the core count the AICPU hands the adds kernel."""
    rng = np.random.default_rng(18)
    seen: list[int] = []
    with DeviceRunner(load_bins(arch)) as runner:
        prepared = runner.prepare(make_chain(n=N))
        _run_checked(prepared, rng)  # loads the AICore module and its table
        table = runner._kernel_handle().table
        assert table is not None
        real = KernelFn(table[KernelId.VEC_ADDS])

        def probe(args: int, core: int, cores: int) -> int:
            if core == 0:
                seen.append(cores)
            return int(real(args, core, cores))

        hook = KernelFn(probe)
        table[KernelId.VEC_ADDS] = ctypes.cast(hook, ctypes.c_void_p).value
        try:
            _run_checked(prepared, rng)
            a, b, c = _inputs(rng)
            (out,) = prepared(a, b, c, block_dim=3)
            np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)
            prepared(a, b, c, block_dim=0)  # 0: every block
            prepared(a, b, c, block_dim=most)
            prepared(a, b, c)  # back to the prepared block counts
        finally:
            table[KernelId.VEC_ADDS] = ctypes.cast(real, ctypes.c_void_p).value
    # Vector kernels run on 2 AIV cores per block.
    assert seen == [2 * most, 2 * 3, 2 * most, 2 * most, 2 * most]


@pytest.mark.parametrize(("arch", "most"), [("a2a3", 4), ("a5", 7)])
def test_aicpu_threads_per_run_apply_to_that_run_only(
    arch: str,
    most: int,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
) -> None:
    rng = np.random.default_rng(19)
    with DeviceRunner(load_bins(arch, "aicpu_build_graph"), aicpu_threads=2) as runner:
        prepared = runner.prepare(make_chain(n=N))
        for threads in (2, 1, most):
            a, b, c = _inputs(rng)
            (out,) = prepared(a, b, c, aicpu_threads=threads)
            np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)
            assert prepared.last_threads == threads
        _run_checked(prepared, rng)
        assert prepared.last_threads == 2  # the runner's own count again
        assert prepared.host_args.active_threads == 2


@pytest.mark.parametrize(
    ("arch", "option", "value", "message"),
    [
        ("a2a3", "block_dim", 25, r"block_dim=25: an a2a3 run takes 0 to 24 blocks"),
        ("a5", "block_dim", 37, r"block_dim=37: an a5 run takes 0 to 36 blocks"),
        ("a5", "block_dim", -1, r"block_dim=-1: .*0 to 36"),
        ("a5", "block_dim", 2.0, r"block_dim=2.0: .*0 to 36"),
        ("a2a3", "aicpu_threads", 5, r"aicpu_threads=5: an a2a3 device runs 1 to 4"),
        ("a2a3", "aicpu_threads", 0, r"aicpu_threads=0: an a2a3 device runs 1 to 4"),
        ("a5", "aicpu_threads", 8, r"aicpu_threads=8: an a5 device runs 1 to 7"),
        ("a5", "aicpu_threads", True, r"aicpu_threads=True: .*1 to 7"),
    ],
)
def test_run_options_out_of_the_arch_limits_are_refused(
    arch: str,
    option: str,
    value: object,
    message: str,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
) -> None:
    rng = np.random.default_rng(20)
    with DeviceRunner(load_bins(arch)) as runner:
        prepared = runner.prepare(make_chain(n=N))
        with pytest.raises(ValueError, match=message):
            prepared(ONES, ONES, ONES, **{option: value})
        assert runner.stats["runs"] == 0
        _run_checked(prepared, rng)


# -- reprs ---------------------------------------------------------------------------------


def test_reprs_say_what_each_object_is(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    graph = make_chain(n=N)
    assert repr(graph) == "<Graph 'chain': 3 inputs, 1 output, 2 temps, 3 tasks>"
    runner = DeviceRunner(load_bins("a5", "aicpu_build_graph"), aicpu_threads=3)
    with runner:
        prepared = runner.prepare(graph)
        assert repr(runner) == (
            "<DeviceRunner a5/aicpu_build_graph device 0: 3 of 7 AICPU threads, 1 prepared>"
        )
        assert repr(prepared) == (
            f"<PreparedGraph 'chain' a5/aicpu_build_graph device 0: 3 tasks, "
            f"{prepared.nbytes} B on device>"
        )
        prepared.close()
        assert repr(prepared).endswith("3 tasks, closed>")
    assert repr(runner).endswith("finalized>")
    assert sim.get_device(0) is None


def test_options_bench_runs_and_reports_every_variant_against_its_floor(
    runtime_lib: Path,
) -> None:
    """bench/prepared_options_bench.py end to end; its figures are printed, never asserted."""
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            *(sys.executable, str(repo / "bench/prepared_options_bench.py"), "--arch", "a2a3"),
            *("--rounds", "1", "--calls", "3", "--json", "--build-dir", str(runtime_lib.parent)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    variants = {"floor_runner_run", "call_default", "call_aicpu_threads", "call_block_dim"}
    assert set(report["median_us_per_call"]) == set(report["vs_floor"]) == variants
    assert report["vs_floor"]["floor_runner_run"] == 1.0
    assert all(v > 0 for v in report["median_us_per_call"].values())
