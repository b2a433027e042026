"""Reading ELF facts with pyelftools: magic, GNU build-id, exported symbols.

The build records build-ids in manifests, the runtime refuses non-ELF inputs,
and the tests check exports from the files themselves instead of trusting
their names -- all through this one module.
"""

from __future__ import annotations

import os
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, SymbolTableSection

ELF_MAGIC = b"\x7fELF"


class NotAnElfError(ValueError):
    """A file that should be an ELF binary is not one."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


def is_elf(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the ELF magic (cheap: reads four bytes)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def _open_elf(fh) -> ELFFile:  # type: ignore[no-untyped-def]
    try:
        return ELFFile(fh)
    except ELFError as exc:
        raise NotAnElfError(fh.name, f"not a valid ELF file ({exc})") from None


def read_build_id(path: str | os.PathLike[str]) -> str | None:
    """The GNU build-id as lowercase hex, or None when the binary has none."""
    with open(path, "rb") as fh:
        elf = _open_elf(fh)
        for section in elf.iter_sections():
            if not isinstance(section, NoteSection):
                continue
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    return None


def defined_dynamic_symbols(path: str | os.PathLike[str]) -> set[str]:
    """Names of global/weak functions and objects the file defines in .dynsym (its exports)."""
    exports: set[str] = set()
    with open(path, "rb") as fh:
        elf = _open_elf(fh)
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
    with open(path, "rb") as fh:
        return _open_elf(fh).has_dwarf_info()
