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
import struct
from pathlib import Path

from simpler_build.cache._record import Record
from simpler_build.cache.fingerprint import fingerprint_file
from simpler_build.errors import SimplerError
from simpler_build.files import NotRegularFile, open_regular_stat
from simpler_build.manifest import ROLES, ManifestError, load_manifest

from .errors import OptionError
from .sim.profiles import PROFILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from simpler_build.cache.store import ArtifactCache
    from simpler_build.remote import RemoteStorage

ELF_MAGIC = b"\x7fELF"
#: e_type names, as `readelf -h` prints them.
_ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
#: Per EI_CLASS: header size and the struct layout of e_type .. e_shstrndx.
_LAYOUT = {1: (52, "HHIIIIIHHHHHH"), 2: (64, "HHIQQQIHHHHHH")}


class BinaryError(SimplerError, ValueError):
    """A runtime binary that is missing, not an ELF shared object, or not what the manifest says."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def elf_problem(head: bytes, size: int) -> str | None:
    """Why a file of `size` bytes starting with `head` (its first 64 bytes or all of it)
    is not an ELF shared object, or None.

    The header is read with `struct`, not pyelftools (whose import is most
    of a new process's first-run cost): the identification, e_type, and that
    the program and section header tables the header points at lie within
    the file, which is what "truncated or malformed" means here.
    """
    if not head:
        return "is an empty file"
    if head[:4] != ELF_MAGIC:
        return f"is not an ELF file (starts with {head[:4]!r})"
    if len(head) < 6 or head[4] not in _LAYOUT or head[5] not in (1, 2):
        return "is a truncated or malformed ELF: bad identification (class or byte order)"
    header_size, fields = _LAYOUT[head[4]]
    if len(head) < header_size:
        return f"is a truncated or malformed ELF: {len(head)} bytes, shorter than its header"
    order = "<" if head[5] == 1 else ">"
    (e_type, _machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, _shstrndx) = struct.unpack_from(order + fields, head, 16)  # fmt: skip
    for what, off, count, entsize in (
        ("program", phoff, phnum, phentsize),
        ("section", shoff, shnum, shentsize),
    ):
        if count and off + count * entsize > size:
            return f"is a truncated or malformed ELF: its {what} headers end past the file"
    if e_type != 3:
        name = _ET_NAMES.get(e_type, str(e_type))
        return f"is an ELF {name}, not a shared object (ET_DYN)"
    return None


def check_elf(path: Path, role: str) -> None:
    """Raise BinaryError unless `path` is a readable, non-empty ELF shared object.

    Opened through `open_regular_stat`, so a FIFO or device given to `from_paths`
    is refused by name instead of blocking the caller forever.
    """
    try:
        fd, st = open_regular_stat(path)
        try:
            size = st.st_size
            head = os.pread(fd, 64, 0)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise BinaryError(path, f"{role} does not exist") from None
    except NotRegularFile as exc:
        raise BinaryError(path, f"{role} {exc.strerror}") from None
    except OSError as exc:
        raise BinaryError(path, f"{role} cannot be read: {exc.strerror}") from None
    problem = elf_problem(head, size)
    if problem is not None:
        raise BinaryError(path, f"{role} {problem}")


def _check_arch(arch: str) -> None:
    """OptionError for an arch the simulated device has no profile for."""
    if arch not in PROFILES:
        raise OptionError(f"unknown arch {arch!r} (known: {', '.join(sorted(PROFILES))})")


class RuntimeBinaries(Record):
    """Dispatcher, inner AICPU runtime SO and AICore ELF of one (arch, runtime).

    Immutable and equal by value; `replace(**changes)` gives a modified copy.  A
    `Record`, not a dataclass: the runtime's import path loads no dataclass machinery.
    """

    _fields = ("arch", "runtime", "dispatcher", "inner_so", "aicore", "fingerprints", "manifest")
    __slots__ = _fields
    arch: str
    runtime: str
    dispatcher: Path
    inner_so: Path
    aicore: Path
    fingerprints: dict[str, str]  # role -> XXH3-64 hex of the file's bytes
    manifest: Path | None

    def __init__(
        self,
        arch: str,
        runtime: str,
        dispatcher: Path,
        inner_so: Path,
        aicore: Path,
        fingerprints: dict[str, str],
        manifest: Path | None = None,
    ) -> None:
        self._assign(locals())  # written out: see Record._assign

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
        _check_arch(arch)
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
        if arch is not None:
            _check_arch(arch)  # the caller's mistake, before the manifest is blamed for it
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
        from simpler_build.cache.resolve import resolve

        try:
            paths = resolve(manifest, cache, remotes)
        except Exception as exc:  # the cache's errors load only when one is raised
            from simpler_build.cache.errors import BinaryUnavailable, CacheError

            if isinstance(exc, BinaryUnavailable):
                raise BinaryError(exc.path, exc.problem) from None
            if isinstance(exc, CacheError):  # an unusable cache root: one line, no traceback
                raise BinaryError(exc.path, f"artifact cache: {exc.problem}") from None
            raise
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
