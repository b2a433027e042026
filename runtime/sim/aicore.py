"""AICore binaries: rtRegisterAllKernel and rtKernelLaunchWithHandle.

Registration pins a device-side copy of the whole AICore ELF in HBM and there
is deliberately no unregister call: the copy lives until the owning context
is torn down (rtCtxDestroy / rtDeviceReset).  A registration that cannot get
its memory fails with 207001 and leaves the driver broken (507899 on the next
rtStreamCreate) -- the failure mode of registering once per run.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from simpler_build.files import read_regular

from ..abi import KERNEL_COUNT, KernelArgs, KernelEntry, KernelFn
from .device import Context, Device, Stream
from .errors import (
    ACL_ERROR_RT_AICORE_EXCEPTION,
    ACL_ERROR_RT_FILE_OPEN,
    ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_KERNEL_LOOKUP,
    ACL_ERROR_RT_MEMORY_ALLOCATION,
    ACL_ERROR_RT_PARAM_INVALID,
    CannError,
)
from .sharedlib import SharedLib

TABLE_SYMBOL = "simpler_aicore_kernels"
COUNT_SYMBOL = "simpler_aicore_kernel_count"


@dataclass
class KernelHandle:
    """A registered AICore binary: its pinned copy and its kernel table indexed by kernel id."""

    ctx: Context
    path: Path
    size: int
    pinned_addr: int
    lib: SharedLib
    table: ctypes.Array  # uint64 function addresses, 0 for an empty slot
    names: dict[int, str]
    alive: bool = True
    kind: ClassVar[str] = "aicore_handle"

    @property
    def kernel_table(self) -> int:
        """Address of the SimplerKernelFn[] the AICPU runtime indexes by kernel id."""
        return ctypes.addressof(self.table)

    @property
    def num_kernels(self) -> int:
        return len(self.table)

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, f"{self.path}: handle released")
        return self.ctx.check(call)

    def release(self) -> None:
        """Context teardown only: there is no unregister call (a resumed call finishes it)."""
        self.alive = False
        self.lib.close()


def rtRegisterAllKernel(
    ctx: Context, elf: str | os.PathLike[str] | bytes, name: str | None = None
) -> KernelHandle:
    """Pin the AICore ELF in HBM and resolve its kernel table; 207001 breaks the driver.

    `elf` is the binary itself, as CANN's rtDevBinary_t carries it (the
    runtime passes the very bytes it hashed against the manifest), or a path
    to read it from; `name` labels it in errors.
    """
    call = "rtRegisterAllKernel"
    device = ctx.check(call)
    device.check_driver(call)
    if isinstance(elf, bytes):
        data, path = elf, Path(name or "aicore_kernels.elf")
    else:
        path = Path(elf)
        try:
            data = read_regular(path)  # a FIFO or device: an error naming it, not a hang
        except OSError as exc:
            raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{path}: {exc.strerror}") from None
    if not data:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"{path}: empty AICore binary")
    try:
        alloc = device.hbm.allocate(len(data), ctx, f"AICore ELF {path.name}", call)
    except CannError as exc:
        if exc.code == ACL_ERROR_RT_MEMORY_ALLOCATION:
            device.mark_broken(exc)
        raise
    ctypes.memmove(alloc.addr, data, len(data))
    try:
        lib = SharedLib(ctypes.string_at(alloc.addr, len(data)), "aicore_kernels")
    except OSError as exc:
        device.hbm.free(alloc.addr, ctx, call)
        raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{path}: does not load: {exc}") from None
    try:
        table, names = _kernel_table(lib, path, call)
    except BaseException:
        lib.close()
        device.hbm.free(alloc.addr, ctx, call)
        raise
    handle = KernelHandle(ctx, path, len(data), alloc.addr, lib, table, names)
    ctx.resources.append(handle)
    device.stats["aicore_registrations"] += 1
    return handle


def _kernel_table(lib: SharedLib, path: Path, call: str) -> tuple[ctypes.Array, dict[int, str]]:
    entries_addr, count_addr = lib.symbol(TABLE_SYMBOL), lib.symbol(COUNT_SYMBOL)
    if not entries_addr or not count_addr:
        raise CannError(
            ACL_ERROR_RT_KERNEL_LOOKUP, call, f"{path}: no {TABLE_SYMBOL}/{COUNT_SYMBOL} exported"
        )
    count = ctypes.c_uint32.from_address(count_addr).value
    entries = (KernelEntry * count).from_address(entries_addr)
    table = (ctypes.c_uint64 * KERNEL_COUNT)()
    names: dict[int, str] = {}
    for entry in entries:
        if entry.kernel_id >= KERNEL_COUNT:
            raise CannError(
                ACL_ERROR_RT_KERNEL_LOOKUP, call, f"{path}: kernel id {entry.kernel_id} unknown"
            )
        table[entry.kernel_id] = entry.fn or 0
        if entry.fn:
            names[entry.kernel_id] = (entry.name or b"").decode()
    return table, names


def rtKernelLaunchWithHandle(
    handle: KernelHandle, kernel_id: int, block_dim: int, args: int, stream: Stream
) -> None:
    """Launch one AICore kernel over `block_dim` blocks; a failing block surfaces at sync."""
    call = "rtKernelLaunchWithHandle"
    device = handle.check(call)
    if stream.check(call) is not device:
        raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "stream is on another device")
    device.check_driver(call)
    if not 0 <= kernel_id < handle.num_kernels or not handle.table[kernel_id]:
        raise CannError(
            ACL_ERROR_RT_KERNEL_LOOKUP, call, f"{handle.path}: no kernel with id {kernel_id}"
        )
    if block_dim < 1:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"blockDim {block_dim}")
    device.hbm.check_range(args, ctypes.sizeof(KernelArgs), call)
    device.stats["aicore_kernel_launches"] += 1
    fn = KernelFn(handle.table[kernel_id])
    ptr = ctypes.cast(args, ctypes.POINTER(KernelArgs))
    for block in range(block_dim):
        rc = fn(ptr, block, block_dim)
        if rc != 0:
            stream.fail(
                CannError(
                    ACL_ERROR_RT_AICORE_EXCEPTION,
                    call,
                    f"{handle.names.get(kernel_id, kernel_id)} block {block} returned {rc}",
                )
            )
            return
