"""Simulated devices by id: contexts, streams, memory calls and sticky device faults.

A device comes into being with its first context (`rtCtxCreate`) and is torn
down with its last one (`rtCtxDestroy`) or by `rtDeviceReset`, which releases
everything every context held -- the only way pinned AICore registrations are
ever freed, as on hardware.

A fault makes the device unusable: `rtMalloc`, `rtMemcpy`, `rtStreamCreate`
and every launch fail with 507899 naming the first fault.  A failed AICore
module load (207001) is cleared by any reset.  An AICPU exception (507018)
or an op timeout (507046) poisons the device: on a2a3 `rtDeviceReset` clears
it, on a5 only `rtDeviceResetForce` does (upstream #1016, #1124); a soft reset
of an a5 device leaves the poison for the next context to find.

Streams are workers with queues: a launch returns at once and runs on the
stream's thread; `rtStreamSynchronize` waits for the queue to drain.  A CPU
kernel that outlives the stream's op timeout ends in 507046
(docs/simulated-device.md).

HBM accounting is per process (each process sees its own device state); the
device filesystem (`fs.py`) is what processes share.
"""

from __future__ import annotations

import _thread
import ctypes
import os
import time
import warnings
from collections import Counter, deque

from ..abi import AbiEnum  # enum-free int constants (abi.py says why); IntEnum to mypy
from ..errors import OptionError
from . import native
from .errors import (
    ACL_ERROR_RT_AICPU_EXCEPTION,
    ACL_ERROR_RT_DRV_INTERNAL_ERROR,
    ACL_ERROR_RT_INVALID_DEVICEID,
    ACL_ERROR_RT_INVALID_HANDLE,
    ACL_ERROR_RT_PARAM_INVALID,
    ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
    CannError,
)
from .fs import device_dir, ensure_directory
from .memory import HbmPool
from .profiles import DeviceProfile, hbm_capacity, profile_for

TYPE_CHECKING = False  # on the runtime's start-up path: no typing import
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any


class MemcpyKind(AbiEnum):
    """rtMemcpyKind_t."""

    HOST_TO_HOST = 0
    HOST_TO_DEVICE = 1
    DEVICE_TO_HOST = 2
    DEVICE_TO_DEVICE = 3


OP_TIMEOUT_ENV = "SIMPLER_SIM_OP_TIMEOUT"
#: Seconds a launch may run before the stream gives up on it (507046), unless configured.
DEFAULT_OP_TIMEOUT = 60.0
#: Seconds an aborted launch's threads get to notice the abort word before they are left behind.
ABORT_GRACE = 5.0


def op_timeout_default() -> float:
    """SIMPLER_SIM_OP_TIMEOUT (seconds) if set, else DEFAULT_OP_TIMEOUT."""
    raw = os.environ.get(OP_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_OP_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise OptionError(f"{OP_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise OptionError(f"{OP_TIMEOUT_ENV} must be a positive number of seconds, not {raw}")
    return value


#: Poison that a soft reset did not clear (a5), by device id: the next device up inherits it.
_sticky_faults: dict[int, CannError] = {}


class Device:
    """One simulated chip: profile, HBM pool, live contexts, fault state and call counters."""

    def __init__(self, device_id: int, profile: DeviceProfile, capacity: int) -> None:
        self.device_id = device_id
        self.profile = profile
        self.hbm = HbmPool(capacity)
        self.contexts: list[Context] = []
        #: The first fault; while set, the device refuses work (507899).
        self.fault: CannError | None = _sticky_faults.get(device_id)
        #: The fault is poison (507018 / 507046), not a failed module load.
        self.poisoned = self.fault is not None
        #: Threads of aborted launches that did not exit within ABORT_GRACE (never freed under).
        self.stuck: list[Any] = []
        #: Abort words (ctypes.c_uint32) of the launches running now, by id: poison kills them
        #: all, as a reset would.
        self.running: dict[int, Any] = {}
        self.stats: Counter[str] = Counter()
        #: Live resources that context teardowns (not the host) released, by kind.
        self.released_at_teardown: Counter[str] = Counter()
        #: opType -> (fingerprint of its kernel SO, live binaries registering it)
        self.op_types: dict[str, tuple[str, int]] = {}
        self.lock = _thread.RLock()

    @property
    def arch(self) -> str:
        return self.profile.arch

    def check_driver(self, call: str) -> None:
        """507899 while the device is faulted, naming the first fault and the way out."""
        fault = self.fault
        if fault is not None:
            sticky = self.device_id in _sticky_faults
            way = "rtDeviceResetForce" if sticky else "rtDeviceReset"
            raise CannError(
                ACL_ERROR_RT_DRV_INTERNAL_ERROR,
                call,
                f"device {self.device_id} is unusable since: {fault}; {way} it",
            )

    def mark_broken(self, cause: CannError) -> None:
        """A failed module load (207001): unusable until any reset."""
        with self.lock:
            if self.fault is None:
                self.fault = cause

    def poison(self, cause: CannError) -> None:
        """An AICPU exception or op timeout: unusable until a reset that clears poison."""
        with self.lock:
            if self.fault is None:
                self.fault = cause
            self.poisoned = True
            for abort in self.running.values():
                abort.value = 1
            if not self.profile.soft_reset_clears_fault:
                _sticky_faults.setdefault(self.device_id, self.fault)

    def join_stuck(self, timeout: float = ABORT_GRACE) -> None:
        """Wait for aborted launch threads before their memory goes (teardown)."""
        for thread in self.stuck:
            thread.join(timeout)
        alive = [t for t in self.stuck if t.is_alive()]
        if alive:
            warnings.warn(
                f"device {self.device_id}: {len(alive)} aborted AICPU thread(s) never returned; "
                "their memory is kept",
                ResourceWarning,
                stacklevel=2,
            )
        self.stuck = alive


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

    def drain_streams(self) -> None:
        """Wait for every launch queued on this context: code is never unloaded under a thread."""
        for res in list(self.resources):
            if isinstance(res, Stream):
                res.drain()

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
        self.drain_streams()
        while self.resources:
            self.resources[-1].release()
            self.resources.pop()
        self.device.hbm.release_owner(self)


class LaunchThread:
    """A reusable launch thread: a pthread parked on a futex (`_launch.c`, via `native`).

    Starting block_dim threads per launch costs more than most launches' work,
    and handing blocks to Python threads costs a GIL handoff each; a stream
    keeps C threads instead.  They are detached: a kernel that ignores the
    abort word never keeps the process from exiting.
    """

    def __init__(self) -> None:
        ptr = native.helper().simlaunch_thread_start()
        if not ptr:
            raise CannError(ACL_ERROR_RT_PARAM_INVALID, "launch", "cannot start a launch thread")
        self.ptr: int = ptr

    def stop(self) -> None:
        """Exit once the current job (if any) returns; the thread frees itself.

        The pointer is dropped before the call: a Ctrl-C between the two can only
        leak a parked thread, never stop (write to) a thread that freed itself.
        """
        ptr, self.ptr = self.ptr, 0
        if ptr:
            native.helper().simlaunch_thread_stop(ptr)


class LaunchRecord:
    """One launch's shared block (`SimLaunch`): results, finished flags, abort word.

    A stream reuses its record launch after launch; one left behind by a kernel
    that ignored the abort word is never freed (its threads may still write it).
    """

    def __init__(self, capacity: int) -> None:
        lib = native.helper()
        ptr = lib.simlaunch_launch_new(capacity)
        if not ptr:
            raise CannError(ACL_ERROR_RT_PARAM_INVALID, "launch", f"{capacity} launch blocks")
        self.ptr: int = ptr
        self.capacity = capacity
        #: The abort word the kernels poll (device.poison sets it to 1).
        self.abort = ctypes.c_uint32.from_address(lib.simlaunch_launch_abort_word(ptr))

    def finished(self, i: int) -> bool:
        return bool(native.helper().simlaunch_launch_finished(self.ptr, i))

    def free(self) -> None:
        """Free the C block once: the pointer is dropped first, so an interrupted free
        leaks it rather than freeing it twice (which would hand the block to two owners)."""
        ptr, self.ptr = self.ptr, 0
        if ptr:
            native.helper().simlaunch_launch_free(ptr)


class _Stuck:
    """A launch thread that ignored the abort: it keeps what it may still touch alive."""

    def __init__(self, record: LaunchRecord, index: int, keep: tuple[object, ...]) -> None:
        self.record, self.index, self.keep = record, index, keep

    def join(self, timeout: float) -> None:
        native.helper().simlaunch_launch_wait(self.record.ptr, timeout)

    def is_alive(self) -> bool:
        return not self.record.finished(self.index)


class Inflight:
    """A started CPU launch: what finishing it (waiting, judging, cleaning up) needs."""

    __slots__ = ("args", "block_dim", "call", "deadline", "fn", "keep", "name", "record")

    def __init__(
        self, name: str, fn: int, block_dim: int, args: int, keep: object, call: str
    ) -> None:
        self.name, self.fn, self.block_dim, self.args = name, fn, block_dim, args
        self.keep, self.call = keep, call
        self.record: LaunchRecord | None = None
        self.deadline = 0.0


def start_launch(stream: Stream, launch: Inflight) -> Inflight:
    """Hand the launch's blocks to the stream's C threads, all at once; returns at once.

    The op timeout runs from here.  Stream-ordered: the caller guarantees that
    nothing else of the stream is running (its record and threads are free).
    """
    device = stream.ctx.device
    record = launch.record = stream.launch_record(launch.block_dim)
    threads = stream.launch_threads(launch.block_dim)
    abort = record.abort
    abort.value = 0
    with device.lock:
        device.running[id(abort)] = abort
    launch.deadline = time.monotonic() + stream.op_timeout
    native.helper().simlaunch_launch_start(
        record.ptr, threads, launch.fn, launch.args, launch.block_dim
    )
    return launch


def finish_launch(stream: Stream, launch: Inflight) -> None:
    """Wait for a started launch until its deadline (in C, without the GIL), then judge it.

    A non-zero return (507018) or a thread still running at the op timeout
    (507046) poisons the device and is raised.
    """
    device = stream.ctx.device
    lib = native.helper()
    record, block_dim, name = launch.record, launch.block_dim, launch.name
    assert record is not None
    abort = record.abort
    try:
        left = lib.simlaunch_launch_wait(record.ptr, max(0.0, launch.deadline - time.monotonic()))
    finally:
        with device.lock:
            device.running.pop(id(abort), None)
    if left:
        late = [i for i in range(block_dim) if not record.finished(i)]
        abort.value = 1  # the simulated stand-in for the reset that kills AICPU threads
        err = CannError(
            ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
            launch.call,
            f"{name}: thread(s) {', '.join(map(str, late))} of {block_dim} still running "
            f"after the {stream.op_timeout:g} s op timeout",
        )
        device.poison(err)
        lib.simlaunch_launch_wait(record.ptr, ABORT_GRACE)
        late = [i for i in range(block_dim) if not record.finished(i)]
        if late:  # ignored the abort: out of the pool, the record and its memory kept alive
            stream.retire(record, late)
            device.stuck.extend(_Stuck(record, i, (launch.keep, launch.fn)) for i in late)
        raise err
    for i in range(block_dim):
        rc = lib.simlaunch_launch_result(record.ptr, i)
        if rc != 0:
            detail = f"{name} thread {i} of {block_dim} returned {rc}"
            err = CannError(ACL_ERROR_RT_AICPU_EXCEPTION, launch.call, detail)
            device.poison(err)
            raise err


class _Watchdog:
    """Ends launches nobody waits for at their op timeout, without a wake-up per launch.

    It sleeps at most the smallest op timeout of any stream that launched, so a
    launch started after it went to sleep can never have an earlier deadline
    than its wake-up: launches only register, they never wake it (one thread per
    process, started by the first launch).  Only a shorter period wakes it early.

    Plain `_thread` locks, not a `threading.Condition`: `threading` is not
    loaded on a first run (docs/simulated-device.md "Launch path").
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()  # guards the fields below
        #: Held while the loop sleeps on it, released to wake the loop early.
        self._wakeup = _thread.allocate_lock()
        self._wakeup.acquire()
        self._streams: set[Stream] = set()
        self._period = float("inf")
        self._started = False

    def watch(self, stream: Stream) -> None:
        with self._lock:
            self._streams.add(stream)
            if not self._started:
                # A bare thread (daemon-like: never joined at exit): threading.Thread.start
                # would wait for it to come up, on the first launch of every process.
                _thread.start_new_thread(self._loop, ())
                self._started = True
            if stream.op_timeout < self._period:
                self._period = stream.op_timeout
                if self._wakeup.locked():  # else a wake-up is already pending
                    self._wakeup.release()

    def _loop(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                wake, due = now + self._period, []
                for stream in list(self._streams):
                    launch = stream.inflight
                    if launch is None:
                        self._streams.discard(stream)
                    elif launch.deadline <= now:
                        due.append(stream)
                    else:
                        wake = min(wake, launch.deadline)
            if not due:
                self._wakeup.acquire(timeout=max(0.0, wake - now))
                continue
            for stream in due:
                stream.complete_inflight()


_watchdog = _Watchdog()


class Stream:
    """A worker with a queue: launches run in order on its thread; failures wait for sync."""

    kind = "stream"

    def __init__(self, ctx: Context, op_timeout: float) -> None:
        self.ctx = ctx
        self.alive = True
        self.pending: CannError | None = None
        self.op_timeout = op_timeout
        #: Guards the queue, `inflight` and `pending`.  Its condition is made by the first
        #: waiter: a stream that never queues work never loads `threading` (_wait).
        self.lock = _thread.RLock()
        self._cond: threading.Condition | None = None
        self._queue: deque[Callable[[Stream], None]] = deque()
        self._worker: threading.Thread | None = None
        #: Launch threads, reused launch after launch (only the worker uses them).
        self.pool: list[LaunchThread] = []
        self._pool_ptrs: ctypes.Array[ctypes.c_void_p] | None = (
            None  # the pool as SimThread*[], for C
        )
        self._record: LaunchRecord | None = None
        #: The CPU launch started straight from the launch call, when the stream was idle.
        self.inflight: Inflight | None = None
        self._finishing = _thread.allocate_lock()  # one party waits for and judges `inflight`

    def launch_threads(self, count: int) -> ctypes.Array[ctypes.c_void_p]:
        """At least `count` launch threads as a C array, started as needed (worker thread only)."""
        if len(self.pool) < count or self._pool_ptrs is None:
            while len(self.pool) < count:
                self.pool.append(LaunchThread())
            self._pool_ptrs = (ctypes.c_void_p * len(self.pool))(*(t.ptr for t in self.pool))
        return self._pool_ptrs

    def launch_record(self, block_dim: int) -> LaunchRecord:
        """The stream's reusable launch record, grown to `block_dim` blocks (worker only)."""
        record = self._record
        if record is None or record.capacity < block_dim or not record.ptr:
            self._record = None  # first: an interrupted swap never leaves a freed record here
            if record is not None:
                record.free()
            record = self._record = LaunchRecord(max(block_dim, 8))
        return record

    def retire(self, record: LaunchRecord, late: list[int]) -> None:
        """Threads `late` of `record` ignored the abort: never reuse them or the record."""
        stuck = [self.pool[i] for i in late]
        self.pool = [t for t in self.pool if t not in stuck]
        for thread in stuck:
            thread.stop()  # it exits (and frees itself) once its kernel returns, if ever
        self._pool_ptrs = None
        if self._record is record:
            self._record = None

    def check(self, call: str) -> Device:
        if not self.alive:
            raise CannError(ACL_ERROR_RT_INVALID_HANDLE, call, "stream was destroyed")
        return self.ctx.check(call)

    def _wait(self) -> None:
        """Wait for a `_notify_all`; the caller holds `lock` and re-checks its condition."""
        if self._cond is None:
            import threading

            self._cond = threading.Condition(self.lock)
        self._cond.wait()

    def _notify_all(self) -> None:
        """Wake every `_wait`er; the caller holds `lock` (no condition yet: nobody waits)."""
        if self._cond is not None:
            self._cond.notify_all()

    def fail(self, err: CannError) -> None:
        """Hold `err` for the next rtStreamSynchronize (the first failure wins)."""
        with self.lock:
            if self.pending is None:
                self.pending = err

    def submit(self, work: Callable[[Stream], None]) -> None:
        """Queue `work` (called with this stream on its worker thread); returns at once."""
        with self.lock:
            self._enqueue(work)

    def _enqueue(self, work: Callable[[Stream], None]) -> None:
        self._queue.append(work)
        if self._worker is None:
            import threading  # the worker waits on the condition, which loads it anyway

            self._worker = threading.Thread(
                target=self._serve, name=f"sim-stream-{id(self):x}", daemon=True
            )
            self._worker.start()
        self._notify_all()

    def launch(self, launch: Inflight) -> None:
        """Run a CPU launch in stream order; returns at once.

        On an idle stream it starts right here (no thread handoff): its C threads
        run it, and whoever waits next -- rtStreamSynchronize, the worker before
        later work, teardown, or the watchdog at the op timeout -- finishes it.
        Behind other work it is queued for the worker like any other launch.
        """
        with self.lock:
            if self._queue or self.inflight is not None:
                self._enqueue(lambda s: finish_launch(s, start_launch(s, launch)))
                return
            if self.pending is not None:  # after a failure the rest is dropped until sync
                return
            self.inflight = start_launch(self, launch)
        _watchdog.watch(self)

    def complete_inflight(self) -> None:
        """Wait for the directly started launch, if any, and hold its failure for sync."""
        with self._finishing:
            launch = self.inflight
            if launch is None:
                return
            try:
                finish_launch(self, launch)
            except CannError as exc:
                self.fail(exc)
            except Exception as exc:  # a simulator bug: fail the stream, keep going
                self.fail(CannError(ACL_ERROR_RT_PARAM_INVALID, "stream launch", repr(exc)))
            finally:
                with self.lock:
                    self.inflight = None
                    self._notify_all()

    def _serve(self) -> None:
        while True:
            with self.lock:
                while not self._queue and self.alive:
                    self._wait()
                if not self._queue:
                    self._worker = None
                    return
                work = self._queue[0]
            self.complete_inflight()  # stream order: what started before runs to its end first
            try:
                if self.pending is None:  # after a failure the rest of the queue is dropped
                    work(self)
            except CannError as exc:
                self.fail(exc)
            except Exception as exc:  # a simulator bug: fail the stream, keep the worker
                self.fail(CannError(ACL_ERROR_RT_PARAM_INVALID, "stream worker", repr(exc)))
            finally:
                with self.lock:
                    self._queue.popleft()
                    self._notify_all()

    def drain(self) -> None:
        """Wait until everything queued has run (each launch is bounded by the op timeout)."""
        while True:
            self.complete_inflight()
            with self.lock:
                if not self._queue and self.inflight is None:
                    return
                if self._queue:
                    self._wait()

    def release(self) -> None:
        self.alive = False
        with self.lock:
            self._notify_all()
        self.drain()
        while self.pool:
            self.pool.pop().stop()
        self._pool_ptrs = None
        record, self._record = self._record, None
        if record is not None:
            record.free()


_devices: dict[int, Device] = {}
_registry_lock = _thread.allocate_lock()


def _teardown(device: Device) -> None:
    device.join_stuck()
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
    if (
        isinstance(device_id, bool)
        or not isinstance(device_id, int)
        or not 0 <= device_id < profile.device_count
    ):
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
    """Destroy every context on the device and free all its HBM (aclrtResetDevice).

    Clears a failed module load on every arch and poison on a2a3; an a5
    device keeps its poison (the next context finds it) until rtDeviceResetForce.
    """
    with _registry_lock:
        device = _devices.get(device_id)
        if device is not None:
            _teardown(device)


def rtDeviceResetForce(device_id: int) -> None:
    """rtDeviceReset that also clears poison on every arch (aclrtResetDeviceForce)."""
    with _registry_lock:
        device = _devices.get(device_id)
        if device is not None:
            _teardown(device)
        _sticky_faults.pop(device_id, None)


def get_device(device_id: int) -> Device | None:
    """The device if it is up (tests and statistics)."""
    return _devices.get(device_id)


def reset_all_devices() -> None:
    """rtDeviceResetForce every device that is up or poisoned (test isolation)."""
    for device_id in {*_devices, *_sticky_faults}:
        rtDeviceResetForce(device_id)


def rtMalloc(ctx: Context, size: int, tag: str = "rtMalloc") -> int:
    """Allocate `size` bytes of HBM owned by `ctx`; returns the device address."""
    device = ctx.check("rtMalloc")
    device.check_driver("rtMalloc")
    return device.hbm.allocate(size, ctx, tag).addr


def rtFree(ctx: Context, addr: int) -> None:
    device = ctx.check("rtFree")
    device.hbm.free(addr, ctx)


def rtMemcpy(ctx: Context, dst: int, dest_max: int, src: int, count: int, kind: MemcpyKind) -> None:
    """Synchronous copy; device-side ranges must lie inside one live allocation."""
    device = ctx.check("rtMemcpy")
    device.check_driver("rtMemcpy")
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


def rtStreamCreate(ctx: Context, op_timeout: float | None = None) -> Stream:
    """A new stream; `op_timeout` (seconds) bounds each launch on it (default: the env's)."""
    device = ctx.check("rtStreamCreate")
    device.check_driver("rtStreamCreate")
    timeout = op_timeout_default() if op_timeout is None else op_timeout
    if not timeout > 0:
        raise CannError(ACL_ERROR_RT_PARAM_INVALID, "rtStreamCreate", f"op timeout {timeout}")
    stream = Stream(ctx, timeout)
    ctx.resources.append(stream)
    return stream


def rtStreamSynchronize(stream: Stream) -> None:
    """Wait for the stream's queue to drain; raises the first failure of a launch on it."""
    stream.check("rtStreamSynchronize")
    stream.drain()
    with stream.lock:
        err, stream.pending = stream.pending, None
    if err is not None:
        raise err


def rtStreamDestroy(stream: Stream) -> None:
    stream.check("rtStreamDestroy")
    stream.ctx.release_resource(stream)
