"""RuntimeBinaries: the three files a DeviceRunner needs, validated before any device work.

Built from a `runtime_binaries.json` manifest (or from paths).  A manifest's
binaries are resolved through the cache (`simpler_build.cache.resolve`:
beside the manifest, else the local cache, else a remote, each verified
against the manifest).  It refuses a binary available nowhere, a file that
is not an ELF shared object and a manifest of another arch -- each with a
`BinaryError` / `ManifestError` (both ValueError) naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from simpler_build.cache.fingerprint import fingerprint_file
from simpler_build.files import NotRegularFile, open_regular
from simpler_build.manifest import ROLES, ManifestError, load_manifest

from .sim.profiles import PROFILES

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache
    from simpler_build.remote import RemoteStorage

ELF_MAGIC = b"\x7fELF"


class BinaryError(ValueError):
    """A runtime binary that is missing, not an ELF shared object, or not what the manifest says."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def check_elf(path: Path, role: str) -> None:
    """Raise BinaryError unless `path` is a readable, non-empty ELF shared object.

    Opened through `open_regular`, so a FIFO or device given to `from_paths`
    is refused by name instead of blocking the caller forever.
    """
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            head = f.read(len(ELF_MAGIC))
            if not head:
                raise BinaryError(path, f"{role} is an empty file")
            if head != ELF_MAGIC:
                raise BinaryError(path, f"{role} is not an ELF file (starts with {head!r})")
            f.seek(0)
            elf_type = ELFFile(f).header["e_type"]
    except FileNotFoundError:
        raise BinaryError(path, f"{role} does not exist") from None
    except NotRegularFile as exc:
        raise BinaryError(path, f"{role} {exc.strerror}") from None
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
        cls,
        path: str | os.PathLike[str],
        arch: str | None = None,
        *,
        cache: ArtifactCache | None = None,
        remotes: Sequence[RemoteStorage] | None = None,
    ) -> RuntimeBinaries:
        """Load a `runtime_binaries.json` (or the directory holding one) and resolve its binaries.

        Each binary comes from beside the manifest when it hashes to the
        recorded fingerprint, else from the cache (`cache`, default root),
        else from the remotes (`remotes`, default `SIMPLER_REMOTE_STORAGE`);
        a binary found nowhere raises BinaryError naming the command that
        fills it.  `arch`, when given, must be the manifest's arch: a5
        binaries on an a2a3 runner would otherwise fail far from the cause.
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
        from simpler_build.cache.errors import BinaryUnavailable, CacheError
        from simpler_build.cache.resolve import resolve

        try:
            paths = resolve(manifest, cache, remotes)
        except BinaryUnavailable as exc:
            raise BinaryError(exc.path, exc.problem) from None
        except CacheError as exc:  # an unusable cache root: one line, no traceback
            raise BinaryError(exc.path, f"artifact cache: {exc.problem}") from None
        for role in ROLES:
            check_elf(paths[role], role)
        return cls(
            arch=manifest.arch,
            runtime=manifest.runtime,
            dispatcher=paths["dispatcher"],
            inner_so=paths["inner_so"],
            aicore=paths["aicore"],
            fingerprints={role: manifest.binaries[role].fingerprint for role in ROLES},
            manifest=manifest.path,
        )
