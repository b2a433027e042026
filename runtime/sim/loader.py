"""The extend-kernels loader: `rtAicpuKernelLaunchExWithArgs` (architecture.md, bootstrap 1-2).

It reads the dispatcher bytes and the DeviceArgs block out of device memory,
copies the dispatcher to an anonymous sealed file (`sharedlib.py`: nothing
is left on disk, whatever kills the process), dlopens it, insists on all
three entry points and calls the one named (`DynTileFwkBackendKernelServerInit`
for a bootstrap, `DynTileFwkBackendKernelServer` for the device-side probe)
with a KernelArgs (itself copied to device memory) whose `device_args`
points at the host-prepared DeviceArgs.
"""

from __future__ import annotations

import ctypes

from ..abi import DISPATCHER_ENTRY_POINTS, DeviceArgs, LoaderKernelArgs
from .device import Stream
from .errors import (
    ACL_ERROR_RT_AICPU_EXCEPTION,
    ACL_ERROR_RT_FILE_OPEN,
    ACL_ERROR_RT_KERNEL_LOOKUP,
    ACL_ERROR_RT_PARAM_INVALID,
    CannError,
)
from .sharedlib import SharedLib

CALL = "rtAicpuKernelLaunchExWithArgs"
#: The dispatcher's Init entry point (the bootstrap); the other two are kernel servers.
INIT_ENTRY = "DynTileFwkBackendKernelServerInit"
_ServerFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


def rtAicpuKernelLaunchExWithArgs(
    kernel_type: int,
    op_name: str,
    block_dim: int,
    args: LoaderKernelArgs,
    stream: Stream,
) -> None:
    """Load the dispatcher named by `args.device_args` and run its Init entry point.

    Structural problems (bad pointers, a dispatcher that does not load or
    lacks an entry point) raise at once; Init's non-zero return surfaces at
    rtStreamSynchronize as 507018 and poisons the device, as a device-side failure would.
    """
    device = stream.check(CALL)
    device.check_driver(CALL)
    ctx = stream.ctx
    if op_name not in DISPATCHER_ENTRY_POINTS:
        raise CannError(ACL_ERROR_RT_KERNEL_LOOKUP, CALL, f"unknown extend kernel {op_name!r}")
    if block_dim != 1:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, CALL, f"blockDim {block_dim}, expected 1")
    da_addr = int(args.device_args)
    device.hbm.check_range(da_addr, ctypes.sizeof(DeviceArgs), CALL)
    da = DeviceArgs.from_address(da_addr)
    if da.aicpu_so_len == 0:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, CALL, "DeviceArgs.aicpu_so_len is 0")
    device.hbm.check_range(da.aicpu_so_bin, da.aicpu_so_len, CALL)
    dispatcher_bytes = ctypes.string_at(da.aicpu_so_bin, da.aicpu_so_len)
    device.stats["extend_kernel_launches"] += 1
    try:
        lib = SharedLib(dispatcher_bytes, "simpler_dispatcher")
    except OSError as exc:
        raise CannError(
            ACL_ERROR_RT_FILE_OPEN,
            CALL,
            f"dispatcher ({da.aicpu_so_len} bytes) does not load: {exc}",
        ) from None
    try:
        symbols = {name: lib.symbol(name) for name in DISPATCHER_ENTRY_POINTS}
        entries = {name: addr for name, addr in symbols.items() if addr}
        missing = [name for name in DISPATCHER_ENTRY_POINTS if name not in entries]
        if missing:
            raise CannError(
                ACL_ERROR_RT_KERNEL_LOOKUP,
                CALL,
                f"dispatcher does not export {', '.join(missing)} "
                f"(required: {', '.join(DISPATCHER_ENTRY_POINTS)})",
            )
        ka_addr = device.hbm.allocate(
            ctypes.sizeof(LoaderKernelArgs), ctx, "loader KernelArgs", CALL
        ).addr
        try:
            ctypes.memmove(ka_addr, ctypes.addressof(args), ctypes.sizeof(LoaderKernelArgs))
            device.stats["dispatcher_inits" if op_name == INIT_ENTRY else "dispatcher_serves"] += 1
            rc = _ServerFn(entries[op_name])(ka_addr)
        finally:
            device.hbm.free(ka_addr, ctx, CALL)
    finally:
        lib.close()
    if rc != 0:
        err = CannError(
            ACL_ERROR_RT_AICPU_EXCEPTION,
            CALL,
            f"{op_name} (kernel type {kernel_type}) returned {rc}",
        )
        device.poison(err)
        stream.fail(err)
