"""CPU-kernel binaries: rtsBinaryLoadFromFile, rtsFuncGetByName, rtsLaunchCpuKernel, Unload.

`rtsBinaryLoadFromFile` reads an op-registration JSON
(`{opType: {"opInfo": {"kernelSo": ..., "functionName": ...}}}`), finds each
kernel SO in the device's preinstall directory, checks that its bytes match
the fingerprint in its name (a corrupt preinstall is refused, never run),
keeps the bytes resident in HBM until `rtsBinaryUnload`, and dlopens them.
An opType already registered on the device with other content is refused,
which is why callers suffix opTypes with the fingerprint.

Path A's rules (docs/simulated-device.md "Path A"):

- Only Path A registrations load: `opKernelLib` `AICPUKernel`, `userDefined`
  `False`.  Path B's fields (`CUSTAICPUKernel`, `userDefined` `True`) send CANN
  to the custom AICPU kernel directory, which lacks the op: 507902.
- The first inner SO a process loads through Path A on a device is latched
  (upstream #923): a later, different SO "loads" but its functions are the
  latched SO's.  The latch lasts as long as the process.
- A loaded SO stays mapped from its file, as the device's loader maps it: a
  rewrite in place under a launch that runs its code is a fault (507018), while
  a replacement by rename leaves the mapping alone.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import os
from pathlib import Path

from simpler_build import jsonio
from simpler_build.cache.fingerprint import fingerprint_bytes
from simpler_build.files import open_regular, read_regular

from ..abi import CpuKernelFn
from .device import Context, Device, Inflight, Stream
from .errors import (
    ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR,
    ACL_ERROR_RT_FILE_OPEN,
    ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_KERNEL_DUPLICATE,
    ACL_ERROR_RT_KERNEL_LOOKUP,
    ACL_ERROR_RT_KERNEL_SO_CORRUPT,
    ACL_ERROR_RT_PARAM_INVALID,
    CannError,
)
from .fs import installed_fingerprint, legacy_names, preinstall_dir
from .sharedlib import SharedLib

TYPE_CHECKING = False  # on the runtime's start-up path: no typing or dataclasses import
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..abi import CpuLaunch

    #: A CPU kernel as a launch thread calls it: (argument block address, launch block) -> rc.
    #: Only for the checker: ctypes' pointer types are not subscriptable at run time.
    CpuKernel = Callable[[int, ctypes._Pointer[CpuLaunch]], int]

#: Path A: the built-in AICPU kernel library, not a user-defined (custom) op.
PATH_A_KERNEL_LIB = "AICPUKernel"
#: Path B's library: CANN looks for the op in the custom AICPU directory (upstream #822).
PATH_B_KERNEL_LIB = "CUSTAICPUKernel"
#: What a thread whose code pages vanished under it returns: -SIGBUS.
MAPPING_FAULT = -7


class _Mapping:
    """A loaded SO's file, held open as the device's loader keeps it mapped.

    A rewrite in place (truncate + write) changes the mapped pages: `(size,
    mtime)` of the open file moves.  A rename over the name, an unlink or a gc
    leave the open file's pages as they were.
    """

    def __init__(self, fd: int, fingerprint: str, path: Path) -> None:
        self.fd = fd
        self.fingerprint = fingerprint
        self.path = path
        self.stamp = self._stamp()
        self.fault: str | None = None

    def _stamp(self) -> tuple[int, int]:
        st = os.fstat(self.fd)
        return st.st_size, st.st_mtime_ns

    def _same_bytes(self) -> bool:
        size = os.fstat(self.fd).st_size
        data = os.pread(self.fd, size, 0) if size else b""
        return len(data) == size and fingerprint_bytes(data) == self.fingerprint

    def guard(self, fn: CpuKernel) -> CpuKernel:
        """`fn` as a launch thread runs it: pages rewritten before or during the call fault."""

        def fault(launch: ctypes._Pointer[CpuLaunch], why: str) -> int:
            # The exception kills the whole op: its other threads see the abort word.
            self.fault = why
            ctypes.c_uint32.from_address(launch.contents.abort).value = 1
            return MAPPING_FAULT

        def run(args: int, launch: ctypes._Pointer[CpuLaunch]) -> int:
            stamp = self._stamp()
            if stamp != self.stamp:
                # Rewritten since loaded: the page cache refills from the file's bytes now.
                if not self._same_bytes():
                    return fault(launch, f"{self.path} was rewritten in place: its code is torn")
                self.stamp = stamp
            rc = fn(args, launch)
            if self._stamp() != self.stamp:
                return fault(launch, f"{self.path} was rewritten in place under a running kernel")
            return rc

        return run

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class _Latch:
    """The inner SO CANN latched for (process, device) through Path A (upstream #923).

    The record lasts as long as the process.  Its library stays loaded while a
    binary uses it (`users`); the last unload closes it, and the next load
    brings the latched SO back from its file.
    """

    __slots__ = ("fingerprint", "lib", "mapping", "pid", "so", "users")

    def __init__(
        self,
        pid: int,
        fingerprint: str,
        so: str,
        lib: SharedLib | None,
        mapping: _Mapping | None,
        users: int = 0,
    ) -> None:
        self.pid, self.fingerprint, self.so = pid, fingerprint, so
        self.lib, self.mapping, self.users = lib, mapping, users

    def __repr__(self) -> str:
        return f"<_Latch {self.so} pid {self.pid}, {self.users} user(s)>"

    def unuse(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.lib is not None and self.mapping is not None:
            self.lib.close()
            self.mapping.close()
            self.lib = self.mapping = None


_latches: dict[int, _Latch] = {}
_latch_lock = _thread.allocate_lock()


def latched(device_id: int) -> tuple[str, str] | None:
    """(fingerprint, kernelSo) latched on `device_id` by this process, if any."""
    with _latch_lock:
        latch = _latches.get(device_id)
        return None if latch is None or latch.pid != os.getpid() else (latch.fingerprint, latch.so)


def forget_latches() -> None:
    """Drop this process's latches: a stand-in for a fresh process (tests only)."""
    with _latch_lock:
        latches = list(_latches.values())
        _latches.clear()
    for latch in latches:
        if latch.pid == os.getpid() and latch.lib is not None and latch.mapping is not None:
            latch.lib.close()
            latch.mapping.close()


class BinHandle:
    """A loaded op-registration file: its opTypes, resident bytes and dlopened SOs.

    A handle, equal only to itself (as CANN's handles are).
    """

    __slots__ = (
        "alive",
        "ctx",
        "fingerprints",
        "json_path",
        "latched",
        "libs",
        "mappings",
        "ops",
        "owned",
        "resident",
    )
    kind = "binary"

    def __init__(
        self,
        ctx: Context,
        json_path: Path,
        ops: dict[str, tuple[str, int]],
        fingerprints: dict[str, str],
        libs: list[SharedLib],
    ) -> None:
        self.ctx = ctx
        self.json_path = json_path
        self.ops = ops  # opType -> (kernelSo, function address)
        self.fingerprints = fingerprints  # opType -> fingerprint of its kernel SO
        self.libs = libs
        self.resident: list[int] = []  # HBM blocks holding the SO bytes
        self.mappings: dict[str, _Mapping] = {}  # opType -> its SO's mapping
        self.owned: list[_Mapping] = []  # mappings of non-latched SOs
        self.latched: list[_Latch] = []  # latches this binary uses
        self.alive = True

    def __repr__(self) -> str:
        state = "loaded" if self.alive else "unloaded"
        return f"<BinHandle {self.json_path}: {', '.join(self.ops) or 'no opTypes'}, {state}>"

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, f"{self.json_path} was unloaded")
        return self.ctx.check(call)

    @property
    def released(self) -> bool:
        """Everything `release()` gives back was given back."""
        return not (self.ops or self.libs or self.resident or self.owned or self.latched)

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
        while self.latched:
            with _latch_lock:
                self.latched[-1].unuse()  # resumable: a repeated unuse still closes once
                self.latched.pop()
        self.mappings.clear()
        while self.owned:
            self.owned[-1].close()
            self.owned.pop()
        while self.resident:
            if self.ctx.alive:
                with contextlib.suppress(CannError):  # freed just before an interrupt
                    device.hbm.free(self.resident[-1], self.ctx, "rtsBinaryUnload")
            self.resident.pop()


def _is_latched(mapping: _Mapping) -> bool:
    with _latch_lock:
        return any(latch.mapping is mapping for latch in _latches.values())


class FuncHandle:
    """A function of a loaded binary (rtsFuncGetByName); equal only to itself."""

    __slots__ = ("addr", "binary", "fn", "name")

    def __init__(self, binary: BinHandle, name: str, addr: int, fn: CpuKernel) -> None:
        self.binary = binary
        self.name = name
        self.addr = addr
        self.fn = fn  # kept alive while launches call `addr` (a callback in legacy mode)

    def __repr__(self) -> str:
        return f"<FuncHandle {self.name} of {self.binary.json_path}>"


def _parse(json_path: Path, call: str) -> dict[str, tuple[str, str]]:
    """opType -> (kernelSo, functionName), or a clear error naming the file.

    Only Path A loads: Path B's fields send CANN to the custom AICPU directory,
    which does not have the op (507902, upstream #822).
    """
    try:
        data = jsonio.loads(read_regular(json_path).decode("utf-8"))
    except OSError as exc:
        raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{json_path}: {exc.strerror}") from None
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
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
        lib, user = info.get("opKernelLib"), info.get("userDefined")  # type: ignore[union-attr]
        if lib == PATH_B_KERNEL_LIB or str(user).lower() == "true":
            raise CannError(
                ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR,
                call,
                f"{json_path}: opType {op_type!r} is not in the custom AICPU kernel directory "
                f"(opKernelLib {lib!r}, userDefined {user!r} is Path B); register it through "
                f"Path A: opKernelLib {PATH_A_KERNEL_LIB!r}, userDefined 'False'",
            )
        if lib != PATH_A_KERNEL_LIB or str(user) != "False":
            raise CannError(
                ACL_ERROR_RT_PARAM_INVALID,
                call,
                f"{json_path}: {op_type!r} needs opInfo.opKernelLib {PATH_A_KERNEL_LIB!r} and "
                f"opInfo.userDefined 'False' (got {lib!r}, {user!r})",
            )
        if os.path.basename(so) != so:
            raise CannError(
                ACL_ERROR_RT_PARAM_INVALID,
                call,
                f"{json_path}: kernelSo {so!r} must be a file name",
            )
        ops[op_type] = (so, fn)
    return ops


def _read_verified(path: Path, call: str) -> tuple[bytes, str, _Mapping]:
    """The SO's bytes, fingerprint and mapping; a name-carried fingerprint must match the bytes."""
    try:
        fd = open_regular(path)  # a FIFO or device: an error naming it, not a hang
    except OSError as exc:
        raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{path}: {exc.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        if not data:
            raise CannError(ACL_ERROR_RT_KERNEL_SO_CORRUPT, call, f"{path}: empty file")
        actual = fingerprint_bytes(data)
        named = installed_fingerprint(path.name)
        if named is not None and named != actual:
            raise CannError(
                ACL_ERROR_RT_KERNEL_SO_CORRUPT,
                call,
                f"{path}: content fingerprint {actual} does not match its name",
            )
        return data, actual, _Mapping(fd, actual, path)
    except BaseException:
        os.close(fd)
        raise


def rtsBinaryLoadFromFile(ctx: Context, json_path: str | os.PathLike[str]) -> BinHandle:
    """Load every kernel SO an op-registration JSON names from the device's preinstall dir."""
    call = "rtsBinaryLoadFromFile"
    device = ctx.check(call)
    path = Path(json_path)
    ops = _parse(path, call)
    handle = BinHandle(ctx, path, {}, {}, [])
    try:
        loaded: dict[str, tuple[SharedLib, str, _Mapping]] = {}
        for op_type, (so, fn) in ops.items():
            if so not in loaded:
                so_path = preinstall_dir(device.device_id, device.profile.arch) / so
                data, fp, mapping = _read_verified(so_path, call)
                try:
                    alloc = device.hbm.allocate(len(data), ctx, f"cpu kernel {so}", call)
                    handle.resident.append(alloc.addr)
                    ctypes.memmove(alloc.addr, data, len(data))
                    if installed_fingerprint(so) is not None:
                        loaded[so] = _latch_or_load(device, so, so_path, fp, data, mapping)
                        with _latch_lock:
                            handle.latched.append(_latches[device.device_id])
                    else:  # an ordinary kernel SO: its own dlopen, released with the handle
                        handle.owned.append(mapping)
                        try:
                            lib = SharedLib(ctypes.string_at(alloc.addr, len(data)), so[:-3])
                        except OSError as exc:
                            raise CannError(
                                ACL_ERROR_RT_FILE_OPEN, call, f"{so_path}: {exc}"
                            ) from None
                        handle.libs.append(lib)
                        loaded[so] = (lib, fp, mapping)
                except BaseException:
                    if not _is_latched(mapping) and mapping not in handle.owned:
                        mapping.close()
                    raise
            lib, fp, mapping = loaded[so]
            handle.mappings[op_type] = mapping
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


def _latch_or_load(
    device: Device, so: str, so_path: Path, fp: str, data: bytes, mapping: _Mapping
) -> tuple[SharedLib, str, _Mapping]:
    """The inner SO whose code this load will run: the latched one, once a process has one.

    The first Path A load on (process, device) is latched and stays loaded for the
    process; every later load, of the same SO or another, runs the latched code
    (#923) -- so a different SO silently runs the first one.
    """
    call = "rtsBinaryLoadFromFile"
    with _latch_lock:
        latch = _latches.get(device.device_id)
        if latch is None or latch.pid != os.getpid():
            latch = _latches[device.device_id] = _Latch(os.getpid(), fp, so, None, None)
        elif latch.fingerprint != fp:
            device.stats["latched_other_so"] += 1  # "loads", and will run the first SO
        if latch.lib is None:
            if latch.fingerprint != fp:  # bring the latched SO back from its file
                mapping.close()
                data, _, mapping = _read_verified(so_path.with_name(latch.so), call)
            try:
                lib = SharedLib(data, latch.so.removesuffix(".so"))
            except OSError as exc:
                mapping.close()
                raise CannError(ACL_ERROR_RT_FILE_OPEN, call, f"{so_path}: {exc}") from None
            device.stats["inner_so_dlopens"] += 1
            latch.lib, latch.mapping = lib, mapping
        elif mapping is not latch.mapping:
            mapping.close()  # the code that runs is the latched SO's, mapped from its file
        latch.users += 1
        assert latch.mapping is not None
        return latch.lib, fp, latch.mapping


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
    fn = CpuKernelFn(entry[1])
    mapping = binary.mappings.get(name)
    if mapping is None or not legacy_names():
        # Per-device names are only ever installed by rename, which leaves mapped pages as
        # they were: the launch threads run the function itself (docs/simulated-device.md).
        return FuncHandle(binary, name, entry[1], fn)
    # The legacy writer rewrites in place: each launch thread runs the mapping's check
    # around the call, a callback from the C launch threads into Python.
    guarded = CpuKernelFn(mapping.guard(fn))
    return FuncHandle(binary, name, ctypes.cast(guarded, ctypes.c_void_p).value or 0, guarded)


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
