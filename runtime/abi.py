"""ctypes mirrors of the C ABI: `runtime/include/simpler_abi.h` and `dispatcher/device_args.h`.

The one place Python spells out the structs the inner SOs, the AICore binary
and the dispatcher read.  Sizes and offsets are asserted at import, so a
header change that is not mirrored here fails loudly instead of corrupting
device memory.
"""

from __future__ import annotations

import ctypes

TYPE_CHECKING = False  # on the runtime's start-up path: no typing import
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import ClassVar, Self

ABI_VERSION = 2
GRAPH_MAGIC = 0x485052474C504D53  # "SMPLGRPH" little-endian
NO_TASK = 0xFFFFFFFF  # SimplerExecState.failed_task when no task failed


class _ConstantsType(type):
    """Lets a class of constants be iterated (in value order) and sized, as an enum is."""

    _members: dict[int, AbiConstant]

    def __iter__(cls) -> Iterator[AbiConstant]:
        return iter(cls._members.values())

    def __len__(cls) -> int:
        return len(cls._members)


class AbiConstant(int, metaclass=_ConstantsType):
    """An int of a C enum that knows its name: `Status.OK`, `Status(3)`, `member.name`.

    Why not `enum.IntEnum`: building its classes cost every new process's first
    run about 0.3 ms (four enums), for constants that are only ever compared,
    indexed with and printed.  A subclass turns its UPPER_CASE int attributes into
    members, which are ints (`==`, hashing, ctypes fields), print as
    `<Status.OK: 0>`, iterate in value order, and pickle as themselves;
    `Status(9)` is a ValueError naming the class, as an enum's is.
    """

    __slots__ = ()
    _members: ClassVar[dict[int, AbiConstant]] = {}
    _names: ClassVar[dict[int, str]] = {}

    def __init_subclass__(cls) -> None:
        constants = {k: v for k, v in vars(cls).items() if k.isupper() and type(v) is int}
        names: dict[int, str] = {}
        for key, value in constants.items():
            names.setdefault(value, key)  # a later name for a value is an alias, as in an enum
        members = {v: int.__new__(cls, v) for v in sorted(names)}
        for key, value in constants.items():
            setattr(cls, key, members[value])
        cls._members, cls._names = members, names

    def __new__(cls, value: int) -> Self:
        try:
            return cls._members[value]  # type: ignore[return-value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

    @property
    def name(self) -> str:
        return self._names[int(self)]

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {int(self)}>"

    __str__ = int.__repr__  # as IntEnum's: the number

    def __reduce__(self) -> tuple[type[AbiConstant], tuple[int]]:
        return type(self), (int(self),)


if TYPE_CHECKING:  # the checker sees the enums these constants stand for
    import enum

    AbiEnum = enum.IntEnum
else:
    AbiEnum = AbiConstant


class Status(AbiEnum):
    """enum SimplerStatus."""

    OK = 0
    BAD_ARGS = 1
    BAD_KERNEL = 2
    BAD_GRAPH = 3
    KERNEL_FAILED = 4
    NO_MEMORY = 5
    ABORTED = 6


class KernelId(AbiEnum):
    """enum SimplerKernelId: the index into the AICore kernel table."""

    VEC_ADD = 0
    VEC_MUL = 1
    VEC_ADDS = 2
    MATMUL = 3


KERNEL_COUNT = 4


class CoreType(AbiEnum):
    AIV = 0
    AIC = 1


class KernelArgs(ctypes.Structure):
    """SimplerKernelArgs (48 B)."""

    _fields_ = (
        ("in0", ctypes.c_uint64),
        ("in1", ctypes.c_uint64),
        ("out", ctypes.c_uint64),
        ("n", ctypes.c_uint64),
        ("m", ctypes.c_uint32),
        ("k", ctypes.c_uint32),
        ("scalar", ctypes.c_float),
        ("reserved", ctypes.c_uint32),
    )


KernelFn = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.POINTER(KernelArgs), ctypes.c_uint32, ctypes.c_uint32
)


class KernelEntry(ctypes.Structure):
    """SimplerKernelEntry (24 B): one row of `simpler_aicore_kernels[]`."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("fn", ctypes.c_void_p),
        ("kernel_id", ctypes.c_uint32),
        ("core_type", ctypes.c_uint32),
    )


class Task(ctypes.Structure):
    """SimplerTask (64 B)."""

    _fields_ = (
        ("kernel_id", ctypes.c_uint32),
        ("dep_begin", ctypes.c_uint32),
        ("dep_count", ctypes.c_uint32),
        ("block_dim", ctypes.c_uint32),
        ("args", KernelArgs),
    )


class CpuLaunch(ctypes.Structure):
    """SimplerCpuLaunch (16 B): what each thread of a CPU-kernel launch is told."""

    _fields_ = (
        ("block_idx", ctypes.c_uint32),
        ("block_dim", ctypes.c_uint32),
        ("abort", ctypes.c_uint64),
    )


#: SimplerCpuKernelFn: every AICPU kernel's entry point (args copy, launch block).
CpuKernelFn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(CpuLaunch))


class ExecArgs(ctypes.Structure):
    """SimplerExecArgs (80 B): the by-value argument block of simpler_aicpu_exec."""

    _fields_ = (
        ("magic", ctypes.c_uint64),
        ("abi_version", ctypes.c_uint32),
        ("num_tasks", ctypes.c_uint32),
        ("tasks", ctypes.c_uint64),
        ("deps", ctypes.c_uint64),
        ("kernels", ctypes.c_uint64),
        ("num_kernels", ctypes.c_uint32),
        ("active_threads", ctypes.c_uint32),
        ("order", ctypes.c_uint64),
        ("state", ctypes.c_uint64),
        ("epoch", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("launch_scratch", ctypes.c_uint64),
    )


class ExecState(ctypes.Structure):
    """SimplerExecState (40 B): what an exec reports, and the AICore handshake, in device memory."""

    _fields_ = (
        ("status", ctypes.c_uint32),
        ("failed_task", ctypes.c_uint32),
        ("aicore_launches", ctypes.c_uint64),
        ("num_edges", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("epoch", ctypes.c_uint32),
        ("aicore_ready", ctypes.c_uint32),
        ("aicpu_done", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    )


class AicoreMainArgs(ctypes.Structure):
    """SimplerAicoreMainArgs (16 B): the by-value block of simpler_aicore_main."""

    _fields_ = (
        ("state", ctypes.c_uint64),
        ("epoch", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    )


class InitArgs(ctypes.Structure):
    """SimplerInitArgs (48 B): the device block simpler_aicpu_init fills (its argument is
    one uint64, this block's device address)."""

    _fields_ = (
        ("abi_version", ctypes.c_uint32),
        ("device_id", ctypes.c_uint32),
        ("aiv_cores", ctypes.c_uint32),
        ("aic_cores", ctypes.c_uint32),
        ("runtime_name", ctypes.c_char * 32),
    )


class DeviceArgs(ctypes.Structure):
    """simpler::DeviceArgs (160 B): what the extend-kernels loader hands the dispatcher."""

    _fields_ = (
        ("reserved_head", ctypes.c_uint64 * 11),
        ("inner_so_fp", ctypes.c_uint64),
        ("aicpu_so_bin", ctypes.c_uint64),
        ("aicpu_so_len", ctypes.c_uint64),
        ("device_id", ctypes.c_uint64),
        ("inner_so_bin", ctypes.c_uint64),
        ("inner_so_len", ctypes.c_uint64),
        ("preinstall_dir", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("probe_answer", ctypes.c_uint64),
    )


class LoaderKernelArgs(ctypes.Structure):
    """simpler::KernelArgs (64 B): the loader's launch arguments; device_args at 40."""

    _fields_ = (
        ("reserved_head", ctypes.c_uint64 * 5),
        ("device_args", ctypes.c_uint64),
        ("reserved_tail", ctypes.c_uint64 * 2),
    )


def _check(struct: type[ctypes.Structure], size: int, **offsets: int) -> None:
    if ctypes.sizeof(struct) != size:
        raise ImportError(f"{struct.__name__} is {ctypes.sizeof(struct)} bytes, ABI says {size}")
    for name, offset in offsets.items():
        actual = getattr(struct, name).offset
        if actual != offset:
            raise ImportError(f"{struct.__name__}.{name} at {actual}, ABI says {offset}")


_check(KernelArgs, 48, scalar=40)
_check(KernelEntry, 24, kernel_id=16, core_type=20)
_check(Task, 64, args=16)
_check(CpuLaunch, 16, abort=8)
_check(ExecArgs, 80, active_threads=44, order=48, state=56, epoch=64, launch_scratch=72)
_check(ExecState, 40, aicore_launches=8, num_edges=16, epoch=24, aicore_ready=28, aicpu_done=32)
_check(AicoreMainArgs, 16, epoch=8)
_check(InitArgs, 48, runtime_name=16)
_check(
    DeviceArgs,
    160,
    aicpu_so_bin=96,
    aicpu_so_len=104,
    device_id=112,
    inner_so_bin=120,
    inner_so_len=128,
    preinstall_dir=136,
    inner_so_fp=88,
    flags=144,
    probe_answer=152,
)
_check(LoaderKernelArgs, 64, device_args=40)

#: The three symbols the extend-kernels loader requires of a dispatcher.
DISPATCHER_ENTRY_POINTS = (
    "StaticTileFwkBackendKernelServer",
    "DynTileFwkBackendKernelServerInit",
    "DynTileFwkBackendKernelServer",
)
#: The two symbols every inner AICPU runtime SO exports.
AICPU_INIT = "simpler_aicpu_init"
AICPU_EXEC = "simpler_aicpu_exec"
#: The AICore binary's resident kernel of a run (rtKernelLaunchWithHandleV2).
AICORE_MAIN = "simpler_aicore_main"
