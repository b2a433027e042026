"""Runtime: consume RuntimeBinaries and launch kernels on a (simulated) device.

bins = RuntimeBinaries.from_manifest("build/lib/a5/host_build_graph", arch="a5")
with DeviceRunner(bins) as runner:
    prepared = runner.prepare(graph)      # device buffers + task array, once
    (out,) = runner.run(prepared, a, b)   # as many times as you like

DeviceRunner(bins, device_id=0, isolate=True) is a WorkerRunner: the same
interface, served from a worker process (one runtime per process on a device).
"""

from . import _requires  # noqa: F401  (first: names the extra a missing module is in)
from .abi import KernelId, Status
from .aicpu_op import InnerSoLatchError, LoadAicpuOp
from .binaries import BinaryError, RuntimeBinaries
from .errors import GraphError, InputError, InputShapeError, OptionError, RunnerClosedError
from .graph import Buffer, Graph, TaskSpec
from .runner import (
    AlreadyPreparedError,
    DeviceRunner,
    DeviceUnusableError,
    KernelExecError,
    PreparedGraph,
    PreparedGraphClosedError,
)
from .sim.errors import CannError

# The worker (multiprocessing, sockets, memfd regions) loads only when first named or
# when DeviceRunner(isolate=True) needs it: the in-process runtime's import stays lean.
_WORKER_NAMES = frozenset(
    {"WorkerDiedError", "WorkerError", "WorkerPrepared", "WorkerRunner", "WorkerTimeoutError"}
)


def __getattr__(name: str) -> object:
    if name in _WORKER_NAMES:
        from . import worker

        return getattr(worker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlreadyPreparedError",
    "BinaryError",
    "Buffer",
    "CannError",
    "DeviceRunner",
    "DeviceUnusableError",
    "Graph",
    "GraphError",
    "InnerSoLatchError",
    "InputError",
    "InputShapeError",
    "KernelExecError",
    "KernelId",
    "LoadAicpuOp",
    "OptionError",
    "PreparedGraph",
    "PreparedGraphClosedError",
    "RunnerClosedError",
    "RuntimeBinaries",
    "Status",
    "TaskSpec",
    "WorkerDiedError",
    "WorkerError",
    "WorkerPrepared",
    "WorkerRunner",
    "WorkerTimeoutError",
]
