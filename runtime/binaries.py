"""RuntimeBinaries: the three files a DeviceRunner needs, validated before any device work.

Built from a `runtime_binaries.json` manifest (or from paths), it refuses a
missing file, a file that is not an ELF shared object, a file whose bytes no
longer match the manifest's fingerprint, and a manifest of another arch --
each with a `BinaryError` / `ManifestError` (both ValueError) naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from simpler_build.cache.fingerprint import fingerprint_file
from simpler_build.manifest import ROLES, ManifestError, load_manifest

from .sim.profiles import PROFILES

ELF_MAGIC = b"\x7fELF"


class BinaryError(ValueError):
    """A runtime binary that is missing, not an ELF shared object, or not what the manifest says."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def check_elf(path: Path, role: str) -> None:
    """Raise BinaryError unless `path` is a readable, non-empty ELF shared object."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(ELF_MAGIC))
            if not head:
                raise BinaryError(path, f"{role} is an empty file")
            if head != ELF_MAGIC:
                raise BinaryError(path, f"{role} is not an ELF file (starts with {head!r})")
            f.seek(0)
            elf_type = ELFFile(f).header["e_type"]
    except FileNotFoundError:
        raise BinaryError(path, f"{role} does not exist") from None
    except IsADirectoryError:
        raise BinaryError(path, f"{role} is a directory, not a file") from None
    except OSError as exc:
        raise BinaryError(path, f"{role} cannot be read: {exc.strerror}") from None
    except ELFError as exc:
        raise BinaryError(path, f"{role} is a truncated or malformed ELF: {exc}") from None
    if elf_type != "ET_DYN":
        raise BinaryError(path, f"{role} is an ELF {elf_type}, not a shared object (ET_DYN)")


@dataclass(frozen=True)
class RuntimeBinaries:
    """Dispatcher, inner AICPU runtime SO and AICore ELF of one (arch, runtime)."""

    arch: str
    runtime: str
    dispatcher: Path
    inner_so: Path
    aicore: Path
    fingerprints: dict[str, str]  # role -> XXH3-64 hex of the file's bytes
    manifest: Path | None = None

    @property
    def inner_fingerprint(self) -> str:
        return self.fingerprints["inner_so"]

    def path(self, role: str) -> Path:
        return {"dispatcher": self.dispatcher, "inner_so": self.inner_so, "aicore": self.aicore}[
            role
        ]

    @classmethod
    def from_paths(
        cls,
        arch: str,
        runtime: str,
        dispatcher: str | os.PathLike[str],
        inner_so: str | os.PathLike[str],
        aicore: str | os.PathLike[str],
    ) -> RuntimeBinaries:
        """Validate three files given directly (no manifest): ELF checks, fingerprints computed."""
        if arch not in PROFILES:
            raise ValueError(f"unknown arch {arch!r} (known: {', '.join(sorted(PROFILES))})")
        paths = {
            "dispatcher": Path(dispatcher).absolute(),
            "inner_so": Path(inner_so).absolute(),
            "aicore": Path(aicore).absolute(),
        }
        for role in ROLES:
            check_elf(paths[role], role)
        fps = {role: fingerprint_file(paths[role]) for role in ROLES}
        return cls(arch, runtime, fingerprints=fps, **paths)

    @classmethod
    def from_manifest(
        cls, path: str | os.PathLike[str], arch: str | None = None
    ) -> RuntimeBinaries:
        """Load and verify a `runtime_binaries.json` (or the directory holding one).

        `arch`, when given, must be the manifest's arch: a5 binaries on an a2a3
        runner would otherwise fail far from the cause.
        """
        manifest = load_manifest(path)
        if manifest.arch not in PROFILES:
            raise ManifestError(
                manifest.path,
                f"unknown arch {manifest.arch!r} (known: {', '.join(sorted(PROFILES))})",
            )
        if arch is not None and manifest.arch != arch:
            raise ManifestError(
                manifest.path, f"manifest is for arch {manifest.arch!r}, not the requested {arch!r}"
            )
        fps: dict[str, str] = {}
        for role in ROLES:
            record = manifest.binaries[role]
            check_elf(record.path, role)
            actual = fingerprint_file(record.path)
            if actual != record.fingerprint:
                raise BinaryError(
                    record.path,
                    f"{role} fingerprint {actual} disagrees with {manifest.path} "
                    f"({record.fingerprint}); rebuild with scons",
                )
            fps[role] = actual
        return cls(
            arch=manifest.arch,
            runtime=manifest.runtime,
            dispatcher=manifest.dispatcher.path,
            inner_so=manifest.inner_so.path,
            aicore=manifest.aicore.path,
            fingerprints=fps,
            manifest=manifest.path,
        )
