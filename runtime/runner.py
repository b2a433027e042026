"""DeviceRunner: prepare a graph once, run it many times, with handles registered once.

docs/architecture.md "The AICore handle": the AICore binary is registered lazily on the
first run, the handle cached and reused by every later run, and dropped in
`finalize()`, whose context teardown is what frees the pinned ELF.  Every run
launches the AICore side (`simpler_aicore_main`, which loads the module on
the first launch) on the runner's AICore stream before the AICPU exec; the
two meet through the graph's device-side state.  A run
allocates nothing: it copies inputs in, makes one `rtsLaunchCpuKernel` of
`simpler_aicpu_exec` on the cached handle (the platform's launch thread
count, of which `aicpu_threads` schedule; the argument block goes by value),
reads the exec's report back from device memory, and copies outputs out --
so device memory after run N equals device memory after run 1.  Everything
that can be checked or computed once is done in `prepare`.

A device fault (507018, 507046, a failed module load) makes the runner
refuse further work with one `DeviceUnusableError` naming the first fault;
`finalize()` force-resets a poisoned device (docs/simulated-device.md).

A runner nobody finalizes is still released: a `weakref.finalize` gives a
`ResourceWarning`, as an unclosed file does, and hands the release to a
short-lived thread (`release_collected()` waits for it).  `finalize()` records
each step as done, so one interrupted by Ctrl-C is finished by the next call.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import warnings
import weakref
from collections import Counter, deque

import numpy as np

from simpler_build.cache.fingerprint import fingerprint_bytes
from simpler_build.errors import DeviceError
from simpler_build.files import read_regular

from . import sim
from .abi import (
    ABI_VERSION,
    GRAPH_MAGIC,
    NO_TASK,
    AicoreMainArgs,
    ExecArgs,
    ExecState,
    KernelId,
    Status,
    Task,
)
from .aicpu_op import LoadAicpuOp
from .binaries import BinaryError, RuntimeBinaries
from .errors import (
    GraphError,
    InputError,
    InputShapeError,
    OptionError,
    RunnerClosedError,
)
from .graph import Buffer, Graph
from .sim.profiles import profile_for

TYPE_CHECKING = False  # on the runtime's start-up path: no typing import
if TYPE_CHECKING:
    from typing import Any, Self

H2D = sim.MemcpyKind.HOST_TO_DEVICE
D2H = sim.MemcpyKind.DEVICE_TO_HOST
#: Runtimes whose AICPU side walks host-given predecessor lists.
HOST_DEPS_RUNTIMES = frozenset({"host_build_graph"})


class KernelExecError(DeviceError):
    """simpler_aicpu_exec reported a failure in its device-side state (status, failing task)."""

    def __init__(self, graph: str, status: int, failed_task: int) -> None:
        self.status = status
        self.failed_task = None if failed_task == NO_TASK else failed_task
        try:
            label = Status(status).name
        except ValueError:
            label = f"status {status}"
        where = "" if self.failed_task is None else f" at task {self.failed_task}"
        super().__init__(f"graph {graph!r} failed on the AICPU: {label}{where}")


class PreparedGraphClosedError(DeviceError):
    """A PreparedGraph was used after close(): its device buffers are gone. Prepare it again."""

    def __init__(self, graph: str) -> None:
        super().__init__(
            f"prepared graph {graph!r} was closed; its device buffers are freed -- "
            "prepare the graph again"
        )


class AlreadyPreparedError(DeviceError):
    """The graph object already has an open PreparedGraph on this runner (upstream refuses too)."""

    def __init__(self, graph: str) -> None:
        super().__init__(
            f"graph {graph!r} is already prepared on this runner; close() that PreparedGraph "
            "before preparing the graph again"
        )


class DeviceUnusableError(DeviceError):
    """The runner's device faulted; `fault` is the first fault. finalize() and start over."""

    def __init__(self, device_id: int, fault: sim.CannError) -> None:
        self.fault = fault
        super().__init__(
            f"device {device_id} unusable: {fault} -- finalize() this runner (it "
            "force-resets a poisoned device; other faults clear with rtDeviceReset)"
        )


class Closable:
    """close() and the with-block of a prepared callable (in-process or a worker's):
    its runner frees what the callable holds; idempotent."""

    __slots__ = ()
    runner: Any

    def close(self) -> None:
        self.runner._close_prepared(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PreparedGraph(Closable):
    """A graph with its device buffers and task array built once; call it to run.

    `close()` (or leaving a `with` block) frees its device buffers and task
    array; the runner's AICore module and inner SO stay loaded for the next
    prepare.  Keyword options of a call (`block_dim`, `aicpu_threads`, `cast`)
    apply to that run only.  Equal only to itself.
    """

    __slots__ = (
        "_plan",
        "addrs",
        "blocks",
        "graph",
        "host_args",
        "last_threads",
        "main_args",
        "nbytes",
        "num_edges",
        "order_addr",
        "released",
        "runner",
        "state_addr",
        "tasks",
    )
    runner: DeviceRunner

    def __init__(
        self,
        runner: DeviceRunner,
        graph: Graph,
        addrs: dict[str, int],
        state_addr: int,
        order_addr: int,
        host_args: ExecArgs,
        main_args: AicoreMainArgs,
        num_edges: int,
        blocks: list[int] | None = None,
        released: bool = False,
        last_threads: int = 0,
        tasks: ctypes.Array[Task] | None = None,
        nbytes: int = 0,
    ) -> None:
        self.runner = runner
        self.graph = graph
        self.addrs = addrs  # buffer name -> device address
        self.state_addr = state_addr  # the SimplerExecState the exec reports into
        self.order_addr = order_addr
        self.host_args = host_args  # launched by value; only `kernels` and `epoch` change per run
        self.main_args = main_args  # the AICore side's by-value block; `epoch` changes per run
        self.num_edges = num_edges
        self.blocks = [] if blocks is None else blocks
        self.released = released  # closed, or its runner finalized: the device buffers are gone
        self.last_threads = last_threads  # scheduler threads that took part in the last run
        self.tasks = tasks  # the host copy of the device task array
        self.nbytes = nbytes  # device bytes this callable holds
        self._plan: _RunPlan | None = None  # what every run uses, resolved at the first run

    def __call__(
        self,
        *inputs: Any,
        block_dim: int | None = None,
        aicpu_threads: int | None = None,
        cast: bool = False,
        **named: Any,
    ) -> tuple[np.ndarray, ...]:
        if block_dim is None and aicpu_threads is None and not cast:
            return self.runner.run(self, *inputs, **named)  # the default call: nothing extra
        return self.runner._run_with_options(
            self, inputs, named, block_dim=block_dim, aicpu_threads=aicpu_threads, cast=cast
        )

    def __repr__(self) -> str:
        runner = self.runner
        state = "closed" if self.released else f"{self.nbytes} B on device"
        return (
            f"<PreparedGraph {self.graph.name!r} {runner.bins.arch}/{runner.bins.runtime} "
            f"device {runner.device_id}: {len(self.graph.tasks)} tasks, {state}>"
        )

    def last_order(self) -> list[int]:
        """Task indices in the order the AICPU executed them on the last run."""
        if self.released:
            raise PreparedGraphClosedError(self.graph.name)
        n = len(self.graph.tasks)
        out = (ctypes.c_uint32 * n)()
        sim.rtMemcpy(self.runner.ctx, ctypes.addressof(out), 4 * n, self.order_addr, 4 * n, D2H)
        return list(out)


class _Teardown:
    """What a runner must release, in order; a step is recorded as done once it completes.

    It is kept apart from the runner so that a finalizer can hold it without
    keeping the runner alive, and so that a teardown interrupted part-way
    (Ctrl-C) is finished by the next call instead of being skipped as done.
    """

    def __init__(self) -> None:
        self.ctx: sim.Context | None = None
        self.stream: sim.Stream | None = None
        self.aicore_stream: sim.Stream | None = None
        self.op: LoadAicpuOp | None = None

    def run(self) -> None:
        ctx = self.ctx
        if ctx is not None and ctx.alive and ctx.device.poisoned:
            # Nothing on a poisoned device can be unloaded or destroyed: force-reset it.
            sim.rtDeviceResetForce(ctx.device.device_id)
        if self.op is not None:
            self.op.finalize()
            self.op = None
        if self.aicore_stream is not None:
            with contextlib.suppress(sim.CannError):
                sim.rtStreamDestroy(self.aicore_stream)
            self.aicore_stream = None
        if self.stream is not None:
            with contextlib.suppress(sim.CannError):
                sim.rtStreamDestroy(self.stream)
            self.stream = None
        if self.ctx is not None:
            sim.rtCtxDestroy(self.ctx)
            self.ctx = None


#: Teardowns of collected runners; deque's append and popleft are atomic and take no lock.
_collected_queue: deque[_Teardown] = deque()
_release_lock = _thread.allocate_lock()


def _collected(teardown: _Teardown, label: str) -> None:
    """weakref.finalize callback of a runner collected without finalize(): warn and release.

    The garbage collector may run this inside any code -- the simulator holding
    one of its locks included -- so it does nothing that takes a lock: the
    release runs in a new low-level thread (threading.Thread.start takes locks).
    """
    warnings.warn(
        f"DeviceRunner ({label}) was never finalized; use `with DeviceRunner(...)` "
        "or call finalize()",
        ResourceWarning,
        stacklevel=1,
    )
    _collected_queue.append(teardown)  # safe in finalizers: atomic, takes no lock
    with contextlib.suppress(RuntimeError):  # no thread: release_collected() will do it
        _thread.start_new_thread(_release_collected_now, ())


def _release_collected_now() -> None:
    with _release_lock:
        _drain_collected()


def _drain_collected() -> None:
    while True:
        try:
            teardown = _collected_queue.popleft()
        except IndexError:
            return
        try:
            teardown.run()
        except Exception as exc:  # one failed release must not keep the others
            msg = f"releasing a collected DeviceRunner failed: {exc}"
            warnings.warn(msg, ResourceWarning, stacklevel=1)


def release_collected(timeout: float = -1) -> bool:
    """Release every runner collected so far without finalize(); False if `timeout` ran out.

    The releases normally happen on their own, moments after collection; this
    waits for them (tests, and code that needs the device memory back now).
    """
    if not _release_lock.acquire(timeout=timeout):
        return False
    try:
        _drain_collected()
    finally:
        _release_lock.release()
    return True


def _check_device_args(device_id: object, hbm_bytes: object) -> None:
    """OptionError for a device id or HBM size that is not an int (a bool is not one).

    The device checks the range (CANN's 107001 for an id outside the chip's);
    a bool would pass that as 0 or 1 and then name files `..._True.so`.
    """
    if isinstance(device_id, bool) or not isinstance(device_id, int):
        raise OptionError(f"device_id={device_id!r}: must be an int")
    if hbm_bytes is not None and (isinstance(hbm_bytes, bool) or not isinstance(hbm_bytes, int)):
        raise OptionError(f"hbm_bytes={hbm_bytes!r}: must be an int number of bytes, or None")


class DeviceRunner:
    """Runs graphs of one RuntimeBinaries on one simulated device; use as a context manager.

    `aicpu_threads` is how many of the exec launch's threads schedule tasks
    ([1, 4] on a2a3, [1, 7] on a5; default all of them); `op_timeout` (seconds)
    bounds every launch on the runner's stream (default: the simulator's).
    `isolate=True` builds a `worker.WorkerRunner` instead: the same interface,
    served by a runner in a worker process of its own (one inner SO per process).
    """

    def __new__(
        cls,
        bins: RuntimeBinaries,
        device_id: int = 0,
        hbm_bytes: int | None = None,
        *,
        isolate: bool = False,
        **options: Any,
    ) -> Any:
        if isolate:
            from .worker import WorkerRunner

            return WorkerRunner(bins, device_id, hbm_bytes, **options)
        return super().__new__(cls)

    def __init__(
        self,
        bins: RuntimeBinaries,
        device_id: int = 0,
        hbm_bytes: int | None = None,
        *,
        aicpu_threads: int | None = None,
        op_timeout: float | None = None,
        isolate: bool = False,
    ) -> None:
        _check_device_args(device_id, hbm_bytes)
        self.bins = bins
        self.device_id = device_id
        profile = profile_for(bins.arch)
        most = profile.max_sched_threads
        threads = most if aicpu_threads is None else aicpu_threads
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= most:
            raise OptionError(
                f"aicpu_threads={aicpu_threads!r}: an {bins.arch} device runs 1 to {most} "
                "scheduler threads"
            )
        if op_timeout is not None and (
            isinstance(op_timeout, bool)
            or not (isinstance(op_timeout, int | float) and op_timeout > 0)
        ):
            raise OptionError(f"op_timeout={op_timeout!r}: must be a positive number of seconds")
        self.aicpu_threads = threads
        self.launch_threads = profile.launch_aicpu_threads
        self.max_block_dim = profile.max_block_dim
        self._lock = _thread.RLock()
        self._counts: Counter[str] = Counter()
        self._prepared: list[PreparedGraph] = []  # open ones: close() or finalize() ends them
        self._alloc_bytes = 0  # bytes allocated by the prepare in progress
        self._aicore: sim.KernelHandle | None = None
        self._finalized = False
        self._teardown = _Teardown()
        self._finalizer: weakref.finalize[[_Teardown, str], DeviceRunner] | None = None
        label = f"{bins.arch}/{bins.runtime} on device {device_id}"
        try:
            self._finalizer = weakref.finalize(self, _collected, self._teardown, label)
            self._finalizer.atexit = False  # nothing outlives the process: no files, no device
            self._teardown.ctx = self.ctx = sim.rtCtxCreate(device_id, bins.arch, hbm_bytes)
            self._teardown.stream = self.stream = sim.rtStreamCreate(self.ctx, op_timeout)
            # AICore work has its own stream (upstream #1852): the exec waits for it.
            self._teardown.aicore_stream = self.aicore_stream = sim.rtStreamCreate(
                self.ctx, op_timeout
            )
            self._teardown.op = self._op = LoadAicpuOp(self.ctx, self.stream, bins)
        except BaseException:
            self.finalize()
            raise

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> DeviceRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()

    def finalize(self) -> None:
        """Unload the AICPU op, drop the AICore handle and tear the context down (frees all).

        Idempotent, and resumable: a call interrupted part-way (Ctrl-C) leaves the
        steps it did not finish to the next call.
        """
        with self._lock:
            self._finalized = True
            for prepared in self._prepared:
                prepared.released = True
            self._prepared.clear()
            self._aicore = None
            self._teardown.run()
            if self._finalizer is not None:  # only now: an interrupted teardown stays collectable
                self._finalizer.detach()

    def __repr__(self) -> str:
        state = "finalized" if self._finalized else f"{len(self._prepared)} prepared"
        return (
            f"<DeviceRunner {self.bins.arch}/{self.bins.runtime} device {self.device_id}: "
            f"{self.aicpu_threads} of {self.launch_threads} AICPU threads, {state}>"
        )

    def _check_open(self) -> None:
        if self._finalized:
            raise RunnerClosedError("DeviceRunner was finalized; create a new one")
        fault = self.ctx.device.fault
        if fault is not None:
            raise DeviceUnusableError(self.device_id, fault)

    # -- AICore handle -----------------------------------------------------------------------
    def _kernel_handle(self) -> sim.KernelHandle:
        """The AICore handle: registered on first use, then the cached one, every time."""
        if self._aicore is None:
            # Hash the very bytes that go to the device, in the read that loads them.
            try:
                elf = read_regular(self.bins.aicore)
            except OSError as exc:
                raise BinaryError(self.bins.aicore, f"AICore ELF: {exc.strerror or exc}") from None
            expected = self.bins.fingerprints.get("aicore")
            if expected is not None and fingerprint_bytes(elf) != expected:
                raise BinaryError(
                    self.bins.aicore, f"AICore ELF no longer hashes to {expected}; not loading it"
                )
            self._aicore = sim.rtRegisterAllKernel(self.ctx, elf, str(self.bins.aicore))
            self._counts["aicore_registrations"] += 1
        return self._aicore

    # -- prepare -----------------------------------------------------------------------------
    def prepare(self, graph: Graph) -> PreparedGraph:
        """Allocate the graph's device buffers and write its task array, once."""
        with self._lock:
            self._check_open()
            if not graph.tasks:
                raise GraphError(f"graph {graph.name!r} has no tasks")
            if any(p.graph is graph for p in self._prepared):
                raise AlreadyPreparedError(graph.name)
            if graph.uses_matmul and not self.ctx.device.profile.mix_aicore:
                raise GraphError(
                    f"graph {graph.name!r} uses matmul, a cube kernel; {self.bins.arch} AICore "
                    "binaries are vector-only (MIX mode is a5)"
                )
            for i, spec in enumerate(graph.tasks):
                if spec.block_dim > self.max_block_dim:
                    raise GraphError(
                        f"graph {graph.name!r} task {i}: block_dim {spec.block_dim} exceeds "
                        f"the {self.bins.arch} limit of {self.max_block_dim} "
                        "(PLATFORM_MAX_BLOCKDIM; 0 means all)"
                    )
            blocks: list[int] = []
            self._alloc_bytes = 0
            try:
                return self._build(graph, blocks)
            except BaseException:
                for addr in blocks:
                    with contextlib.suppress(sim.CannError):
                        sim.rtFree(self.ctx, addr)
                raise

    def _alloc(self, blocks: list[int], size: int, tag: str) -> int:
        addr = sim.rtMalloc(self.ctx, size, tag)
        blocks.append(addr)
        self._alloc_bytes += size
        return addr

    def _to_device(
        self, blocks: list[int], obj: ctypes.Array[Any] | ctypes.Structure, tag: str
    ) -> int:
        size = ctypes.sizeof(obj)
        addr = self._alloc(blocks, size, tag)
        sim.rtMemcpy(self.ctx, addr, size, ctypes.addressof(obj), size, H2D)
        return addr

    def _build(self, graph: Graph, blocks: list[int]) -> PreparedGraph:
        addrs = {
            b.name: self._alloc(blocks, b.nbytes, f"{graph.name}.{b.name}") for b in graph.buffers
        }
        n = len(graph.tasks)
        host_deps = self.bins.runtime in HOST_DEPS_RUNTIMES
        preds = graph.predecessors() if host_deps else [[] for _ in range(n)]
        flat = [p for ps in preds for p in ps]
        tasks = (Task * n)()
        dep_begin = 0
        for i, (spec, ps) in enumerate(zip(graph.tasks, preds, strict=True)):
            t = tasks[i]
            t.kernel_id = int(spec.kernel)
            t.dep_begin = dep_begin
            t.dep_count = len(ps)
            dep_begin += len(ps)
            t.block_dim = spec.block_dim or self.max_block_dim  # 0: every block
            a = t.args
            a.in0 = addrs[spec.inputs[0].name]
            a.in1 = addrs[spec.inputs[1].name] if len(spec.inputs) > 1 else 0
            a.out = addrs[spec.output.name]
            a.scalar = spec.scalar
            if spec.kernel is KernelId.MATMUL:
                (a.m, a.k), a.n = spec.inputs[0].shape, spec.output.shape[1]
            else:
                a.n = spec.output.size
        args = ExecArgs(magic=GRAPH_MAGIC, abi_version=ABI_VERSION, num_tasks=n)
        args.tasks = self._to_device(blocks, tasks, f"{graph.name}.tasks")
        if flat:
            args.deps = self._to_device(blocks, (ctypes.c_uint32 * len(flat))(*flat), "deps")
        args.order = self._alloc(blocks, 4 * n, f"{graph.name}.order")
        args.state = self._to_device(blocks, ExecState(), f"{graph.name}.exec_state")
        args.active_threads = self.aicpu_threads
        prepared = PreparedGraph(
            runner=self,
            graph=graph,
            addrs=addrs,
            state_addr=args.state,
            order_addr=args.order,
            host_args=args,
            main_args=AicoreMainArgs(state=args.state),
            num_edges=len(flat) if host_deps else -1,
            blocks=blocks,
            tasks=tasks,
            nbytes=self._alloc_bytes,
        )
        self._prepared.append(prepared)
        self._counts["prepared"] += 1
        return prepared

    # -- run ---------------------------------------------------------------------------------
    def run(self, prepared: PreparedGraph, *inputs: Any, **named: Any) -> tuple[np.ndarray, ...]:
        """Copy inputs in, execute on the AICPU, return the outputs in declaration order.

        Only copies and launches: addresses, sizes and the range checks of every
        copy were resolved once for the prepared graph (`_RunPlan`).
        """
        with self._lock:
            self._check_open()
            if prepared.runner is not self or prepared.released:
                if prepared.runner is self:
                    raise PreparedGraphClosedError(prepared.graph.name)
                raise GraphError("this prepared graph belongs to another runner")
            plan = prepared._plan
            if plan is None:
                plan = prepared._plan = _RunPlan(self.ctx, prepared)
            if not self.ctx.alive:  # reset under us: its memory is gone
                self.ctx.check("run")
            if named or len(inputs) != len(plan.in_views):
                bound = _bind_inputs(prepared.graph, inputs, named)
                inputs = tuple(arr for _, arr in bound)
            for view, shape, name, value in zip(
                plan.in_views, plan.in_shapes, plan.in_names, inputs, strict=True
            ):
                arr = value if type(value) is np.ndarray else np.asarray(value)
                if arr.dtype != _F32:  # explicit dtypes: cast=True converts before this
                    _bind_inputs(prepared.graph, inputs, {})  # raises its one-line InputError
                if arr.shape != shape:
                    raise InputShapeError(
                        f"input {name!r} has shape {arr.shape}, graph says {shape}"
                    )
                view[...] = arr  # the copy in (float32, any layout)
            handle = self._kernel_handle()
            args, main = prepared.host_args, prepared.main_args
            args.epoch = main.epoch = args.epoch % 0xFFFFFFFF + 1  # never 0: 0 is "not written"
            # AICore first, on its own stream (#1060); its first launch loads the module.
            sim.rtKernelLaunchWithHandleV2(
                handle, 1, plan.main_addr, _MAIN_SIZE, self.aicore_stream
            )
            if plan.handle is not handle:  # loaded by the launch above, on the first run
                args.kernels, args.num_kernels = handle.kernel_table, handle.num_kernels
                plan.handle = handle
            self._op.launch(self._op.exec_fn, plan.args_addr, _ARGS_SIZE, self.launch_threads)
            sim.rtStreamSynchronize(self.aicore_stream)
            state = plan.state
            ctypes.memmove(plan.state_host, prepared.state_addr, _STATE_SIZE)  # the copy out
            if state.epoch != args.epoch:
                raise DeviceError(
                    f"graph {prepared.graph.name!r}: the exec returned without reporting "
                    f"run {args.epoch}"
                )
            if state.status != Status.OK:
                raise KernelExecError(prepared.graph.name, state.status, state.failed_task)
            counts = self._counts
            counts["aicore_launches"] += state.aicore_launches
            counts["runs"] += 1
            prepared.num_edges = state.num_edges
            prepared.last_threads = state.threads
            return tuple([view.copy() for view in plan.out_views])  # fresh C arrays, copied out

    def _close_prepared(self, prepared: PreparedGraph) -> None:
        """Free a callable's device blocks; after finalize() the teardown already did."""
        with self._lock:
            if prepared.released:
                return
            prepared.released = True
            self._prepared.remove(prepared)
            blocks, prepared.blocks = prepared.blocks, []
            if not self.ctx.alive:
                return
            for addr in blocks:  # a faulted device frees nothing; finalize() tears it all down
                with contextlib.suppress(sim.CannError):
                    sim.rtFree(self.ctx, addr)
            self._counts["closed"] += 1

    def _check_options(self, block_dim: int | None, aicpu_threads: int | None) -> None:
        """Per-run options against the arch's limits; an OptionError naming the limit."""
        arch = self.bins.arch
        if block_dim is not None and (
            isinstance(block_dim, bool)
            or not isinstance(block_dim, int)
            or not 0 <= block_dim <= self.max_block_dim
        ):
            raise OptionError(
                f"block_dim={block_dim!r}: an {arch} run takes 0 to {self.max_block_dim} blocks "
                "(PLATFORM_MAX_BLOCKDIM; 0 means all)"
            )
        most = self.ctx.device.profile.max_sched_threads
        if aicpu_threads is not None and (
            isinstance(aicpu_threads, bool)
            or not isinstance(aicpu_threads, int)
            or not 1 <= aicpu_threads <= most
        ):
            raise OptionError(
                f"aicpu_threads={aicpu_threads!r}: an {arch} device runs 1 to {most} "
                "scheduler threads"
            )

    def _run_with_options(
        self,
        prepared: PreparedGraph,
        inputs: tuple[Any, ...],
        named: dict[str, Any],
        *,
        block_dim: int | None,
        aicpu_threads: int | None,
        cast: bool,
    ) -> tuple[np.ndarray, ...]:
        """One run with per-run options; the prepared state is restored afterwards.

        Only calls that pass options come here, so the default call pays nothing.
        `block_dim` replaces every task's block count for this run (the task
        array is rewritten, then restored); `aicpu_threads` sets the scheduler
        threads in the by-value argument block; `cast` converts inputs to float32.
        """
        self._check_options(block_dim, aicpu_threads)
        if cast:
            inputs, named = _as_float32(inputs, named)
        with self._lock:
            args = prepared.host_args
            saved_threads = args.active_threads
            tasks = prepared.tasks
            rewrite = block_dim is not None and tasks is not None and not prepared.released
            try:
                if aicpu_threads is not None:
                    args.active_threads = aicpu_threads
                if rewrite:
                    assert tasks is not None and block_dim is not None
                    self._check_open()
                    self._write_tasks(prepared, tasks, block_dim or self.max_block_dim)
                return self.run(prepared, *inputs, **named)
            finally:
                args.active_threads = saved_threads
                if rewrite and self.ctx.alive and self.ctx.device.fault is None:
                    assert tasks is not None
                    self._write_tasks(prepared, tasks, None)

    def _write_tasks(
        self, prepared: PreparedGraph, tasks: ctypes.Array[Task], dim: int | None
    ) -> None:
        """Copy the task array to the device, every block_dim set to `dim` (None: as prepared)."""
        if dim is not None:
            copy = (Task * len(tasks))()
            ctypes.memmove(copy, tasks, ctypes.sizeof(tasks))
            for task in copy:
                task.block_dim = dim
            tasks = copy
        size = ctypes.sizeof(tasks)
        sim.rtMemcpy(self.ctx, prepared.host_args.tasks, size, ctypes.addressof(tasks), size, H2D)

    # -- statistics --------------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, int | str]:
        """Counters of this runner, plus HBM bytes of the whole device (every context on it).

        `hbm_peak` is the device's high-water mark since it came up;
        `context_hbm_in_use` is what this runner's own context holds.
        """
        hbm = self.ctx.device.hbm
        return {
            "arch": self.bins.arch,
            "runtime": self.bins.runtime,
            "device_id": self.device_id,
            "inner_fingerprint": self.bins.inner_fingerprint,
            "aicpu_threads": self.aicpu_threads,
            "launch_threads": self.launch_threads,
            "dispatcher_probes": self._op.probes,
            "dispatcher_bootstraps": self._op.bootstraps,
            "aicore_registrations": self._counts["aicore_registrations"],
            "aicpu_launches": self._op.launches,
            "aicore_launches": self._counts["aicore_launches"],
            "runs": self._counts["runs"],
            "prepared": self._counts["prepared"],
            "closed": self._counts["closed"],
            "open_prepared": len(self._prepared),
            "hbm_in_use": hbm.in_use,
            "hbm_peak": hbm.peak,
            "hbm_capacity": hbm.capacity,
            "context_hbm_in_use": hbm.owned_bytes(self.ctx) if self.ctx.alive else 0,
        }


def _bind_inputs(
    graph: Graph, inputs: tuple[Any, ...], named: dict[str, Any]
) -> list[tuple[Buffer, np.ndarray]]:
    """Match positional then named arguments to the graph's inputs as float32 C arrays."""
    wanted = graph.inputs
    if len(inputs) > len(wanted):
        raise InputError(f"graph {graph.name!r} takes {len(wanted)} inputs, got {len(inputs)}")
    given = dict(zip((b.name for b in wanted), inputs, strict=False))
    for name, value in named.items():
        if name in given:
            raise InputError(f"input {name!r} given twice")
        if name not in {b.name for b in wanted}:
            raise InputError(f"graph {graph.name!r} has no input {name!r}")
        given[name] = value
    bound = []
    for buf in wanted:
        if buf.name not in given:
            raise InputError(f"graph {graph.name!r}: missing input {buf.name!r}")
        arr = np.asarray(given[buf.name])
        if arr.dtype != np.float32:
            raise InputError(
                f"input {buf.name!r} is {arr.dtype}, graph {graph.name!r} takes float32 -- "
                "pass float32 arrays, or call with cast=True to convert"
            )
        arr = np.ascontiguousarray(arr)
        if arr.shape != buf.shape:
            raise InputShapeError(
                f"input {buf.name!r} has shape {arr.shape}, graph says {buf.shape}"
            )
        bound.append((buf, arr))
    return bound


def _as_float32(
    inputs: tuple[Any, ...], named: dict[str, Any]
) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]]:
    """cast=True: every input as a float32 array (the caller asked for the conversion)."""
    return (
        tuple(np.asarray(v, dtype=np.float32) for v in inputs),
        {k: np.asarray(v, dtype=np.float32) for k, v in named.items()},
    )


_ARGS_SIZE = ctypes.sizeof(ExecArgs)
_MAIN_SIZE = ctypes.sizeof(AicoreMainArgs)
_STATE_SIZE = ctypes.sizeof(ExecState)


_F32 = np.dtype(np.float32)


def _device_view(ctx: sim.Context, addr: int, buf: Buffer) -> np.ndarray:
    """A float32 array over a device buffer, its range checked here, once."""
    ctx.device.hbm.check_range(addr, buf.nbytes, "prepare")
    raw = (ctypes.c_char * buf.nbytes).from_address(addr)
    return np.frombuffer(memoryview(raw), dtype=np.float32).reshape(buf.shape)


class _RunPlan:
    """What every run of one prepared graph uses, resolved at its first run.

    Device views whose ranges were checked once (valid while the context is
    alive, which run() checks), the host addresses of the by-value blocks, and
    one host ExecState the report is copied into: a run allocates nothing but
    its output arrays.
    """

    __slots__ = (
        "args_addr",
        "handle",
        "in_names",
        "in_shapes",
        "in_views",
        "main_addr",
        "out_views",
        "state",
        "state_host",
    )

    def __init__(self, ctx: sim.Context, prepared: PreparedGraph) -> None:
        graph, addrs = prepared.graph, prepared.addrs
        self.in_views = [_device_view(ctx, addrs[b.name], b) for b in graph.inputs]
        self.in_shapes = [b.shape for b in graph.inputs]
        self.in_names = [b.name for b in graph.inputs]
        self.out_views = [_device_view(ctx, addrs[b.name], b) for b in graph.outputs]
        ctx.device.hbm.check_range(prepared.state_addr, _STATE_SIZE, "prepare")
        self.state = ExecState()
        self.state_host = ctypes.addressof(self.state)
        self.args_addr = ctypes.addressof(prepared.host_args)
        self.main_addr = ctypes.addressof(prepared.main_args)
        self.handle: sim.KernelHandle | None = None  # whose kernel table `host_args` holds
