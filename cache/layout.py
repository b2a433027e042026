"""On-disk paths of the artifact store (documented in FORMAT.md).

Everything the store owns lives under ``<root>/v1``; siblings such as
``<root>/scons`` (SCons CacheDir) and ``<root>/sim`` belong to other layers
and are never touched.  Only this module knows the names, so a format change
is a new ``FORMAT_VERSION`` directory rather than an in-place migration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from simpler_build.cache.fingerprint import inner_so_name

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

_OBJECT_RE = re.compile(r"^simpler_inner_([0-9a-f]{16})\.(so|json)$")
# .tmp-<fp>-<pid>-<random>.<so|json>; the fingerprint lets gc probe the writer's lock.
_TEMP_RE = re.compile(r"^\.tmp-([0-9a-f]{16})-\d+-[0-9a-z_]+\.(so|json)$")


@dataclass(frozen=True)
class Layout:
    """Paths of one cache root (computed once; the root never changes)."""

    root: Path

    @cached_property
    def tag(self) -> Path:
        return self.root / CACHEDIR_TAG_NAME

    @cached_property
    def base(self) -> Path:
        return self.root / f"v{FORMAT_VERSION}"

    @cached_property
    def objects(self) -> Path:
        return self.base / "objects"

    @cached_property
    def locks(self) -> Path:
        return self.base / "locks"

    @cached_property
    def quarantine(self) -> Path:
        return self.base / "quarantine"

    @cached_property
    def stats_file(self) -> Path:
        return self.base / STATS_NAME

    @cached_property
    def gc_lock(self) -> Path:
        return self.locks / GC_LOCK_NAME

    @cached_property
    def _objects_str(self) -> str:
        return os.fspath(self.objects)

    @cached_property
    def _locks_str(self) -> str:
        return os.fspath(self.locks)

    # Built from strings: these run on every get, and pathlib joins cost microseconds.
    def shard(self, fingerprint: str) -> Path:
        return Path(f"{self._objects_str}/{fingerprint[:2]}")

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
    m = _OBJECT_RE.match(name)
    return (m.group(1), m.group(2)) if m else None


def parse_temp_name(name: str) -> str | None:
    """Fingerprint encoded in a temp file name, or None for an unrecognised temp file."""
    m = _TEMP_RE.match(name)
    return m.group(1) if m else None


__all__ = [
    "CACHEDIR_TAG",
    "CACHEDIR_TAG_NAME",
    "FORMAT_VERSION",
    "TEMP_PREFIX",
    "Layout",
    "parse_entry_name",
    "parse_temp_name",
]
