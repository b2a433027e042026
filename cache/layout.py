"""On-disk paths of the artifact store (documented in FORMAT.md).

Everything the store owns lives under ``<root>/v1``; siblings such as
``<root>/scons`` (SCons CacheDir) and ``<root>/sim`` belong to other layers
and are never touched.  Only this module knows the names, so a format change
is a new ``FORMAT_VERSION`` directory rather than an in-place migration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from simpler_build.cache.fingerprint import inner_so_name, is_fingerprint

FORMAT_VERSION = 1
CACHEDIR_TAG_NAME = "CACHEDIR.TAG"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by simpler-build.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
#: Every temp file starts with this, so gc can find the leftovers of a crash.
TEMP_PREFIX = ".tmp-"
OBJECT_SUFFIX = ".so"
META_SUFFIX = ".json"
LOCK_SUFFIX = ".lock"
STATS_NAME = "stats.json"
GC_LOCK_NAME = "gc.lock"

_OBJECT_PATTERN = r"^simpler_inner_([0-9a-f]{16})\.(so|json)\Z"
# .tmp-<fp>-<pid>-<random>.<so|json>; the fingerprint lets gc probe the writer's lock.
_TEMP_PATTERN = r"^\.tmp-([0-9a-f]{16})-[0-9]+-[0-9a-z_]+\.(so|json)\Z"
#: Compiled on first use: a compile costs `cache warm`'s start-up about 0.1 ms, and warm
#: never parses a name.
_compiled: dict[str, re.Pattern[str]] = {}


def _match(pattern: str, name: str) -> re.Match[str] | None:
    compiled = _compiled.get(pattern)
    if compiled is None:
        compiled = _compiled[pattern] = re.compile(pattern)
    return compiled.match(name)


class Layout:
    """Paths of one cache root (computed once; the root never changes).

    A plain class with `__slots__`, not a dataclass with cached properties:
    `dataclasses` imports `inspect`, several milliseconds of every `cache warm`.
    """

    __slots__ = (
        "_locks_str",
        "_objects_str",
        "base",
        "gc_lock",
        "locks",
        "objects",
        "quarantine",
        "root",
        "stats_file",
        "tag",
    )
    root: Path
    tag: Path
    base: Path
    objects: Path
    locks: Path
    quarantine: Path
    stats_file: Path
    gc_lock: Path
    # The objects and locks folders as strings, for the per-get joins below.
    _objects_str: str
    _locks_str: str

    def __init__(self, root: Path) -> None:
        base = root / f"v{FORMAT_VERSION}"
        objects, locks = base / "objects", base / "locks"
        values = {
            "root": root,
            "tag": root / CACHEDIR_TAG_NAME,
            "base": base,
            "objects": objects,
            "locks": locks,
            "quarantine": base / "quarantine",
            "stats_file": base / STATS_NAME,
            "gc_lock": locks / GC_LOCK_NAME,
            "_objects_str": os.fspath(objects),
            "_locks_str": os.fspath(locks),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign {name!r}: Layout is frozen")

    def __eq__(self, other: object) -> bool:
        return self.root == other.root if isinstance(other, Layout) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Layout(root={self.root!r})"

    def __reduce__(self) -> tuple[type[Layout], tuple[Path]]:
        return (Layout, (self.root,))  # a spawned child computes the paths again

    # Built from strings: these run on every get, and pathlib joins cost microseconds.
    def shard(self, fingerprint: str) -> Path:
        return Path(f"{self._objects_str}/{fingerprint[:2]}")

    def shard_str(self, fingerprint: str) -> str:
        return f"{self._objects_str}/{fingerprint[:2]}"

    def object_str(self, fingerprint: str) -> str:
        return f"{self._objects_str}/{fingerprint[:2]}/{inner_so_name(fingerprint)}"

    def meta_str(self, fingerprint: str) -> str:
        return f"{self._objects_str}/{fingerprint[:2]}/simpler_inner_{fingerprint}{META_SUFFIX}"

    def object_path(self, fingerprint: str) -> Path:
        return Path(self.object_str(fingerprint))

    def meta_path(self, fingerprint: str) -> Path:
        return Path(self.meta_str(fingerprint))

    def lock_path(self, fingerprint: str) -> Path:
        return Path(f"{self._locks_str}/{fingerprint[:2]}/{fingerprint}{LOCK_SUFFIX}")

    def temp_name(self, fingerprint: str, suffix: str) -> str:
        """Name of a fresh temp file for `fingerprint` (same directory as the final name)."""
        return f"{TEMP_PREFIX}{fingerprint}-{os.getpid()}-{os.urandom(6).hex()}{suffix}"


def parse_entry_name(name: str) -> tuple[str, str] | None:
    """(fingerprint, "so"|"json") for a published object or metadata file name."""
    m = _match(_OBJECT_PATTERN, name)
    return (m.group(1), m.group(2)) if m else None


def parse_lock_name(name: str) -> str | None:
    """Fingerprint of an entry lock file's name (`<fp>.lock`), or None."""
    fp = name.removesuffix(LOCK_SUFFIX)
    return fp if name.endswith(LOCK_SUFFIX) and is_fingerprint(fp) else None


def parse_temp_name(name: str) -> str | None:
    """Fingerprint encoded in a temp file name, or None for an unrecognised temp file."""
    m = _match(_TEMP_PATTERN, name)
    return m.group(1) if m else None


__all__ = [
    "CACHEDIR_TAG",
    "CACHEDIR_TAG_NAME",
    "FORMAT_VERSION",
    "TEMP_PREFIX",
    "Layout",
    "parse_entry_name",
    "parse_lock_name",
    "parse_temp_name",
]
