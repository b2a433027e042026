"""WorkerRunner: a DeviceRunner in a child process, so one program can use several runtimes.

CANN latches the first inner SO a host process loads on a device (issue 11,
docs/simulated-device.md "Worker processes"): a second runtime needs a
second process.  As upstream's ChipWorker is bound to one (device, runtime),
a WorkerRunner is bound to one worker process that owns one DeviceRunner.

- The worker is started with the 'spawn' method (the parent may have
  threads) and imports the runtime only inside `_worker_main`.
- Inputs and outputs travel through shared memory (`_shm`: an anonymous
  memfd per prepared graph, mapped by both processes); only small control
  messages and the graph's description go over the socket.
- Every wait for the worker is bounded: a worker that dies raises
  `WorkerDiedError` (pid, device, signal), one that stops answering within
  `reply_timeout` is killed and raises `WorkerTimeoutError`.
- An exception the worker's DeviceRunner raises is re-raised in the parent as
  the same class with the same message (and the same attributes).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import pickle
import signal
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from multiprocessing import reduction
from typing import Any, cast

import numpy as np

from simpler_build.errors import DeviceError

from ._shm import Region
from .binaries import RuntimeBinaries
from .errors import GraphError, OptionError, RunnerClosedError
from .graph import Graph
from .runner import Closable, _as_float32, _bind_inputs, _check_device_args
from .sim.profiles import profile_for

#: How long a worker may take to start (spawn, import numpy and the runtime, bootstrap).
START_TIMEOUT = 120.0
#: How long a worker may take to answer one request (a run is bounded by op_timeout already).
REPLY_TIMEOUT = 300.0
#: How long finalize() waits for a worker to exit before killing it.
EXIT_TIMEOUT = 10.0


class WorkerError(DeviceError):
    """The worker process of a WorkerRunner is gone or unresponsive; the runner is unusable."""


class WorkerDiedError(WorkerError):
    """The worker process exited or was killed; `pid`, `device_id`, `signal`/`exitcode` say how."""

    def __init__(self, pid: int, label: str, device_id: int, exitcode: int | None) -> None:
        self.pid = pid
        self.device_id = device_id
        self.exitcode = exitcode
        self.signal: str | None = None
        if exitcode is not None and exitcode < 0:
            try:
                self.signal = signal.Signals(-exitcode).name
            except ValueError:
                self.signal = f"signal {-exitcode}"
            how = f"was killed by {self.signal}"
        else:
            how = f"exited with code {exitcode}"
        super().__init__(
            f"simpler worker pid {pid} ({label} on device {device_id}) {how}; "
            "this runner is unusable -- finalize() it and create a new one"
        )


class WorkerTimeoutError(WorkerError):
    """The worker did not answer within the timeout; it was killed."""


# -- exceptions across the process boundary ---------------------------------------------------
Encoded = tuple[str, str, str, dict[str, tuple[str, Any]]]


def _encode(exc: BaseException) -> Encoded:
    """Class, message and picklable attributes of `exc` (exceptions nested, e.g. `fault`)."""
    state: dict[str, tuple[str, Any]] = {}
    for key, value in vars(exc).items():
        if isinstance(value, BaseException):
            state[key] = ("exc", _encode(value))
            continue
        try:
            pickle.dumps(value)
        except Exception:  # an attribute that cannot cross is left behind, not the error
            continue
        state[key] = ("val", value)
    cls = type(exc)
    return cls.__module__, cls.__qualname__, str(exc), state


def _decode(encoded: Encoded) -> BaseException:
    """The exception `_encode` described: same class, message and attributes, no __init__ run.

    Many exceptions here (KernelExecError, CannError) take several arguments,
    so pickling them fails; rebuilding from the message does not.
    """
    module, qualname, message, state = encoded
    cls: Any = None
    with contextlib.suppress(Exception):
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return WorkerError(f"{module}.{qualname}: {message}")
    exc = cls.__new__(cls)
    exc.args = (message,)
    for key, (kind, value) in state.items():
        with contextlib.suppress(Exception):
            setattr(exc, key, _decode(value) if kind == "exc" else value)
    return exc


# -- the worker process -----------------------------------------------------------------------
def _worker_main(
    conn: mp_connection.Connection,
    bins: RuntimeBinaries,
    device_id: int,
    hbm_bytes: int | None,
    options: dict[str, Any],
) -> None:
    """Serve one DeviceRunner until the parent says finalize or goes away (EOF)."""
    # Ctrl-C is the parent's to handle: it finalizes, which stops this process cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .runner import DeviceRunner  # lazily: the parent decides when the runtime loads

    try:
        runner = DeviceRunner(bins, device_id, hbm_bytes, **options)
    except Exception as exc:
        conn.send(("err", _encode(exc)))
        return
    conn.send(("ok", os.getpid()))
    graphs: dict[int, tuple[Any, Region]] = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent is gone: release and exit
                return
            op = msg[0]
            fd = reduction.recv_handle(conn) if op == "prepare" else None
            try:
                reply = _serve(runner, graphs, msg, fd)
            except Exception as exc:
                conn.send(("err", _encode(exc)))
                continue
            finally:
                if fd is not None:
                    os.close(fd)
            conn.send(("ok", reply))
            if op == "finalize":
                return
    finally:
        for _, region in graphs.values():
            region.close()
        runner.finalize()


def _serve(
    runner: Any, graphs: dict[int, tuple[Any, Region]], msg: tuple[Any, ...], fd: int | None
) -> Any:
    """One request of the parent; the reply (an exception goes back as the error)."""
    op = msg[0]
    if op == "prepare":
        _, gid, graph = msg
        assert fd is not None
        region = Region.map(graph, fd)
        try:
            prepared = runner.prepare(graph)
        except BaseException:
            region.close()
            raise
        graphs[gid] = (prepared, region)
        return None
    if op == "run":
        _, gid, options = msg
        prepared, region = graphs[gid]
        # The in-process callable applies per-run options (block_dim, aicpu_threads) exactly
        # as it would in the parent; inputs were checked and cast there.
        region.write_outputs(prepared(*region.inputs, **options))
        return prepared.num_edges, prepared.last_threads
    if op == "order":
        return graphs[msg[1]][0].last_order()
    if op == "close":
        prepared, region = graphs.pop(msg[1])
        close = getattr(prepared, "close", None)
        if close is not None:  # the in-process callable's own release, where it has one
            close()
        else:
            prepared.released = True
        region.close()
        return None
    if op == "stats":
        return runner.stats
    if op == "finalize":
        runner.finalize()
        return None
    # A bug of this module (the parent sends only the requests above), not a usage error.
    raise ValueError(f"unknown worker request {op!r}")


# -- the parent's side ------------------------------------------------------------------------
@dataclass(eq=False)
class WorkerPrepared(Closable):
    """A graph prepared in the worker; call it to run (inputs and outputs via shared memory)."""

    runner: WorkerRunner
    graph: Graph
    gid: int
    region: Region | None
    released: bool = False
    num_edges: int = -1
    last_threads: int = 0

    def __call__(self, *inputs: Any, **named: Any) -> tuple[np.ndarray, ...]:
        return self.runner.run(self, *inputs, **named)

    def last_order(self) -> list[int]:
        """Task indices in the order the AICPU executed them on the last run."""
        order: list[int] = self.runner._request(("order", self.gid), self)
        return order


class _Process:
    """What must be stopped if a runner is collected unfinalized: kept apart from the runner."""

    def __init__(self, proc: Any, conn: mp_connection.Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.regions: dict[int, Region] = {}

    def stop(self, grace: float) -> None:
        """Close the socket (the worker sees EOF and exits), wait up to `grace` s, else kill it."""
        self.conn.close()
        self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(EXIT_TIMEOUT)
        for region in self.regions.values():
            region.close()
        self.regions.clear()
        with contextlib.suppress(ValueError):  # already closed
            self.proc.close()


def _collected(process: _Process, label: str) -> None:
    warnings.warn(
        f"WorkerRunner ({label}) was never finalized; use `with DeviceRunner(..., isolate=True)` "
        "or call finalize()",
        ResourceWarning,
        stacklevel=1,
    )
    process.stop(EXIT_TIMEOUT)


class WorkerRunner:
    """DeviceRunner's interface, served by a DeviceRunner in a worker process of its own.

    Build it as `DeviceRunner(bins, device_id=..., isolate=True)`.  The
    arguments are DeviceRunner's; `reply_timeout` bounds each wait for the
    worker (seconds), after which it is killed and `WorkerTimeoutError` raised.
    """

    def __init__(
        self,
        bins: RuntimeBinaries,
        device_id: int = 0,
        hbm_bytes: int | None = None,
        *,
        aicpu_threads: int | None = None,
        op_timeout: float | None = None,
        reply_timeout: float = REPLY_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        for name, value in (("reply_timeout", reply_timeout), ("start_timeout", start_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise OptionError(f"{name}={value!r}: must be a positive number of seconds")
        _check_device_args(device_id, hbm_bytes)
        self.bins = bins
        self.device_id = device_id
        self.reply_timeout = float(reply_timeout)
        profile = profile_for(bins.arch)
        self.launch_threads = profile.launch_aicpu_threads
        self.max_block_dim = profile.max_block_dim
        self.label = f"{bins.arch}/{bins.runtime}"
        self._lock = threading.RLock()
        self._finalized = False
        self._dead: WorkerError | None = None
        self._next_gid = 0
        self._prepared: dict[int, WorkerPrepared] = {}
        options: dict[str, Any] = {"aicpu_threads": aicpu_threads, "op_timeout": op_timeout}
        ctx = mp.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)  # a socketpair: it carries descriptors
        proc = ctx.Process(
            target=_worker_main,
            args=(child_conn, bins, device_id, hbm_bytes, options),
            name=f"simpler-worker-{bins.arch}-{bins.runtime}-dev{device_id}",
            daemon=True,
        )
        proc.start()
        child_conn.close()
        self.pid = cast(int, proc.pid)  # None only before start()
        self._process = _Process(proc, parent_conn)
        self._finalizer = weakref.finalize(self, _collected, self._process, self.label)
        try:
            self._reply(start_timeout)
        except BaseException:
            self._finalized = True
            self._finalizer.detach()
            self._process.stop(0 if self._dead else EXIT_TIMEOUT)
            raise
        self.aicpu_threads = profile.max_sched_threads if aicpu_threads is None else aicpu_threads

    # -- the control channel -----------------------------------------------------------------
    def _died(self) -> WorkerDiedError:
        proc = self._process.proc
        proc.join(EXIT_TIMEOUT)
        err = WorkerDiedError(self.pid, self.label, self.device_id, proc.exitcode)
        self._dead = err
        return err

    def _reply(self, timeout: float) -> Any:
        """The worker's answer to the last request; bounded by `timeout` and by its death."""
        conn, proc = self._process.conn, self._process.proc
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.join(EXIT_TIMEOUT)
                self._dead = WorkerTimeoutError(
                    f"simpler worker pid {self.pid} ({self.label} on device {self.device_id}) "
                    f"did not answer within {timeout:g} s; it was killed -- finalize() this "
                    "runner and create a new one"
                )
                raise self._dead
            ready = mp_connection.wait([conn, proc.sentinel], left)
            if conn in ready:
                try:
                    status, value = conn.recv()
                except (EOFError, OSError):
                    raise self._died() from None
                if status == "ok":
                    return value
                exc = _decode(value)
                exc.add_note(f"(raised in simpler worker pid {self.pid}, device {self.device_id})")
                raise exc
            if proc.sentinel in ready:
                raise self._died()

    def _request(
        self, msg: tuple[Any, ...], prepared: WorkerPrepared | None = None, fd: int = -1
    ) -> Any:
        with self._lock:
            self._check_open()
            if prepared is not None and (prepared.runner is not self or prepared.released):
                raise GraphError("this prepared graph belongs to another (or a finalized) runner")
            try:
                self._process.conn.send(msg)
                if fd >= 0:
                    reduction.send_handle(self._process.conn, fd, self.pid)
            except OSError:  # BrokenPipeError, ConnectionResetError: it died
                raise self._died() from None
            return self._reply(self.reply_timeout)

    def _check_open(self) -> None:
        if self._finalized:
            raise RunnerClosedError("DeviceRunner was finalized; create a new one")
        if self._dead is not None:
            raise self._dead

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> WorkerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()

    def finalize(self) -> None:
        """Finalize the worker's runner, stop the worker and release the shared memory.

        Idempotent.  A dead or unresponsive worker is reaped (killed if need be);
        an error of the worker's own finalize is re-raised after the cleanup.
        """
        with self._lock:
            if self._finalized:
                return
            failure: BaseException | None = None
            try:
                if self._dead is None:
                    try:
                        self._request(("finalize",))
                    except WorkerError:
                        pass  # gone or hung: stop() reaps it
                    except Exception as exc:
                        failure = exc
            finally:
                self._finalized = True
                self._finalizer.detach()
                for prepared in self._prepared.values():
                    prepared.released = True
                    prepared.region = None
                self._prepared.clear()
                self._process.stop(EXIT_TIMEOUT)
            if failure is not None:
                raise failure

    # -- prepare / run -----------------------------------------------------------------------
    def prepare(self, graph: Graph) -> WorkerPrepared:
        """Prepare `graph` in the worker, with a shared-memory region for its inputs and outputs."""
        with self._lock:
            self._check_open()
            region, fd = Region.create(graph)
            gid = self._next_gid
            self._next_gid += 1
            try:
                self._request(("prepare", gid, graph), fd=fd)
            except BaseException:
                region.close()
                raise
            finally:
                os.close(fd)
            self._process.regions[gid] = region
            prepared = self._prepared[gid] = WorkerPrepared(self, graph, gid, region)
            return prepared

    def run(self, prepared: WorkerPrepared, *inputs: Any, **named: Any) -> tuple[np.ndarray, ...]:
        """Write inputs to shared memory, run in the worker, return copies of the outputs."""
        with self._lock:
            self._check_open()
            if prepared.runner is not self or prepared.released or prepared.region is None:
                raise GraphError("this prepared graph belongs to another (or a finalized) runner")
            graph, region = prepared.graph, prepared.region
            names = {b.name for b in graph.inputs}
            # Inputs are checked here, by the in-process runner's own code (same errors);
            # any other keyword is the worker runner's to accept or refuse.
            mine = {k: v for k, v in named.items() if k in names}
            options = {k: v for k, v in named.items() if k not in names}
            if options.pop("cast", False):  # as PreparedGraph does: convert, then check
                inputs, mine = _as_float32(inputs, mine)
            region.write_inputs([arr for _, arr in _bind_inputs(graph, inputs, mine)])
            prepared.num_edges, prepared.last_threads = self._request(
                ("run", prepared.gid, options), prepared
            )
            return region.read_outputs()

    def _close_prepared(self, prepared: WorkerPrepared) -> None:
        with self._lock:
            if prepared.released or prepared.runner is not self:
                return
            try:
                if not self._finalized and self._dead is None:
                    self._request(("close", prepared.gid), prepared)
            finally:
                prepared.released = True
                self._prepared.pop(prepared.gid, None)
                region = self._process.regions.pop(prepared.gid, None)
                prepared.region = None
                if region is not None:
                    region.close()

    # -- statistics --------------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, int | str]:
        """The worker's DeviceRunner.stats (its device is the worker's), plus `worker_pid`."""
        stats: dict[str, int | str] = self._request(("stats",))
        stats["worker_pid"] = self.pid
        return stats
