"""AICore binaries: rtRegisterAllKernel, rtKernelLaunchWithHandleV2 and rtKernelLaunchWithHandle.

`rtRegisterAllKernel` only records the binary.  The device-side module load
-- HBM for a copy of the whole ELF, the copy, the kernel table -- happens
lazily at the first launch with the handle (upstream #1060), so registering
without launching costs no device memory, and with per-run registration the
207001 surfaces at the launch call.  There is deliberately no unregister
call: a loaded module lives until the owning context is torn down
(rtCtxDestroy / rtDeviceReset).  A module load that cannot get its memory
fails with 207001 and leaves the device unusable (507899) until a reset.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from simpler_build.files import read_regular

from ..abi import AICORE_MAIN, KERNEL_COUNT, KernelArgs, KernelEntry, KernelFn
from .device import Context, Device, Inflight, Stream
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


class KernelHandle:
    """A registered AICore binary; once loaded, its pinned copy and kernel table by kernel id."""

    kind = "aicore_handle"

    def __init__(self, ctx: Context, path: Path, data: bytes) -> None:
        self.ctx, self.path, self.data = ctx, path, data
        self.pinned_addr = 0  # 0 until the module load
        self.lib: SharedLib | None = None
        self.table: ctypes.Array[ctypes.c_uint64] | None = (
            None  # uint64 function addresses, 0 for an empty slot
        )
        self.names: dict[int, str] = {}
        self.main = 0  # address of simpler_aicore_main, when the binary exports it
        self.alive = True

    def __repr__(self) -> str:
        return f"KernelHandle({str(self.path)!r}, loaded={self.loaded}, alive={self.alive})"

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def loaded(self) -> bool:
        return self.table is not None

    @property
    def kernel_table(self) -> int:
        """Address of the SimplerKernelFn[] the AICPU runtime indexes by kernel id (once loaded)."""
        if self.table is None:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, "kernel_table", f"{self.path}: not loaded")
        return ctypes.addressof(self.table)

    @property
    def num_kernels(self) -> int:
        return KERNEL_COUNT

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, f"{self.path}: handle released")
        return self.ctx.check(call)

    def load(self, call: str) -> None:
        """The device-side module load, on the first launch: HBM for the ELF, then its table."""
        if self.loaded:
            return
        device, ctx, path = self.ctx.device, self.ctx, self.path
        try:
            alloc = device.hbm.allocate(len(self.data), ctx, f"AICore ELF {path.name}", call)
        except CannError as exc:
            if exc.code == ACL_ERROR_RT_MEMORY_ALLOCATION:
                device.mark_broken(exc)
            raise
        ctypes.memmove(alloc.addr, self.data, len(self.data))
        try:
            # Loaded from the device copy itself (a view: no third copy of the ELF).
            lib = SharedLib(memoryview(alloc.buffer), "aicore_kernels")
        except OSError as exc:
            device.hbm.free(alloc.addr, ctx, call)
            raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{path}: does not load: {exc}") from None
        try:
            table, names = _kernel_table(lib, path, call)
        except BaseException:
            lib.close()
            device.hbm.free(alloc.addr, ctx, call)
            raise
        main = lib.symbol(AICORE_MAIN)
        self.pinned_addr, self.lib, self.names = alloc.addr, lib, names
        self.main = main or 0
        self.table = table  # last: `loaded` means complete
        device.stats["aicore_module_loads"] += 1

    def release(self) -> None:
        """Context teardown only: there is no unregister call (a resumed call finishes it)."""
        self.alive = False
        if self.lib is not None:
            self.lib.close()


def rtRegisterAllKernel(
    ctx: Context, elf: str | os.PathLike[str] | bytes, name: str | None = None
) -> KernelHandle:
    """Record the AICore ELF under a handle; the module load waits for the first launch.

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
    handle = KernelHandle(ctx, path, data)
    ctx.resources.append(handle)
    device.stats["aicore_registrations"] += 1
    return handle


def rtKernelLaunchWithHandleV2(
    handle: KernelHandle, block_dim: int, args: int, size: int, stream: Stream
) -> None:
    """Queue the binary's resident kernel (simpler_aicore_main) on `stream`, loading the
    module first if this is the handle's first launch (207001 here, at the call).

    `args` is a host block copied at launch; the kernel runs `block_dim` threads
    with the AICPU calling convention (SimplerCpuLaunch), bounded by the op timeout.
    """
    call = "rtKernelLaunchWithHandleV2"
    device = handle.check(call)
    if stream.check(call) is not device:
        raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "stream is on another device")
    device.check_driver(call)
    if block_dim < 1:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"blockDim {block_dim}")
    if not args or size <= 0:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"argument block {args:#x}+{size}")
    handle.load(call)
    main = handle.main
    if not main:
        raise CannError(ACL_ERROR_RT_KERNEL_LOOKUP, call, f"{handle.path}: no {AICORE_MAIN}")
    copy = (ctypes.c_char * size)()
    ctypes.memmove(copy, args, size)
    device.stats["aicore_main_launches"] += 1
    addr = ctypes.addressof(copy)
    stream.launch(Inflight(AICORE_MAIN, main, block_dim, addr, copy, call))


def _kernel_table(
    lib: SharedLib, path: Path, call: str
) -> tuple[ctypes.Array[ctypes.c_uint64], dict[int, str]]:
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
    """Queue one AICore kernel over `block_dim` blocks on `stream`; a failing block surfaces at
    sync (507015).  The first launch with the handle loads the module (207001 here)."""
    call = "rtKernelLaunchWithHandle"
    device = handle.check(call)
    if stream.check(call) is not device:
        raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "stream is on another device")
    device.check_driver(call)
    handle.load(call)
    table = handle.table
    assert table is not None
    if not 0 <= kernel_id < handle.num_kernels or not table[kernel_id]:
        raise CannError(
            ACL_ERROR_RT_KERNEL_LOOKUP, call, f"{handle.path}: no kernel with id {kernel_id}"
        )
    if block_dim < 1:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"blockDim {block_dim}")
    device.hbm.check_range(args, ctypes.sizeof(KernelArgs), call)
    device.stats["aicore_kernel_launches"] += 1
    fn = KernelFn(table[kernel_id])
    ptr = ctypes.cast(args, ctypes.POINTER(KernelArgs))
    label = handle.names.get(kernel_id, str(kernel_id))

    def blocks(_: Stream) -> None:
        for block in range(block_dim):
            rc = fn(ptr, block, block_dim)
            if rc != 0:
                detail = f"{label} block {block} returned {rc}"
                raise CannError(ACL_ERROR_RT_AICORE_EXCEPTION, call, detail)

    stream.submit(blocks)
