"""Task graphs: float32 buffers and the kernels that read and write them.

A Graph is pure description -- no device, no addresses.  `DeviceRunner.prepare`
turns it into device buffers and a SimplerTask array once.  Dependencies come
from buffer hazards (read-after-write, write-after-write, write-after-read)
in program order: the host computes them for `host_build_graph`, and
`aicpu_build_graph` derives the same edges on the AICPU.
"""

from __future__ import annotations

import math

from simpler_build.cache._record import Record

from .abi import KernelId
from .errors import GraphError

_set = object.__setattr__  # how the frozen records below set their fields

#: Keywords of a PreparedGraph call (per-run options); no input may take these names.
RUN_OPTIONS = frozenset({"block_dim", "aicpu_threads", "cast"})


class Buffer(Record):
    """A float32 tensor of the graph; `role` is input, output or temp.

    Immutable, and equal only to itself (two graphs may both have an "a"):
    a `Record` (no dataclass machinery on the runtime's import path), with
    identity equality and hashing.
    """

    _fields = ("name", "shape", "role")
    __slots__ = _fields
    __eq__ = object.__eq__
    __hash__ = object.__hash__
    name: str
    shape: tuple[int, ...]
    role: str

    def __init__(self, name: str, shape: tuple[int, ...], role: str) -> None:
        # Written out: Record's generated __init__ costs a compile() in every new process.
        _set(self, "name", name)
        _set(self, "shape", shape)
        _set(self, "role", role)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return 4 * self.size


class TaskSpec(Record):
    """One kernel launch of a graph; immutable, equal by value (a `Record`)."""

    _fields = ("kernel", "inputs", "output", "scalar", "block_dim")
    __slots__ = _fields
    kernel: KernelId
    inputs: tuple[Buffer, ...]
    output: Buffer
    scalar: float
    block_dim: int  # 0: the runtime's core count for the kernel's core type

    def __init__(
        self,
        kernel: KernelId,
        inputs: tuple[Buffer, ...],
        output: Buffer,
        scalar: float = 0.0,
        block_dim: int = 0,
    ) -> None:
        _set(self, "kernel", kernel)
        _set(self, "inputs", inputs)
        _set(self, "output", output)
        _set(self, "scalar", scalar)
        _set(self, "block_dim", block_dim)

    @property
    def reads(self) -> tuple[Buffer, ...]:
        return self.inputs


class Graph:
    """Build with input()/output()/temp() buffers and add()/mul()/adds()/matmul() tasks."""

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.buffers: list[Buffer] = []
        self.tasks: list[TaskSpec] = []

    def __repr__(self) -> str:
        counts = {
            role: sum(b.role == role for b in self.buffers) for role in ("input", "output", "temp")
        }
        parts = ", ".join(f"{n} {role}{'' if n == 1 else 's'}" for role, n in counts.items())
        tasks = len(self.tasks)
        return f"<Graph {self.name!r}: {parts}, {tasks} task{'' if tasks == 1 else 's'}>"

    # -- buffers -----------------------------------------------------------------------------
    def _buffer(self, name: str, shape: int | tuple[int, ...], role: str) -> Buffer:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not dims or any(not isinstance(d, int) or d <= 0 for d in dims):
            raise GraphError(
                f"{self.name}: buffer {name!r} needs positive integer dims, not {shape}"
            )
        if role == "input" and name in RUN_OPTIONS:
            raise GraphError(
                f"{self.name}: input name {name!r} is a run option of a prepared graph "
                f"({', '.join(sorted(RUN_OPTIONS))}); choose another name"
            )
        if any(b.name == name for b in self.buffers):
            raise GraphError(f"{self.name}: buffer name {name!r} used twice")
        buf = Buffer(name, dims, role)
        self.buffers.append(buf)
        return buf

    def input(self, name: str, shape: int | tuple[int, ...]) -> Buffer:
        """Copied host-to-device before every run, in declaration order."""
        return self._buffer(name, shape, "input")

    def output(self, name: str, shape: int | tuple[int, ...]) -> Buffer:
        """Copied device-to-host after every run and returned, in declaration order."""
        return self._buffer(name, shape, "output")

    def temp(self, name: str, shape: int | tuple[int, ...]) -> Buffer:
        """Device-only intermediate."""
        return self._buffer(name, shape, "temp")

    @property
    def inputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.role == "input"]

    @property
    def outputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.role == "output"]

    # -- tasks -------------------------------------------------------------------------------
    def _task(self, task: TaskSpec) -> TaskSpec:
        for buf in (*task.inputs, task.output):
            if buf not in self.buffers:
                raise GraphError(f"{self.name}: buffer {buf.name!r} belongs to another graph")
        if task.block_dim < 0:
            raise GraphError(f"{self.name}: block_dim must be >= 0")
        self.tasks.append(task)
        return task

    def _same_size(self, out: Buffer, *ins: Buffer) -> None:
        for b in ins:
            if b.size != out.size:
                raise GraphError(
                    f"{self.name}: {b.name!r} has {b.size} elements, {out.name!r} has {out.size}"
                )

    def add(self, out: Buffer, a: Buffer, b: Buffer, block_dim: int = 0) -> TaskSpec:
        """out = a + b"""
        self._same_size(out, a, b)
        return self._task(TaskSpec(KernelId.VEC_ADD, (a, b), out, block_dim=block_dim))

    def mul(self, out: Buffer, a: Buffer, b: Buffer, block_dim: int = 0) -> TaskSpec:
        """out = a * b"""
        self._same_size(out, a, b)
        return self._task(TaskSpec(KernelId.VEC_MUL, (a, b), out, block_dim=block_dim))

    def adds(self, out: Buffer, a: Buffer, scalar: float, block_dim: int = 0) -> TaskSpec:
        """out = a + scalar"""
        self._same_size(out, a)
        return self._task(
            TaskSpec(KernelId.VEC_ADDS, (a,), out, scalar=float(scalar), block_dim=block_dim)
        )

    def matmul(self, out: Buffer, a: Buffer, b: Buffer, block_dim: int = 0) -> TaskSpec:
        """out[m, n] = a[m, k] @ b[k, n] (cube kernel: MIX-mode AICore binaries only)."""
        if len(a.shape) != 2 or len(b.shape) != 2 or len(out.shape) != 2:
            raise GraphError(f"{self.name}: matmul needs 2-D buffers")
        (m, k), (k2, n) = a.shape, b.shape
        if k != k2 or out.shape != (m, n):
            raise GraphError(
                f"{self.name}: matmul shapes {a.shape} @ {b.shape} -> {out.shape} do not agree"
            )
        return self._task(TaskSpec(KernelId.MATMUL, (a, b), out, block_dim=block_dim))

    # -- dependencies ------------------------------------------------------------------------
    def predecessors(self) -> list[list[int]]:
        """For each task, the earlier tasks it must wait for (RAW, WAW, WAR on a buffer)."""
        preds: list[list[int]] = []
        for j, tj in enumerate(self.tasks):
            mine = []
            for i in range(j):
                ti = self.tasks[i]
                if (
                    ti.output in tj.reads  # RAW
                    or ti.output is tj.output  # WAW
                    or tj.output in ti.reads  # WAR
                ):
                    mine.append(i)
            preds.append(mine)
        return preds

    @property
    def uses_matmul(self) -> bool:
        return any(t.kernel is KernelId.MATMUL for t in self.tasks)
