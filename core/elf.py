"""Reading ELF facts: the header (with `struct`), GNU build-id and exports (pyelftools).

The build records build-ids in manifests, the runtime refuses non-ELF inputs,
and the tests check exports from the files themselves instead of trusting
their names -- all through this one module.
"""

from __future__ import annotations

import os
import struct
import sys
from functools import cache
from pathlib import Path

from simpler_build.errors import SimplerError

TYPE_CHECKING = False  # on the warm and runtime start-up paths: no typing import
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"


class NotAnElfError(SimplerError, ValueError):
    """A file that should be an ELF binary is not one."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


ET_DYN = 3
_EI_CLASS = {1: "32-bit", 2: "64-bit"}
_EI_DATA = {1: "little-endian", 2: "big-endian"}


@cache
def host_elf_ident() -> tuple[int, int, int]:
    """(EI_CLASS, EI_DATA, e_machine) of this interpreter: what the simulated device dlopens."""
    from simpler_build.files import open_regular

    fd = open_regular(os.path.realpath(sys.executable))
    try:
        head = os.pread(fd, 20, 0)  # the identification and e_machine, not the whole binary
    finally:
        os.close(fd)
    cls, data = head[4], head[5]
    (machine,) = struct.unpack("<H" if data == 1 else ">H", head[18:20])
    return cls, data, machine


def shared_object_header() -> bytes:
    """A minimal 64-byte ELF header of a shared object for this host.

    Synthetic binaries in tests and benchmarks start with it so that they
    pass `header_problem`, which is all that publishing and warming read.
    """
    cls, data, machine = host_elf_ident()
    order = "<" if data == 1 else ">"
    ident = ELF_MAGIC + bytes([cls, data, 1]) + bytes(9)
    return ident + struct.pack(order + "HH", ET_DYN, machine) + bytes(44)


def header_problem(head: bytes) -> str | None:
    """Why the first bytes of a file are not a shared object this host can load, or None.

    Reads only the 20-byte ELF identification and e_type/e_machine with
    `struct` (no pyelftools), so publishing and warming stay cheap.
    """
    if not head:
        return "is empty, not an ELF shared object"
    if head[:4] != ELF_MAGIC:
        return f"is not an ELF file (starts with {head[:4]!r})"
    if len(head) < 20:
        return f"is a truncated ELF file ({len(head)} bytes)"
    cls, data, machine = host_elf_ident()
    if head[4] != cls or head[5] != data:
        got = f"{_EI_CLASS.get(head[4], '?')} {_EI_DATA.get(head[5], '?')}"
        want = f"{_EI_CLASS.get(cls, '?')} {_EI_DATA.get(data, '?')}"
        return f"is a {got} ELF, not {want}"
    e_type, e_machine = struct.unpack("<HH" if data == 1 else ">HH", head[16:20])
    if e_type != ET_DYN:
        return f"is an ELF of type {e_type}, not a shared object (ET_DYN)"
    if e_machine != machine:
        return f"is an ELF for machine {e_machine}, not this host's ({machine})"
    return None


def is_elf(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the ELF magic (cheap: reads four bytes)."""
    from simpler_build.files import open_regular

    try:
        fd = open_regular(path)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        return fh.read(4) == ELF_MAGIC


def _open_elf(fh: Any, path: str | os.PathLike[str]) -> ELFFile:
    # pyelftools is imported here, not at module level: header checks on the
    # publish and fetch paths need only `struct`.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        return ELFFile(fh)
    except ELFError as exc:
        raise NotAnElfError(path, f"not a valid ELF file ({exc})") from None


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    """A binary file object of a regular file (never blocks on a FIFO)."""
    from simpler_build.files import open_regular

    return os.fdopen(open_regular(path), "rb")


def read_build_id(path: str | os.PathLike[str]) -> str | None:
    """The GNU build-id as lowercase hex, or None when the binary has none."""
    from elftools.elf.sections import NoteSection

    with _open(path) as fh:
        elf = _open_elf(fh, path)
        for section in elf.iter_sections():
            if not isinstance(section, NoteSection):
                continue
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    return None


def defined_dynamic_symbols(path: str | os.PathLike[str]) -> set[str]:
    """Names of global/weak functions and objects the file defines in .dynsym (its exports)."""
    from elftools.elf.sections import SymbolTableSection

    exports: set[str] = set()
    with _open(path) as fh:
        elf = _open_elf(fh, path)
        dynsym = elf.get_section_by_name(".dynsym")
        if not isinstance(dynsym, SymbolTableSection):
            return exports
        for sym in dynsym.iter_symbols():
            info = sym["st_info"]
            if (
                sym.name
                and sym["st_shndx"] != "SHN_UNDEF"
                and info["bind"] in {"STB_GLOBAL", "STB_WEAK"}
                and info["type"] in {"STT_FUNC", "STT_OBJECT"}
            ):
                exports.add(sym.name)
    return exports


def has_debug_info(path: str | os.PathLike[str]) -> bool:
    """True when the file carries DWARF sections."""
    with _open(path) as fh:
        return _open_elf(fh, path).has_dwarf_info()
