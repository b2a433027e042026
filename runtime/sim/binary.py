"""CPU-kernel binaries: rtsBinaryLoadFromFile, rtsFuncGetByName, rtsLaunchCpuKernel, Unload.

`rtsBinaryLoadFromFile` reads an op-registration JSON
(`{opType: {"opInfo": {"kernelSo": ..., "functionName": ...}}}`), finds each
kernel SO in the device's preinstall directory, checks that its bytes match
the fingerprint in its name (a corrupt preinstall is refused, never run),
keeps the bytes resident in HBM until `rtsBinaryUnload`, and dlopens them.
An opType already registered on the device with other content is refused,
which is why callers suffix opTypes with the fingerprint.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from simpler_build.cache.fingerprint import fingerprint_bytes
from simpler_build.files import read_regular

from ..abi import CpuKernelFn
from .device import Context, Device, Inflight, Stream
from .errors import (
    ACL_ERROR_RT_FILE_OPEN,
    ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_KERNEL_DUPLICATE,
    ACL_ERROR_RT_KERNEL_LOOKUP,
    ACL_ERROR_RT_KERNEL_SO_CORRUPT,
    ACL_ERROR_RT_PARAM_INVALID,
    CannError,
)
from .fs import preinstall_dir
from .sharedlib import SharedLib

_FINGERPRINTED = re.compile(r"^simpler_inner_([0-9a-f]{16})\.so$")


@dataclass
class BinHandle:
    """A loaded op-registration file: its opTypes, resident bytes and dlopened SOs."""

    ctx: Context
    json_path: Path
    ops: dict[str, tuple[str, int]]  # opType -> (kernelSo, function address)
    fingerprints: dict[str, str]  # opType -> fingerprint of its kernel SO
    libs: list[SharedLib]
    resident: list[int] = field(default_factory=list)  # HBM blocks holding the SO bytes
    alive: bool = True
    kind: ClassVar[str] = "binary"

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, f"{self.json_path} was unloaded")
        return self.ctx.check(call)

    @property
    def released(self) -> bool:
        """Everything `release()` gives back was given back."""
        return not (self.ops or self.libs or self.resident)

    def release(self) -> None:
        """Unload: forget the opTypes, dlclose, free the resident bytes.

        Each piece is dropped from its list once released, so a call interrupted
        (Ctrl-C) part-way is finished by the next one, and a finished one is a no-op.
        """
        self.alive = False
        device = self.ctx.device
        with device.lock:
            while self.ops:
                op, _ = self.ops.popitem()
                fp, refs = device.op_types.get(op, ("", 1))
                if refs <= 1:
                    device.op_types.pop(op, None)
                else:
                    device.op_types[op] = (fp, refs - 1)
        if self.libs:
            device.join_stuck()  # never unmap code a thread of an aborted launch may still run
        while self.libs:
            self.libs[-1].close()
            self.libs.pop()
        while self.resident:
            if self.ctx.alive:
                with contextlib.suppress(CannError):  # freed just before an interrupt
                    device.hbm.free(self.resident[-1], self.ctx, "rtsBinaryUnload")
            self.resident.pop()


@dataclass(frozen=True)
class FuncHandle:
    binary: BinHandle
    name: str
    addr: int
    fn: ctypes._CFuncPtr  # built once: launches only call it


def _parse(json_path: Path, call: str) -> dict[str, tuple[str, str]]:
    """opType -> (kernelSo, functionName), or a clear error naming the file."""
    try:
        data = json.loads(read_regular(json_path).decode("utf-8"))
    except OSError as exc:
        raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{json_path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"{json_path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"{json_path}: no opType entries")
    ops: dict[str, tuple[str, str]] = {}
    for op_type, entry in data.items():
        info = entry.get("opInfo") if isinstance(entry, dict) else None
        so = info.get("kernelSo") if isinstance(info, dict) else None
        fn = info.get("functionName") if isinstance(info, dict) else None
        if not isinstance(so, str) or not isinstance(fn, str) or not so or not fn:
            raise CannError(
                ACL_ERROR_RT_PARAM_INVALID,
                call,
                f"{json_path}: {op_type!r} needs opInfo.kernelSo and opInfo.functionName",
            )
        if os.path.basename(so) != so:
            raise CannError(
                ACL_ERROR_RT_PARAM_INVALID,
                call,
                f"{json_path}: kernelSo {so!r} must be a file name",
            )
        ops[op_type] = (so, fn)
    return ops


def _read_verified(path: Path, call: str) -> tuple[bytes, str]:
    """The SO's bytes and fingerprint; a name-carried fingerprint must match the bytes."""
    try:
        data = read_regular(path)  # a FIFO or device: an error naming it, not a hang
    except OSError as exc:
        raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{path}: {exc.strerror}") from None
    if not data:
        raise CannError(ACL_ERROR_RT_KERNEL_SO_CORRUPT, call, f"{path}: empty file")
    actual = fingerprint_bytes(data)
    m = _FINGERPRINTED.match(path.name)
    if m and m.group(1) != actual:
        raise CannError(
            ACL_ERROR_RT_KERNEL_SO_CORRUPT,
            call,
            f"{path}: content fingerprint {actual} does not match its name",
        )
    return data, actual


def rtsBinaryLoadFromFile(ctx: Context, json_path: str | os.PathLike[str]) -> BinHandle:
    """Load every kernel SO an op-registration JSON names from the device's preinstall dir."""
    call = "rtsBinaryLoadFromFile"
    device = ctx.check(call)
    path = Path(json_path)
    ops = _parse(path, call)
    handle = BinHandle(ctx, path, {}, {}, [])
    try:
        loaded: dict[str, tuple[SharedLib, str]] = {}
        for op_type, (so, fn) in ops.items():
            if so not in loaded:
                so_path = preinstall_dir(device.device_id) / so
                data, fp = _read_verified(so_path, call)
                alloc = device.hbm.allocate(len(data), ctx, f"cpu kernel {so}", call)
                handle.resident.append(alloc.addr)
                ctypes.memmove(alloc.addr, data, len(data))
                try:
                    lib = SharedLib(ctypes.string_at(alloc.addr, len(data)), so.removesuffix(".so"))
                except OSError as exc:
                    raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{so_path}: {exc}") from None
                handle.libs.append(lib)
                loaded[so] = (lib, fp)
            lib, fp = loaded[so]
            addr = lib.symbol(fn)
            if not addr:
                raise CannError(
                    ACL_ERROR_RT_KERNEL_LOOKUP,
                    call,
                    f"{so} does not export {fn} (opType {op_type})",
                )
            handle.ops[op_type] = (so, addr)
            handle.fingerprints[op_type] = fp
        _register_op_types(device, handle, call)
    except BaseException:
        handle.ops.clear()  # nothing registered yet: release must not unregister others'
        handle.release()
        raise
    ctx.resources.append(handle)
    device.stats["binaries_loaded"] += 1
    return handle


def _register_op_types(device: Device, handle: BinHandle, call: str) -> None:
    with device.lock:
        for op_type, fp in handle.fingerprints.items():
            known = device.op_types.get(op_type)
            if known is not None and known[0] != fp:
                raise CannError(
                    ACL_ERROR_RT_KERNEL_DUPLICATE,
                    call,
                    f"opType {op_type!r} is already registered with kernel {known[0]}, not {fp}",
                )
        for op_type, fp in handle.fingerprints.items():
            refs = device.op_types.get(op_type, (fp, 0))[1]
            device.op_types[op_type] = (fp, refs + 1)


def rtsFuncGetByName(binary: BinHandle, name: str) -> FuncHandle:
    """The function registered under opType `name` in `binary`."""
    binary.check("rtsFuncGetByName")
    entry = binary.ops.get(name)
    if entry is None:
        raise CannError(
            ACL_ERROR_RT_KERNEL_LOOKUP,
            "rtsFuncGetByName",
            f"{binary.json_path} has no opType {name!r} (has {', '.join(sorted(binary.ops))})",
        )
    return FuncHandle(binary, name, entry[1], CpuKernelFn(entry[1]))


def rtsLaunchCpuKernel(
    func: FuncHandle, block_dim: int, stream: Stream, args: int, size: int
) -> None:
    """Queue the CPU kernel on `stream`: `block_dim` concurrent threads on a copy of `args`.

    `args` is the host address of the argument block; it is copied now, as CANN
    does, so the kernel's writes to its block never reach the host and the host
    may reuse its block at once.  A non-zero return (507018) or a launch that
    outlives the stream's op timeout (507046) poisons the device and is raised
    by rtStreamSynchronize.
    """
    call = "rtsLaunchCpuKernel"
    device = func.binary.check(call)
    if stream.check(call) is not device or stream.ctx is not func.binary.ctx:
        raise CannError(
            ACL_ERROR_RT_INVALID_HANDLE, call, "stream and kernel are in different contexts"
        )
    device.check_driver(call)
    if block_dim < 1:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"blockDim {block_dim}")
    if not args or size <= 0:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"argument block {args:#x}+{size}")
    copy = (ctypes.c_char * size)()
    ctypes.memmove(copy, args, size)
    device.stats["cpu_kernel_launches"] += 1
    addr = ctypes.addressof(copy)
    stream.launch(Inflight(func.name, func.addr, block_dim, addr, copy, call))


def rtsBinaryUnload(binary: BinHandle) -> None:
    """Unload `binary`; 107017 once it is unloaded (a call cut short by Ctrl-C may be repeated)."""
    if binary.alive or not binary.released:
        binary.ctx.check("rtsBinaryUnload")
    else:
        binary.check("rtsBinaryUnload")
    binary.ctx.drain_streams()
    binary.ctx.release_resource(binary)
