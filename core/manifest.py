"""`runtime_binaries.json`: the one schema shared by the build, the cache and the runtime.

SCons writes it (site_scons/site_tools/simpler_manifest.py); `cache warm` and
`RuntimeBinaries.from_manifest` read it through `load_manifest`, so a schema
change happens in exactly one place.  Paths inside are relative to the
manifest's own directory so that a build tree can be moved or copied whole.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from simpler_build.cache._record import Record
from simpler_build.cache.fingerprint import is_fingerprint
from simpler_build.errors import SimplerError
from simpler_build.files import FileTooLarge, NotRegularFile, read_regular_stat

# `cache warm` reads manifests: no typing/dataclasses at start-up, and JSON's C scanner
# only when a manifest is parsed (an unchanged one is answered by the stat index, cache/index.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

MANIFEST_NAME = "runtime_binaries.json"
#: What the writer emits.  Schema 2 added `sha256` per binary (the remote
#: tier checks pulled bytes against it); schema 1 manifests stay readable.
SCHEMA_VERSION = 2
SUPPORTED_SCHEMAS = (1, 2)
#: The binaries every manifest names, by role.
ROLES = ("dispatcher", "inner_so", "aicore")


class ManifestError(SimplerError, ValueError):
    """A manifest that is missing, does not parse or does not match the schema."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BinaryRecord(Record):
    """One binary of a manifest; `path` is absolute, resolved against the manifest."""

    _fields = ("role", "path", "size", "fingerprint", "build_id", "sha256")
    __slots__ = _fields
    role: str
    path: Path
    size: int
    fingerprint: str
    build_id: str | None
    #: Hex SHA-256 of the whole file; None only in schema-1 manifests.
    sha256: str | None

    def __init__(
        self,
        role: str,
        path: Path,
        size: int,
        fingerprint: str,
        build_id: str | None,
        sha256: str | None = None,
    ) -> None:
        self._assign(locals())  # written out: see Record._assign

    def to_json(self, manifest_dir: Path) -> dict[str, Any]:
        out = {
            "path": os.path.relpath(self.path, manifest_dir),
            "size": self.size,
            "fingerprint": self.fingerprint,
            "build_id": self.build_id,
        }
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


class Manifest(Record):
    """One parsed manifest: an (arch, runtime, mode) and its three binaries by role."""

    _fields = ("path", "arch", "runtime", "mode", "binaries", "toolchain", "schema_version")
    __slots__ = _fields
    path: Path
    arch: str
    runtime: str
    mode: str
    binaries: dict[str, BinaryRecord]
    toolchain: dict[str, Any]
    #: The version read (for a loaded manifest); what is written follows the records.
    schema_version: int

    def __init__(
        self,
        path: Path,
        arch: str,
        runtime: str,
        mode: str,
        binaries: dict[str, BinaryRecord],
        toolchain: dict[str, Any] | None = None,
        schema_version: int = SCHEMA_VERSION,
    ) -> None:
        if toolchain is None:  # a fresh empty one each time
            toolchain = {}
        self._assign(locals())  # written out: see Record._assign

    @property
    def dispatcher(self) -> BinaryRecord:
        return self.binaries["dispatcher"]

    @property
    def inner_so(self) -> BinaryRecord:
        return self.binaries["inner_so"]

    @property
    def aicore(self) -> BinaryRecord:
        return self.binaries["aicore"]

    def to_json(self) -> dict[str, Any]:
        here = self.path.parent
        # Schema 2 promises a SHA-256 for every binary; without them it is schema 1.
        complete = all(self.binaries[role].sha256 is not None for role in ROLES)
        return {
            "schema_version": SCHEMA_VERSION if complete else 1,
            "arch": self.arch,
            "runtime": self.runtime,
            "mode": self.mode,
            "binaries": {role: self.binaries[role].to_json(here) for role in ROLES},
            "toolchain": self.toolchain,
        }


def is_sha256(text: object) -> bool:
    """Whether `text` is a SHA-256 written as 64 lowercase hex digits."""
    return isinstance(text, str) and len(text) == 64 and all(c in _HEX for c in text)


_HEX = frozenset("0123456789abcdef")


def dump_manifest(manifest: Manifest) -> str:
    """Stable text: sorted keys, so an unchanged build writes identical bytes."""
    import json

    return json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"


def _require(path: Path, obj: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    if key not in obj:
        raise ManifestError(path, f"missing key {where}{key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(
            path, f"key {where}{key!r} must be {kind.__name__}, not {type(value).__name__}"
        )
    return value


#: A manifest is a few KB; anything far larger is not one (and is not read into memory).
MAX_MANIFEST_BYTES = 1 << 20
#: No binary of this project is near this; a larger `size` is a corrupt manifest.
MAX_BINARY_BYTES = 1 << 40
#: A name's characters (arch, runtime, mode): up to 64 of them.
_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-"
#: A GNU build-id is hex; tools and tests may record other short labels: up to 128
#: printable ASCII characters other than space.
_BUILD_ID_CHARS = "".join(map(chr, range(0x21, 0x7F)))


def _all_of(chars: str, text: str, most: int) -> bool:
    """1 to `most` characters, each in `chars`.

    String operations, not a pattern: `str.lstrip` runs in C, and a compiled
    pattern cost every first run about 0.1 ms (a regex's `$` would also let a
    trailing newline through).
    """
    return 0 < len(text) <= most and not text.lstrip(chars)


def _read(p: Path) -> tuple[Any, os.stat_result, os.stat_result]:
    """The parsed JSON of a manifest file and its stats before and after the read; every
    failure is one ManifestError naming it."""
    from simpler_build import jsonio

    try:
        raw, before, after = read_regular_stat(p, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(p, "no such manifest") from None
    except (NotRegularFile, FileTooLarge) as exc:
        raise ManifestError(p, f"manifest {exc.strerror}") from None
    except OSError as exc:
        raise ManifestError(p, f"cannot read manifest: {exc.strerror or exc}") from None
    except ValueError:  # a NUL byte in the path itself
        raise ManifestError(p, "path contains a NUL byte") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(p, f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        return jsonio.loads(text), before, after
    except RecursionError:
        raise ManifestError(p, "not valid JSON: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, or e.g. an integer of 4300+ digits
        lineno = getattr(exc, "lineno", None)
        if lineno is not None:
            msg = getattr(exc, "msg", exc)
            raise ManifestError(p, f"not valid JSON: {msg} at line {lineno}") from None
        raise ManifestError(p, f"not valid JSON: {exc}") from None


def _name(p: Path, data: dict[str, Any], key: str, default: str | None = None) -> str:
    """arch / runtime / mode: short names, since they end up in commands and paths."""
    if default is not None and key not in data:
        return default
    value: str = _require(p, data, key, str)
    if not _all_of(_NAME_CHARS, value, 64):
        raise ManifestError(p, f"{key} {value[:80]!r} is not a name (letters, digits, _.+-)")
    return value


def _symlink_below(prefix: str, full: str, seen: dict[str, os.stat_result]) -> bool:
    """Whether a component of `full` after `prefix` (a directory, ending in a separator)
    may be a symlink (`_any_symlink` of each component's path, in order)."""
    paths = []
    path = prefix[:-1]
    for part in full[len(prefix) :].split(os.sep):
        path = f"{path}{os.sep}{part}"
        paths.append(path)
    return _any_symlink(paths, seen)


def _any_symlink(paths: Iterable[str], seen: dict[str, os.stat_result]) -> bool:
    """Whether one of `paths` (the components of a path, outermost first) may be a
    symlink: lstat each (once per manifest, or per `cache warm`: `seen` holds the
    lstats of the directories and files already looked at); an error other than
    "does not exist" counts as maybe."""
    for path in paths:
        st = seen.get(path)
        if st is None:
            try:
                st = seen[path] = os.lstat(path)
            except FileNotFoundError:
                return False  # nothing below a missing component exists to escape through
            except (OSError, ValueError):
                return True
        if stat.S_ISLNK(st.st_mode):
            return True
    return False


def binary_path_str(
    p: Path | str, here: str, rel: str, where: str, seen: dict[str, os.stat_result]
) -> str:
    """Resolve a binary's path, which must stay inside the tree the manifest lives in.

    The tree is the directory above the manifest's (`lib/<arch>/`): it holds
    this runtime's directory and the arch's shared dispatcher.  An absolute
    path, one that climbs out with `..`, or one that leaves through a
    symlink would get an arbitrary file published into the shared cache.
    Strings, not pathlib, and `realpath` only when a component below the
    tree is a symlink: `cache warm` reads a thousand manifests in one go.
    After it, `seen` holds the lstat of the binary itself (unless the path
    is the tree or a component is missing).  `here` is the manifest's
    directory, absolute and normalized (`os.path.abspath`).
    """
    sep = os.sep
    plain = rel and sep not in rel and rel != "." and rel != ".." and "\0" not in rel
    if plain and (os.altsep is None or os.altsep not in rel) and here.rpartition(sep)[0]:
        # A name in the manifest's own directory (the usual inner SO and AICore ELF):
        # here/rel, inside the tree by construction; only a symlink can leave it, and
        # the components below the tree are the manifest's directory and the binary.
        full = f"{here}{sep}{rel}"
        if not _any_symlink((here, full), seen):
            return full
    if not rel or "\0" in rel:
        raise ManifestError(p, f"{where}path must be a non-empty path without NUL bytes")
    if os.path.isabs(rel):
        raise ManifestError(p, f"{where}path {rel[:200]!r} is absolute; it must be relative")
    tree = os.path.dirname(here)
    full = os.path.normpath(os.path.join(here, rel))
    if full == tree:
        return full
    prefix = tree.rstrip(os.sep) + os.sep
    if not full.startswith(prefix):
        raise ManifestError(p, f"{where}path {rel[:200]!r} leads outside {tree}")
    if _symlink_below(prefix, full, seen):
        try:
            real = os.path.realpath(full)
            real_tree = os.path.realpath(tree)
        except (OSError, ValueError):
            raise ManifestError(p, f"{where}path {rel[:200]!r} cannot be resolved") from None
        if real != real_tree and not real.startswith(real_tree.rstrip(os.sep) + os.sep):
            raise ManifestError(p, f"{where}path {rel[:200]!r} leaves {tree} through a symlink")
    return full


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Parse and check a manifest (the files it names are checked by their readers).

    A directory is taken to mean the `runtime_binaries.json` inside it.  Any
    problem, however malformed the input, is one ManifestError naming the file.
    """
    return load_manifest_stat(path)[0]


def load_manifest_stat(
    path: str | os.PathLike[str],
) -> tuple[Manifest, dict[str, str], os.stat_result, os.stat_result]:
    """`load_manifest`, with each role's path as the manifest writes it (relative) and
    the file's stat before and after it was read: what the stat index (cache/index.py)
    keeps of a manifest so that `cache warm` need not parse it again."""
    p = Path(path)
    try:
        if p.is_dir():
            p = p / MANIFEST_NAME
    except (OSError, ValueError):
        pass  # _read reports it against the path as given
    data, before, after = _read(p)
    if not isinstance(data, dict):
        raise ManifestError(p, "top level must be a JSON object")
    version = _require(p, data, "schema_version", int)
    if version not in SUPPORTED_SCHEMAS:
        known = ", ".join(map(str, SUPPORTED_SCHEMAS))
        raise ManifestError(
            p, f"schema_version {version} is not supported (this reader knows {known})"
        )
    arch = _name(p, data, "arch")
    runtime = _name(p, data, "runtime")
    mode = _name(p, data, "mode", default="release")
    raw_bins = _require(p, data, "binaries", dict)
    here = os.path.abspath(p.parent)
    seen: dict[str, os.stat_result] = {}  # lstats shared by the binaries of this manifest
    binaries: dict[str, BinaryRecord] = {}
    rels: dict[str, str] = {}
    for role in ROLES:
        entry = _require(p, raw_bins, role, dict, "binaries.")
        where = f"binaries.{role}."
        rel = _require(p, entry, "path", str, where)
        fp = _require(p, entry, "fingerprint", str, where)
        if not is_fingerprint(fp):
            raise ManifestError(p, f"{where}fingerprint {fp[:80]!r} is not 16 lowercase hex digits")
        build_id = entry.get("build_id")
        if build_id is not None and not (
            isinstance(build_id, str) and _all_of(_BUILD_ID_CHARS, build_id, 128)
        ):
            raise ManifestError(p, f"{where}build_id must be a short printable string or null")
        sha256 = None
        if version >= 2:
            sha256 = _require(p, entry, "sha256", str, where)
            if not is_sha256(sha256):
                raise ManifestError(
                    p, f"{where}sha256 {sha256[:80]!r} is not 64 lowercase hex digits"
                )
        size = _require(p, entry, "size", int, where)
        if not 0 <= size <= MAX_BINARY_BYTES:
            raise ManifestError(p, f"{where}size {str(size)[:40]} is out of range")
        rels[role] = rel
        binaries[role] = BinaryRecord(
            role=role,
            path=Path(binary_path_str(p, here, rel, where, seen)),
            size=size,
            fingerprint=fp,
            build_id=build_id,
            sha256=sha256,
        )
    toolchain = data.get("toolchain", {})
    manifest = Manifest(
        path=p.absolute(),
        arch=arch,
        runtime=runtime,
        mode=mode,
        binaries=binaries,
        toolchain=toolchain if isinstance(toolchain, dict) else {},
        schema_version=version,
    )
    return manifest, rels, before, after


def find_manifests(root: str | os.PathLike[str]) -> list[Path]:
    """Every manifest under a build tree (or the one file given), sorted.

    Walks as `os.walk` does (symlinked directories listed but not entered, as
    `Path.rglob` does, and unreadable directories skipped) at a third of rglob's
    cost for a thousand runtimes; `find_manifest_strs` is the same without a
    Path per manifest.
    """
    p = Path(root)
    if p.is_file():
        return [p]
    return [Path(found) for found in find_manifest_strs(p)]


def find_manifest_strs(
    root: str | os.PathLike[str],
    visited: list[tuple[str, os.stat_result | None, bool]] | None = None,
) -> list[str]:
    """`find_manifests` of a directory, as strings joined to `root` as given, in the
    order sorted Paths have (component by component).

    With `visited`, each directory walked is appended to it with its stat, taken
    before it is listed (`stat` of the root, `lstat` below it; None when that
    failed), and whether it holds an entry named `MANIFEST_NAME`: what the stat
    index keeps so that an unchanged tree need not be listed again (cache/index.py).
    """
    found: list[str] = []
    start = os.fspath(root)
    pending = [start]
    while pending:
        top = pending.pop()
        prefix = top if top.endswith(os.sep) else f"{top}{os.sep}"  # os.path.join's rule
        st = None
        if visited is not None:
            try:
                st = os.stat(top) if top is start else os.lstat(top)
            except OSError:
                st = None
        try:
            entries = os.scandir(top)
        except OSError:
            if visited is not None:
                visited.append((top, None, False))
            continue  # os.walk's default: a directory it cannot list is skipped
        has = False
        with entries:
            try:
                for entry in entries:
                    if entry.name == MANIFEST_NAME:
                        found.append(f"{prefix}{MANIFEST_NAME}")  # a file or not: reported
                        has = True
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        try:
                            is_link = entry.is_symlink()
                        except OSError:
                            is_link = False
                        if not is_link:
                            pending.append(f"{prefix}{entry.name}")
            except OSError:
                st = None  # a listing that failed midway ends it (as os.walk's); not kept
        if visited is not None:
            visited.append((top, st, has))
    found.sort(key=_components)
    return found


def _components(path: str) -> list[str]:
    return path.split(os.sep)
