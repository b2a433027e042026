"""RuntimeBinaries' ELF check, read with struct, agrees with pyelftools and names every damage.

The runtime's import path no longer loads pyelftools (issue 9); these tests
keep the struct reader honest against it on the real build, and check that
a truncated, mis-typed or mis-classed file is refused with one line naming
the role, as before.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from simpler_build.runtime.binaries import BinaryError, check_elf, elf_problem


def _built_binaries(runtime_lib: Path) -> list[Path]:
    found = [
        p
        for p in runtime_lib.rglob("*")
        if p.is_file() and p.suffix in {".so", ".elf"} and p.read_bytes()[:4] == b"\x7fELF"
    ]
    assert len(found) >= 6  # dispatchers, inner SOs and AICore ELFs of both arches
    return found


def test_struct_reader_agrees_with_pyelftools_on_the_real_build(runtime_lib: Path) -> None:
    for path in _built_binaries(runtime_lib):
        data = path.read_bytes()
        with path.open("rb") as f:
            elf_type = ELFFile(f).header["e_type"]
        assert elf_type == "ET_DYN"
        assert elf_problem(data[:64], len(data)) is None, path
        check_elf(path, "inner_so")  # raises on a problem


def _damaged(runtime_lib: Path, how: str) -> bytes:
    data = bytearray(next(iter(_built_binaries(runtime_lib))).read_bytes())
    if how == "header-cut":
        return bytes(data[:40])
    if how == "tables-cut":  # a whole header, but the section table is gone
        return bytes(data[: len(data) // 2])
    if how == "exec":
        struct.pack_into("<H", data, 16, 2)
        return bytes(data)
    if how == "relocatable":
        struct.pack_into("<H", data, 16, 1)
        return bytes(data)
    if how == "bad-class":
        data[4] = 7
        return bytes(data)
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("header-cut", "aicore is a truncated or malformed ELF: 40 bytes"),
        ("tables-cut", "aicore is a truncated or malformed ELF: its section headers"),
        ("exec", "aicore is an ELF ET_EXEC, not a shared object"),
        ("relocatable", "aicore is an ELF ET_REL, not a shared object"),
        ("bad-class", "aicore is a truncated or malformed ELF: bad identification"),
    ],
)
def test_damaged_headers_are_named(
    runtime_lib: Path, tmp_path: Path, how: str, problem: str
) -> None:
    path = tmp_path / "aicore_kernels.elf"
    path.write_bytes(_damaged(runtime_lib, how))
    with pytest.raises(BinaryError) as info:
        check_elf(path, "aicore")
    assert info.value.path == path
    assert info.value.problem.startswith(problem), info.value.problem
