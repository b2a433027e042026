"""The simulated device on its own: memory, handles, loader, binaries and error codes."""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from simpler_build.runtime import RuntimeBinaries, sim
from simpler_build.runtime.abi import DeviceArgs, KernelArgs, KernelId, LoaderKernelArgs
from simpler_build.runtime.sim import errors

H2D, D2H = sim.MemcpyKind.HOST_TO_DEVICE, sim.MemcpyKind.DEVICE_TO_HOST


def _code(exc_info: pytest.ExceptionInfo[sim.CannError]) -> int:
    return exc_info.value.code


def test_hbm_accounting_and_exhaustion() -> None:
    ctx = sim.rtCtxCreate(0, "a2a3", hbm_bytes=1000)
    a = sim.rtMalloc(ctx, 600)
    with pytest.raises(sim.CannError) as info:
        sim.rtMalloc(ctx, 401)
    assert _code(info) == errors.ACL_ERROR_RT_MEMORY_ALLOCATION
    b = sim.rtMalloc(ctx, 400)
    device = sim.get_device(0)
    assert (device.hbm.in_use, device.hbm.peak) == (1000, 1000)
    sim.rtFree(ctx, a)
    assert device.hbm.in_use == 400
    # rtMalloc's own 207001 does not break the driver; only a failed registration does.
    sim.rtStreamCreate(ctx)
    sim.rtFree(ctx, b)
    sim.rtCtxDestroy(ctx)
    assert sim.get_device(0) is None


def test_capacity_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMPLER_SIM_HBM_BYTES", "4096")
    ctx = sim.rtCtxCreate(0, "a5")
    assert ctx.device.hbm.capacity == 4096
    with pytest.raises(sim.CannError, match="not 8192"):
        sim.rtCtxCreate(0, "a5", hbm_bytes=8192)
    sim.rtCtxDestroy(ctx)
    monkeypatch.setenv("SIMPLER_SIM_HBM_BYTES", "lots")
    with pytest.raises(ValueError, match="SIMPLER_SIM_HBM_BYTES"):
        sim.rtCtxCreate(0, "a5")


def test_memcpy_checks_device_ranges() -> None:
    ctx = sim.rtCtxCreate(0, "a5")
    addr = sim.rtMalloc(ctx, 16)
    src = (ctypes.c_uint8 * 32)(*range(32))
    sim.rtMemcpy(ctx, addr, 16, ctypes.addressof(src), 16, H2D)
    back = (ctypes.c_uint8 * 16)()
    sim.rtMemcpy(ctx, ctypes.addressof(back), 16, addr, 16, D2H)
    assert list(back) == list(range(16))
    with pytest.raises(sim.CannError, match="not inside one live allocation"):
        sim.rtMemcpy(ctx, addr + 8, 16, ctypes.addressof(src), 16, H2D)  # overruns the block
    sim.rtFree(ctx, addr)
    with pytest.raises(sim.CannError) as info:
        sim.rtMemcpy(ctx, addr, 16, ctypes.addressof(src), 16, H2D)  # use after free
    assert _code(info) == errors.ACL_ERROR_RT_PARAM_INVALID
    sim.rtCtxDestroy(ctx)


def test_bad_device_ids() -> None:
    for bad in (-1, 16):
        with pytest.raises(sim.CannError) as info:
            sim.rtCtxCreate(bad, "a5")
        assert _code(info) == errors.ACL_ERROR_RT_INVALID_DEVICEID
    with pytest.raises(ValueError, match="unknown arch"):
        sim.rtCtxCreate(0, "a7")


def test_register_and_launch_with_handle(load_bins: Callable[..., RuntimeBinaries]) -> None:
    bins = load_bins("a5")
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx)
    handle = sim.rtRegisterAllKernel(ctx, bins.aicore)
    assert ctx.device.hbm.in_use == 0  # registration records; the first launch loads
    n = 1000
    x = np.arange(n, dtype=np.float32)
    bufs = [sim.rtMalloc(ctx, 4 * n) for _ in range(2)]
    sim.rtMemcpy(ctx, bufs[0], 4 * n, x.ctypes.data, 4 * n, H2D)
    args = KernelArgs(in0=bufs[0], out=bufs[1], n=n, scalar=0.5)
    args_dev = sim.rtMalloc(ctx, ctypes.sizeof(args))
    sim.rtMemcpy(ctx, args_dev, 48, ctypes.addressof(args), 48, H2D)
    sim.rtKernelLaunchWithHandle(handle, KernelId.VEC_ADDS, 7, args_dev, stream)
    sim.rtStreamSynchronize(stream)
    elf = bins.aicore.stat().st_size
    assert ctx.device.hbm.in_use == 2 * 4 * n + 48 + elf  # the whole ELF is pinned now
    assert handle.names[KernelId.MATMUL] == "simpler_kernel_matmul_f32"
    out = np.empty(n, np.float32)
    sim.rtMemcpy(ctx, out.ctypes.data, 4 * n, bufs[1], 4 * n, D2H)
    np.testing.assert_array_equal(out, x + 0.5)
    # A failing kernel (null input) surfaces at synchronize as an AICore exception.
    bad = KernelArgs(in0=0, out=bufs[1], n=n)
    sim.rtMemcpy(ctx, args_dev, 48, ctypes.addressof(bad), 48, H2D)
    sim.rtKernelLaunchWithHandle(handle, KernelId.VEC_ADDS, 2, args_dev, stream)
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamSynchronize(stream)
    assert _code(info) == errors.ACL_ERROR_RT_AICORE_EXCEPTION
    sim.rtDeviceReset(0)
    with pytest.raises(sim.CannError) as info:
        sim.rtKernelLaunchWithHandle(handle, KernelId.VEC_ADDS, 1, args_dev, stream)
    assert _code(info) == errors.ACL_ERROR_RT_INVALID_HANDLE


def _launch_noop(ctx: sim.Context, handle: sim.KernelHandle, stream: sim.Stream, args: int) -> None:
    """A first launch with `handle` (a 0-element add-scalar): it loads the module."""
    block = KernelArgs(in0=args, out=args, n=0)
    sim.rtMemcpy(ctx, args, 48, ctypes.addressof(block), 48, H2D)
    sim.rtKernelLaunchWithHandle(handle, KernelId.VEC_ADDS, 1, args, stream)
    sim.rtStreamSynchronize(stream)


def test_vector_only_binary_has_no_matmul(load_bins: Callable[..., RuntimeBinaries]) -> None:
    ctx = sim.rtCtxCreate(0, "a2a3")
    stream = sim.rtStreamCreate(ctx)
    handle = sim.rtRegisterAllKernel(ctx, load_bins("a2a3").aicore)
    args = sim.rtMalloc(ctx, 48)
    with pytest.raises(sim.CannError) as info:
        sim.rtKernelLaunchWithHandle(handle, KernelId.MATMUL, 1, args, stream)
    assert _code(info) == errors.ACL_ERROR_RT_KERNEL_LOOKUP
    assert handle.table is not None and handle.table[KernelId.MATMUL] == 0
    sim.rtCtxDestroy(ctx)


def test_failed_registration_breaks_driver_until_reset(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    """The module load of the first launch is what pins the ELF: its 207001 breaks the driver."""
    elf = load_bins("a2a3").aicore
    size = elf.stat().st_size
    cap = 2 * size + size // 2 + 48
    ctx = sim.rtCtxCreate(0, "a2a3", hbm_bytes=cap)
    stream = sim.rtStreamCreate(ctx)
    args = sim.rtMalloc(ctx, 48)
    for _ in range(2):
        _launch_noop(ctx, sim.rtRegisterAllKernel(ctx, elf), stream, args)
    assert ctx.device.hbm.in_use == 2 * size + 48  # there is no unregister: both stay pinned
    third = sim.rtRegisterAllKernel(ctx, elf)  # registering alone pins nothing
    assert ctx.device.hbm.in_use == 2 * size + 48
    with pytest.raises(sim.CannError) as info:
        _launch_noop(ctx, third, stream, args)
    assert _code(info) == 207001 and info.value.call == "rtKernelLaunchWithHandle"
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamCreate(ctx)
    assert _code(info) == 507899
    sim.rtDeviceReset(0)
    ctx = sim.rtCtxCreate(0, "a2a3", hbm_bytes=cap)
    assert ctx.device.hbm.in_use == 0
    sim.rtStreamCreate(ctx)
    sim.rtCtxDestroy(ctx)


def test_missing_or_non_elf_aicore_binary(tmp_path: Path) -> None:
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx)
    with pytest.raises(sim.CannError) as info:
        sim.rtRegisterAllKernel(ctx, tmp_path / "absent.elf")
    assert _code(info) == errors.ACL_ERROR_RT_FILE_OPEN
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an elf at all")
    handle = sim.rtRegisterAllKernel(ctx, junk)  # recorded; the module load finds out
    args = sim.rtMalloc(ctx, 48)
    with pytest.raises(sim.CannError, match="does not load"):
        sim.rtKernelLaunchWithHandle(handle, KernelId.VEC_ADDS, 1, args, stream)
    assert ctx.device.hbm.in_use == 48  # nothing stays pinned for a refused binary
    sim.rtCtxDestroy(ctx)


def _loader_args(ctx: sim.Context, dispatcher: bytes, inner: bytes, directory: Path) -> int:
    blocks = {}
    for name, data in (("disp", dispatcher), ("inner", inner), ("dir", bytes(directory) + b"\0")):
        if data:
            blocks[name] = sim.rtMalloc(ctx, len(data))
            sim.rtMemcpy(ctx, blocks[name], len(data), ctypes.cast(data, ctypes.c_void_p).value,
                         len(data), H2D)  # fmt: skip
    da = DeviceArgs(aicpu_so_bin=blocks["disp"], aicpu_so_len=len(dispatcher),
                    inner_so_bin=blocks.get("inner", 0), inner_so_len=len(inner),
                    preinstall_dir=blocks["dir"])  # fmt: skip
    da_dev = sim.rtMalloc(ctx, 160)
    sim.rtMemcpy(ctx, da_dev, 160, ctypes.addressof(da), 160, H2D)
    return da_dev


def test_dispatcher_refuses_an_empty_bundle(
    load_bins: Callable[..., RuntimeBinaries], tmp_path: Path
) -> None:
    bins = load_bins("a5")
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx)
    da = _loader_args(ctx, bins.dispatcher.read_bytes(), b"", tmp_path / "pre")
    init = "DynTileFwkBackendKernelServerInit"
    sim.rtAicpuKernelLaunchExWithArgs(5, init, 1, LoaderKernelArgs(device_args=da), stream)
    with pytest.raises(sim.CannError, match="returned 1") as info:
        sim.rtStreamSynchronize(stream)
    assert _code(info) == errors.ACL_ERROR_RT_AICPU_EXCEPTION
    # The AICPU exception poisoned the device: an a5 needs a force reset.
    sim.rtDeviceResetForce(0)
    ctx = sim.rtCtxCreate(0, "a5")
    stream = sim.rtStreamCreate(ctx)
    # DeviceArgs outside device memory is refused before the dispatcher is touched.
    host_da = DeviceArgs()
    bad = LoaderKernelArgs(device_args=ctypes.addressof(host_da))
    with pytest.raises(sim.CannError, match="not inside one live allocation"):
        sim.rtAicpuKernelLaunchExWithArgs(5, init, 1, bad, stream)
    sim.rtCtxDestroy(ctx)


def _op_json(tmp_path: Path, so: str, op: str = "SimplerAicpuExec") -> Path:
    path = tmp_path / f"{op}.json"
    info = {
        "kernelSo": so,
        "functionName": "simpler_aicpu_exec",
        "opKernelLib": "AICPUKernel",
        "userDefined": "False",
    }
    path.write_text(json.dumps({op: {"opInfo": info}}))
    return path


def test_binary_load_verifies_and_refuses_op_type_collisions(
    load_bins: Callable[..., RuntimeBinaries], tmp_path: Path
) -> None:
    hbg, abg = load_bins("a5", "host_build_graph"), load_bins("a5", "aicpu_build_graph")
    pre = sim.preinstall_dir(0)
    pre.mkdir(parents=True)
    for bins in (hbg, abg):
        (pre / f"simpler_inner_{bins.inner_fingerprint}_0.so").write_bytes(
            bins.inner_so.read_bytes()
        )
    ctx = sim.rtCtxCreate(0, "a5")
    # The same opType for two different SOs: the second registration is refused.
    first = sim.rtsBinaryLoadFromFile(
        ctx, _op_json(tmp_path, f"simpler_inner_{hbg.inner_fingerprint}_0.so")
    )
    assert ctx.device.hbm.in_use == hbg.inner_so.stat().st_size  # resident until unload
    clash = tmp_path / "clash"
    clash.mkdir()
    with pytest.raises(sim.CannError) as info:
        sim.rtsBinaryLoadFromFile(
            ctx, _op_json(clash, f"simpler_inner_{abg.inner_fingerprint}_0.so")
        )
    assert _code(info) == errors.ACL_ERROR_RT_KERNEL_DUPLICATE
    assert ctx.device.hbm.in_use == hbg.inner_so.stat().st_size  # the refused load left nothing
    fn = sim.rtsFuncGetByName(first, "SimplerAicpuExec")
    with pytest.raises(sim.CannError) as info:
        sim.rtsFuncGetByName(first, "SimplerAicpuInit")
    assert _code(info) == errors.ACL_ERROR_RT_KERNEL_LOOKUP
    sim.rtsBinaryUnload(first)
    assert ctx.device.hbm.in_use == 0 and not ctx.device.op_types
    with pytest.raises(sim.CannError) as info:
        sim.rtsLaunchCpuKernel(fn, 1, sim.rtStreamCreate(ctx), 0, 80)
    assert _code(info) == errors.ACL_ERROR_RT_INVALID_HANDLE
    # A preinstalled file whose bytes do not match its name is never dlopened.
    victim = pre / f"simpler_inner_{abg.inner_fingerprint}_0.so"
    victim.write_bytes(hbg.inner_so.read_bytes())
    with pytest.raises(sim.CannError) as info:
        sim.rtsBinaryLoadFromFile(ctx, _op_json(clash, victim.name))
    assert _code(info) == errors.ACL_ERROR_RT_KERNEL_SO_CORRUPT
    with pytest.raises(sim.CannError) as info:
        sim.rtsBinaryLoadFromFile(ctx, tmp_path / "absent.json")
    assert _code(info) == errors.ACL_ERROR_RT_FILE_OPEN
    sim.rtCtxDestroy(ctx)
