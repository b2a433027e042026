"""The ctypes mirrors in `runtime/abi.py` agree with the C headers, as the compiler sees them.

A small C++ program including `simpler_abi.h` and `device_args.h` prints
every size, offset and constant the mirrors spell out, so a header change
that is not mirrored (or a mirror edit the header does not have) fails here
-- numbers written into a test would only compare Python with itself.
"""

from __future__ import annotations

import ctypes
import enum
import subprocess

import pytest

from simpler_build.runtime import abi
from tests.conftest import REPO

#: ctypes mirror -> the C type it mirrors.
STRUCTS: dict[type[ctypes.Structure], str] = {
    abi.KernelArgs: "SimplerKernelArgs",
    abi.KernelEntry: "SimplerKernelEntry",
    abi.Task: "SimplerTask",
    abi.ExecArgs: "SimplerExecArgs",
    abi.ExecState: "SimplerExecState",
    abi.AicoreMainArgs: "SimplerAicoreMainArgs",
    abi.CpuLaunch: "SimplerCpuLaunch",
    abi.InitArgs: "SimplerInitArgs",
    abi.DeviceArgs: "simpler::DeviceArgs",
    abi.LoaderKernelArgs: "simpler::KernelArgs",
}


def _enum_constants() -> dict[str, int]:
    """C enumerator name -> the value the mirror gives it."""
    prefixes: dict[type[enum.IntEnum], str] = {
        abi.Status: "SIMPLER_E_",
        abi.KernelId: "SIMPLER_K_",
        abi.CoreType: "SIMPLER_CORE_",
    }
    out = {
        ("SIMPLER_OK" if member is abi.Status.OK else prefix + member.name): int(member)
        for cls, prefix in prefixes.items()
        for member in cls
    }
    out["SIMPLER_K_COUNT"] = abi.KERNEL_COUNT
    out["SIMPLER_ABI_VERSION"] = abi.ABI_VERSION
    out["SIMPLER_GRAPH_MAGIC"] = abi.GRAPH_MAGIC
    return out


def _mirror_layout() -> dict[str, int]:
    """What Python believes: sizeof, and offset/size of every field, keyed like the program."""
    out: dict[str, int] = {}
    for struct, ctype in STRUCTS.items():
        out[f"sizeof {ctype}"] = ctypes.sizeof(struct)
        for name, *_ in struct._fields_:
            field = getattr(struct, name)
            out[f"offsetof {ctype}.{name}"] = field.offset
            out[f"sizeof {ctype}.{name}"] = field.size
    return out


def _program() -> str:
    lines = [
        "#include <cstddef>",
        "#include <cstdio>",
        '#include "simpler_abi.h"',
        '#include "device_args.h"',
        "int main() {",
    ]

    def emit(key: str, expr: str) -> None:
        lines.append(f'    std::printf("%s=%llu\\n", "{key}", (unsigned long long)({expr}));')

    for struct, ctype in STRUCTS.items():
        emit(f"sizeof {ctype}", f"sizeof({ctype})")
        for name, *_ in struct._fields_:
            emit(f"offsetof {ctype}.{name}", f"offsetof({ctype}, {name})")
            emit(f"sizeof {ctype}.{name}", f"sizeof((({ctype} *)0)->{name})")
    for name in _enum_constants():
        emit(name, name)
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def header_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Sizes, offsets and constants as the compiler lays them out from the headers."""
    work = tmp_path_factory.mktemp("abi")
    src, exe = work / "layout.cpp", work / "layout"
    src.write_text(_program())
    includes = [f"-I{REPO / 'runtime' / 'include'}", f"-I{REPO / 'dispatcher'}"]
    build = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", *includes, "-o", str(exe), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"a mirrored field is not in the header:\n{build.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    return {
        key: int(value) for key, value in (line.split("=", 1) for line in run.stdout.splitlines())
    }


def test_every_struct_size_and_field_offset_matches_the_header(
    header_layout: dict[str, int],
) -> None:
    mirror = _mirror_layout()
    wrong = {k: (v, header_layout[k]) for k, v in mirror.items() if header_layout[k] != v}
    assert wrong == {}, "key: (ctypes, C)"


def test_every_field_of_the_header_is_mirrored(header_layout: dict[str, int]) -> None:
    """Field sizes add up to sizeof: no C field lives in padding the mirror does not name."""
    mirror = _mirror_layout()
    for ctype in STRUCTS.values():
        fields = sum(v for k, v in mirror.items() if k.startswith(f"sizeof {ctype}."))
        assert fields == header_layout[f"sizeof {ctype}"], ctype


def test_constants_and_enums_match_the_header(header_layout: dict[str, int]) -> None:
    constants = _enum_constants()
    wrong = {k: (v, header_layout[k]) for k, v in constants.items() if header_layout[k] != v}
    assert wrong == {}, "name: (ctypes, C)"
