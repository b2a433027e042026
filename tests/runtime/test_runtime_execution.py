"""The simulated device's execution model: concurrent AICPU threads, arguments by value,
op timeouts and sticky faults (issue 10; docs/simulated-device.md).

The probing kernels live in `kernels/sim_test_kernels.c`, compiled here with
the system C compiler and loaded the way every CPU kernel is: preinstalled on
the device filesystem, named by an op-registration JSON.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, DeviceUnusableError, RuntimeBinaries, sim
from simpler_build.runtime.samples import chain_reference
from simpler_build.runtime.sim import errors, profile_for
from tests.conftest import ARCHES, REPO

H2D, D2H = sim.MemcpyKind.HOST_TO_DEVICE, sim.MemcpyKind.DEVICE_TO_HOST
KERNELS = ("sim_test_barrier", "sim_test_scribble", "sim_test_spin", "sim_test_fail")
SO_NAME = "sim_test_kernels.so"
#: Generous bound for launches that must finish: a hang ends as a failure, never as a stuck run.
SHORT = 20.0


@pytest.fixture(scope="session")
def test_kernels_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (the build uses it too)"
    out = tmp_path_factory.mktemp("kernels") / SO_NAME
    src = Path(__file__).parent / "kernels" / "sim_test_kernels.c"
    subprocess.run(
        [cc, "-std=gnu11", "-O2", "-fPIC", "-shared", "-I", str(REPO / "runtime" / "include"),
         "-o", str(out), str(src)],
        check=True,
    )  # fmt: skip
    return out


def _load_kernels(ctx: sim.Context, so: Path, tmp_path: Path) -> dict[str, sim.FuncHandle]:
    pre = sim.preinstall_dir(ctx.device.device_id)
    pre.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(so, pre / SO_NAME)
    path_a = {"opKernelLib": "AICPUKernel", "userDefined": "False"}
    doc = {
        f"SimTest_{k}": {"opInfo": {"kernelSo": SO_NAME, "functionName": k, **path_a}}
        for k in KERNELS
    }
    path = tmp_path / f"sim_test_{ctx.device.device_id}.json"
    path.write_text(json.dumps(doc))
    binary = sim.rtsBinaryLoadFromFile(ctx, path)
    return {k: sim.rtsFuncGetByName(binary, f"SimTest_{k}") for k in KERNELS}


@pytest.fixture
def kernels_on(test_kernels_so: Path, tmp_path: Path) -> Callable[[sim.Context], dict]:
    return lambda ctx: _load_kernels(ctx, test_kernels_so, tmp_path)


def _device_u32(ctx: sim.Context, count: int) -> int:
    addr = sim.rtMalloc(ctx, 4 * count)
    zeros = (ctypes.c_uint32 * count)()
    sim.rtMemcpy(ctx, addr, 4 * count, ctypes.addressof(zeros), 4 * count, H2D)
    return addr


@pytest.mark.parametrize("arch", ARCHES)
def test_barrier_needs_every_launch_thread_at_once(
    arch: str, kernels_on: Callable[[sim.Context], dict]
) -> None:
    """All N threads must be inside the kernel together: run one after another, the first
    would wait forever and the op timeout would end the launch in 507046 instead."""
    n = profile_for(arch).launch_aicpu_threads
    assert n == {"a2a3": 6, "a5": 7}[arch]
    ctx = sim.rtCtxCreate(0, arch)
    stream = sim.rtStreamCreate(ctx, op_timeout=SHORT)
    fns = kernels_on(ctx)
    counter, seen = _device_u32(ctx, 1), _device_u32(ctx, n)
    args = (ctypes.c_uint64 * 2)(counter, seen)
    sim.rtsLaunchCpuKernel(fns["sim_test_barrier"], n, stream, ctypes.addressof(args), 16)
    sim.rtStreamSynchronize(stream)
    got = (ctypes.c_uint32 * n)()
    sim.rtMemcpy(ctx, ctypes.addressof(got), 4 * n, seen, 4 * n, D2H)
    assert list(got) == [n] * n  # every index 0..n-1 ran, each told the launch size
    sim.rtCtxDestroy(ctx)


def test_kernel_writes_to_its_argument_block_never_reach_the_host(
    kernels_on: Callable[[sim.Context], dict],
) -> None:
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx, op_timeout=SHORT)
    fns = kernels_on(ctx)
    out = sim.rtMalloc(ctx, 8)
    args = (ctypes.c_uint64 * 3)(out, 1, 2)
    sim.rtsLaunchCpuKernel(fns["sim_test_scribble"], 2, stream, ctypes.addressof(args), 24)
    args[2] = 3  # the block was copied at launch: the host may reuse it at once
    sim.rtStreamSynchronize(stream)
    assert list(args) == [out, 1, 3]
    seen = ctypes.c_uint64()
    sim.rtMemcpy(ctx, ctypes.addressof(seen), 8, out, 8, D2H)
    assert seen.value == 0xDEADBEEF ^ 0xFEEDFACE  # it did write, into the device's copy
    sim.rtCtxDestroy(ctx)


def _assert_unusable(ctx: sim.Context, first: int) -> None:
    """Each of rtMalloc, rtMemcpy and rtStreamCreate: 507899 naming the first fault."""
    buf = ctypes.c_uint64()
    calls: list[Callable[[], object]] = [
        lambda: sim.rtMalloc(ctx, 64),
        lambda: sim.rtMemcpy(ctx, ctypes.addressof(buf), 8, ctypes.addressof(buf), 8, H2D),
        lambda: sim.rtStreamCreate(ctx),
    ]
    for call in calls:
        with pytest.raises(sim.CannError) as info:
            call()
        assert info.value.code == errors.ACL_ERROR_RT_DRV_INTERNAL_ERROR == 507899
        assert str(first) in info.value.detail


@pytest.mark.parametrize("arch", ARCHES)
def test_aicpu_exception_poisons_until_the_right_reset(
    arch: str, kernels_on: Callable[[sim.Context], dict]
) -> None:
    """507018 poisons the device; a soft reset recovers a2a3, only a force reset recovers a5."""
    ctx = sim.rtCtxCreate(0, arch)
    stream = sim.rtStreamCreate(ctx, op_timeout=SHORT)
    fns = kernels_on(ctx)
    block = ctypes.c_uint64()
    sim.rtsLaunchCpuKernel(fns["sim_test_fail"], 3, stream, ctypes.addressof(block), 8)
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamSynchronize(stream)
    assert info.value.code == errors.ACL_ERROR_RT_AICPU_EXCEPTION == 507018
    _assert_unusable(ctx, 507018)

    sim.rtDeviceReset(0)
    ctx = sim.rtCtxCreate(0, arch)
    if arch == "a2a3":
        sim.rtFree(ctx, sim.rtMalloc(ctx, 64))  # the soft reset cleared the poison
    else:
        _assert_unusable(ctx, 507018)  # a5: the poison outlived the soft reset
        sim.rtDeviceResetForce(0)
        ctx = sim.rtCtxCreate(0, arch)
        sim.rtFree(ctx, sim.rtMalloc(ctx, 64))
    sim.rtCtxDestroy(ctx)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_kernel_that_never_finishes_ends_in_507046_within_the_runner_op_timeout(
    arch: str,
    kernels_on: Callable[[sim.Context], dict],
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., object],
) -> None:
    bins = load_bins(arch)
    runner = DeviceRunner(bins, op_timeout=0.5)
    prepared = runner.prepare(make_chain(n=64))
    fns = kernels_on(runner.ctx)
    block = ctypes.c_uint64()
    sim.rtsLaunchCpuKernel(fns["sim_test_spin"], 2, runner.stream, ctypes.addressof(block), 8)
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamSynchronize(runner.stream)
    assert info.value.code == errors.ACL_ERROR_RT_STREAM_SYNC_TIMEOUT == 507046
    assert "0.5 s op timeout" in info.value.detail
    _assert_unusable(runner.ctx, 507046)
    ones = np.ones(64, np.float32)
    for attempt in (lambda: prepared(ones, ones, ones), lambda: runner.prepare(make_chain())):
        with pytest.raises(DeviceUnusableError, match=r"device 0 unusable: .*507046") as refused:
            attempt()
        assert refused.value.fault.code == 507046
    runner.finalize()  # force-resets the poisoned device, on a5 too
    assert sim.get_device(0) is None
    with DeviceRunner(bins) as healthy:
        (out,) = healthy.prepare(make_chain(n=64))(ones, ones, ones)
    np.testing.assert_allclose(out, chain_reference(ones, ones, ones), rtol=1e-6)


def test_exec_that_cannot_trust_its_block_is_an_aicpu_exception(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., object]
) -> None:
    """A corrupt argument block (bad magic) fails the launch itself: 507018, device poisoned,
    one DeviceUnusableError naming it afterwards."""
    runner = DeviceRunner(load_bins("a5"), op_timeout=SHORT)
    prepared = runner.prepare(make_chain(n=8))
    prepared.host_args.magic = 0
    ones = np.ones(8, np.float32)
    with pytest.raises(sim.CannError) as info:
        prepared(ones, ones, ones)
    assert info.value.code == 507018
    with pytest.raises(DeviceUnusableError, match="507018"):
        prepared(ones, ones, ones)
    runner.finalize()
    assert sim.get_device(0) is None


@pytest.mark.parametrize(("arch", "bad"), [("a2a3", 0), ("a2a3", 5), ("a5", 8), ("a5", True)])
def test_active_thread_count_is_validated(
    arch: str, bad: int, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    most = {"a2a3": 4, "a5": 7}[arch]
    with pytest.raises(
        ValueError, match=f"aicpu_threads={bad!r}: an {arch} device runs 1 to {most}"
    ):
        DeviceRunner(load_bins(arch), aicpu_threads=bad)
    assert sim.get_device(0) is None  # refused before any device state
    with DeviceRunner(load_bins(arch), aicpu_threads=most) as runner:
        assert runner.stats["aicpu_threads"] == most
        assert runner.stats["launch_threads"] == {"a2a3": 6, "a5": 7}[arch]


def test_op_timeout_is_validated(load_bins: Callable[..., RuntimeBinaries]) -> None:
    for bad in (0, -1.0, "5"):
        with pytest.raises(ValueError, match=f"op_timeout={bad!r}"):
            DeviceRunner(load_bins("a2a3"), op_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ARCHES)
def test_aicore_and_aicpu_on_one_stream_end_in_507046_within_the_op_timeout(
    arch: str, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., object]
) -> None:
    """The AICore side stays resident until the exec is done; queued on the AICPU's stream it
    blocks the exec behind it, which can never start: the op timeout ends it (no hang)."""
    runner = DeviceRunner(load_bins(arch), op_timeout=0.5)
    assert runner.aicore_stream is not runner.stream
    prepared = runner.prepare(make_chain(n=64))
    ones = np.ones(64, np.float32)
    (out,) = prepared(ones, ones, ones)  # two streams: the handshake completes
    np.testing.assert_allclose(out, chain_reference(ones, ones, ones), rtol=1e-6)
    runner.aicore_stream = runner.stream  # the misconfiguration (upstream #1852)
    with pytest.raises(sim.CannError) as info:
        prepared(ones, ones, ones)
    assert info.value.code == errors.ACL_ERROR_RT_STREAM_SYNC_TIMEOUT == 507046
    assert "simpler_aicore_main" in info.value.detail
    with pytest.raises(DeviceUnusableError, match="507046"):
        prepared(ones, ones, ones)
    runner.finalize()
    assert sim.get_device(0) is None


def test_op_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = sim.rtCtxCreate(0, "a2a3")
    monkeypatch.setenv("SIMPLER_SIM_OP_TIMEOUT", "2.5")
    assert sim.rtStreamCreate(ctx).op_timeout == 2.5
    assert sim.rtStreamCreate(ctx, op_timeout=0.25).op_timeout == 0.25  # explicit wins
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("SIMPLER_SIM_OP_TIMEOUT", bad)
        with pytest.raises(ValueError, match="SIMPLER_SIM_OP_TIMEOUT"):
            sim.rtStreamCreate(ctx)
    sim.rtCtxDestroy(ctx)
