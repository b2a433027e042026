"""Simulated devices by id: contexts, streams, memory calls and the broken-driver state.

A device comes into being with its first context (`rtCtxCreate`) and is torn
down with its last one (`rtCtxDestroy`) or by `rtDeviceReset`, which releases
everything every context held -- the only way pinned AICore registrations are
ever freed, as on hardware.  A failed AICore registration (207001) leaves the
driver broken: `rtStreamCreate` and launches fail with 507899 until the
device is reset or fully torn down.

HBM accounting is per process (each process sees its own device state); the
device filesystem (`fs.py`) is what processes share.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from collections import Counter
from typing import Any

from .errors import (
    ACL_ERROR_RT_DRV_INTERNAL_ERROR,
    ACL_ERROR_RT_INVALID_DEVICEID,
    ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_PARAM_INVALID,
    CannError,
)
from .fs import device_dir, ensure_directory
from .memory import HbmPool
from .profiles import DeviceProfile, hbm_capacity, profile_for


class MemcpyKind(enum.IntEnum):
    """rtMemcpyKind_t."""

    HOST_TO_HOST = 0
    HOST_TO_DEVICE = 1
    DEVICE_TO_HOST = 2
    DEVICE_TO_DEVICE = 3


class Device:
    """One simulated chip: profile, HBM pool, live contexts, driver state and call counters."""

    def __init__(self, device_id: int, profile: DeviceProfile, capacity: int) -> None:
        self.device_id = device_id
        self.profile = profile
        self.hbm = HbmPool(capacity)
        self.contexts: list[Context] = []
        self.broken: CannError | None = None
        self.stats: Counter[str] = Counter()
        #: Live resources that context teardowns (not the host) released, by kind.
        self.released_at_teardown: Counter[str] = Counter()
        #: opType -> (fingerprint of its kernel SO, live binaries registering it)
        self.op_types: dict[str, tuple[str, int]] = {}
        self.lock = threading.RLock()

    @property
    def arch(self) -> str:
        return self.profile.arch

    def check_driver(self, call: str) -> None:
        if self.broken is not None:
            raise CannError(
                ACL_ERROR_RT_DRV_INTERNAL_ERROR,
                call,
                f"device {self.device_id} driver is broken since: {self.broken}; rtDeviceReset it",
            )

    def mark_broken(self, cause: CannError) -> None:
        with self.lock:
            self.broken = cause


class Context:
    """Owns allocations, loaded binaries, kernel registrations and streams of one user.

    It counts what it still holds by kind (`live()`) and records what its
    teardown had to release (`released_at_teardown`): teardown frees
    everything, so without the record a host that forgets to destroy its
    stream or unload its binary would look exactly like one that did.
    """

    def __init__(self, device: Device) -> None:
        self.device = device
        self.alive = True
        self._recorded = False
        self.resources: list[Any] = []  # objects with a release() method and a `kind`
        self.released_at_teardown: Counter[str] = Counter()

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "context was destroyed or reset")
        return self.device

    def live(self) -> Counter[str]:
        """Live resources by kind: "stream", "binary" (rtsBinaryLoadFromFile), "aicore_handle"."""
        return Counter(res.kind for res in self.resources if res.alive)

    def release_resource(self, resource: Any) -> None:
        """Release one resource early (rtStreamDestroy, rtsBinaryUnload) and stop owning it."""
        resource.release()
        if resource in self.resources:
            self.resources.remove(resource)

    def release(self) -> None:
        """Context teardown: unload/close everything, then free all memory it owns.

        Resumable: a resource leaves the list once released, so a teardown
        interrupted part-way (Ctrl-C) is finished by the next call.
        """
        self.alive = False
        if not self._recorded:
            self.released_at_teardown = self.live()
            self.device.released_at_teardown.update(self.released_at_teardown)
            self._recorded = True
        while self.resources:
            self.resources[-1].release()
            self.resources.pop()
        self.device.hbm.release_owner(self)


class Stream:
    """Launches run synchronously; a failure is held and raised by rtStreamSynchronize."""

    kind = "stream"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.alive = True
        self.pending: CannError | None = None

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "stream was destroyed")
        return self.ctx.check(call)

    def release(self) -> None:
        self.alive = False


_devices: dict[int, Device] = {}
_registry_lock = threading.Lock()


def _teardown(device: Device) -> None:
    for ctx in list(device.contexts):
        ctx.release()
    device.contexts.clear()
    _devices.pop(device.device_id, None)


def rtCtxCreate(device_id: int, arch: str, hbm_bytes: int | None = None) -> Context:
    """A new context on `device_id`, bringing the device up as an `arch` chip if it is down.

    A device already up keeps its arch and capacity: asking for another arch,
    or an explicit different capacity, is an error rather than a silent mismatch.
    """
    profile = profile_for(arch)
    if not isinstance(device_id, int) or not 0 <= device_id < profile.device_count:
        raise CannError(
            ACL_ERROR_RT_INVALID_DEVICEID,
            "rtCtxCreate",
            f"device id {device_id!r} outside 0..{profile.device_count - 1}",
        )
    with _registry_lock:
        device = _devices.get(device_id)
        if device is None:
            device = Device(device_id, profile, hbm_capacity(profile, hbm_bytes))
        elif device.arch != arch:
            raise CannError(
                ACL_ERROR_RT_INVALID_DEVICEID,
                "rtCtxCreate",
                f"device {device_id} is up as an {device.arch} chip, not {arch}",
            )
        elif hbm_bytes is not None and hbm_bytes != device.hbm.capacity:
            raise CannError(
                ACL_ERROR_RT_PARAM_INVALID,
                "rtCtxCreate",
                f"device {device_id} is up with {device.hbm.capacity} bytes of HBM, "
                f"not {hbm_bytes}; reset it first",
            )
        ensure_directory(device_dir(device_id))
        ctx = Context(device)
        # Up only together with its first context: a failure (or Ctrl-C) above leaves no device.
        _devices[device_id] = device
        device.contexts.append(ctx)
        device.stats["contexts_created"] += 1
        return ctx


def rtCtxDestroy(ctx: Context) -> None:
    """Release what the context holds; the last context's destruction tears the device down.

    Every step is idempotent, so a call interrupted part-way is finished by the next.
    """
    with _registry_lock:
        device = ctx.device
        ctx.release()
        if ctx in device.contexts:
            device.contexts.remove(ctx)
        if not device.contexts and _devices.get(device.device_id) is device:
            _teardown(device)


def rtDeviceReset(device_id: int) -> None:
    """Destroy every context on the device, free all its HBM and clear a broken driver."""
    with _registry_lock:
        device = _devices.get(device_id)
        if device is not None:
            _teardown(device)


def get_device(device_id: int) -> Device | None:
    """The device if it is up (tests and statistics)."""
    return _devices.get(device_id)


def reset_all_devices() -> None:
    """rtDeviceReset every device that is up (test isolation)."""
    for device_id in list(_devices):
        rtDeviceReset(device_id)


def rtMalloc(ctx: Context, size: int, tag: str = "rtMalloc") -> int:
    """Allocate `size` bytes of HBM owned by `ctx`; returns the device address."""
    device = ctx.check("rtMalloc")
    return device.hbm.allocate(size, ctx, tag).addr


def rtFree(ctx: Context, addr: int) -> None:
    device = ctx.check("rtFree")
    device.hbm.free(addr, ctx)


def rtMemcpy(ctx: Context, dst: int, dest_max: int, src: int, count: int, kind: MemcpyKind) -> None:
    """Synchronous copy; device-side ranges must lie inside one live allocation."""
    device = ctx.check("rtMemcpy")
    if count > dest_max:
        raise CannError(
            ACL_ERROR_RT_PARAM_INVALID, "rtMemcpy", f"count {count} > destMax {dest_max}"
        )
    if count == 0:
        return
    if kind in (MemcpyKind.HOST_TO_DEVICE, MemcpyKind.DEVICE_TO_DEVICE):
        device.hbm.check_range(dst, count, "rtMemcpy")
    if kind in (MemcpyKind.DEVICE_TO_HOST, MemcpyKind.DEVICE_TO_DEVICE):
        device.hbm.check_range(src, count, "rtMemcpy")
    if not dst or not src:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, "rtMemcpy", "null host pointer")
    ctypes.memmove(dst, src, count)


def rtStreamCreate(ctx: Context) -> Stream:
    device = ctx.check("rtStreamCreate")
    device.check_driver("rtStreamCreate")
    stream = Stream(ctx)
    ctx.resources.append(stream)
    return stream


def rtStreamSynchronize(stream: Stream) -> None:
    """Wait for the stream; raises the first failure of a task launched on it."""
    stream.check("rtStreamSynchronize")
    err, stream.pending = stream.pending, None
    if err is not None:
        raise err


def rtStreamDestroy(stream: Stream) -> None:
    stream.check("rtStreamDestroy")
    stream.ctx.release_resource(stream)
