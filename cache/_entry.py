"""What the store hands out -- `CacheEntry`, `CacheStats` -- and the metadata file's codec.

Split from store.py: one concern per private module.  The metadata format
(`simpler_inner_<fp>.json`) is in FORMAT.md; this module turns its bytes into
a `CacheEntry` (tolerating any damage: a field of the wrong type reads as
absent) and an entry back into bytes.
"""

from __future__ import annotations

import json

from simpler_build.cache._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from pathlib import Path
    from typing import Any, ClassVar

#: The metadata format version written into every metadata file.
META_FORMAT = 1


class CacheEntry(Record):
    """One cached object and its metadata.

    `added` is True only on the entry returned by the `put` that published
    the object; every other put of the same bytes returns it with False.
    `last_used` is the metadata file's mtime (bumped by `get`), in seconds.
    """

    _fields = (
        "fingerprint",
        "path",
        "size",
        "arch",
        "runtime",
        "build_id",
        "created",
        "last_used",
        "source",
        "added",
        "role",
        "sha256",
    )
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {
        "arch": None,
        "runtime": None,
        "build_id": None,
        "created": 0.0,
        "last_used": 0.0,
        "source": None,
        "added": False,
        "role": None,
        "sha256": None,
    }
    fingerprint: str
    path: Path
    size: int
    arch: str | None
    runtime: str | None
    build_id: str | None
    created: float
    last_used: float
    source: str | None
    added: bool
    role: str | None
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "path": str(self.path),
            "size": self.size,
            "arch": self.arch,
            "runtime": self.runtime,
            "build_id": self.build_id,
            "role": self.role,
            "sha256": self.sha256,
            "created": self.created,
            "last_used": self.last_used,
            "source": self.source,
        }


class CacheStats(Record):
    """Current contents (scanned) plus the process-shared counters."""

    _fields = (
        "root",
        "entries",
        "bytes",
        "hits",
        "misses",
        "added",
        "evictions",
        "corruptions",
        "bytes_added",
        "bytes_evicted",
        "max_bytes",
        "quarantined",
        "remote_hits",
        "remote_misses",
        "remote_errors",
        "remote_rejected",
        "bytes_pulled",
        "bytes_pushed",
        "cleanups",
        "scons_evictions",
        "bytes_scons_evicted",
        "stats_updated_timestamp",
        "stats_zeroed_timestamp",
    )
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {**dict.fromkeys(_fields[3:], 0), "max_bytes": None}
    root: Path
    entries: int
    bytes: int
    hits: int
    misses: int
    added: int
    evictions: int
    corruptions: int
    bytes_added: int
    bytes_evicted: int
    max_bytes: int | None
    quarantined: int
    remote_hits: int
    remote_misses: int
    remote_errors: int
    remote_rejected: int
    bytes_pulled: int
    bytes_pushed: int
    cleanups: int
    scons_evictions: int
    bytes_scons_evicted: int
    stats_updated_timestamp: int
    stats_zeroed_timestamp: int

    def to_json(self) -> dict[str, Any]:
        return {**self.as_dict(), "root": str(self.root)}


def decode_meta(raw: bytes) -> dict[str, Any] | None:
    """The metadata object in `raw`, or None when it is not a JSON object."""
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def entry_from_meta(
    fingerprint: str,
    path: Path,
    size: int,
    meta: dict[str, Any],
    st: os.stat_result | None,
) -> CacheEntry:
    """The entry an object of `size` bytes and its (possibly damaged) metadata describe.

    The LRU clock is the metadata file's mtime (`st`; get bumps it with
    utime); the JSON "last_used" only records when the metadata was written.
    """

    get = meta.get
    text = {k: v for k in _TEXT_FIELDS if isinstance(v := get(k), str)}
    created = _number(get("created"))
    last_used = st.st_mtime if st else _number(get("last_used"))
    return CacheEntry(
        fingerprint,
        path,
        size,
        text.get("arch"),
        text.get("runtime"),
        text.get("build_id"),
        created or last_used,
        last_used,
        text.get("source"),
        False,
        text.get("role"),
        text.get("sha256"),
    )


_TEXT_FIELDS = ("arch", "runtime", "build_id", "source", "role", "sha256")


def _number(value: object) -> float:
    """A metadata time as a float; anything else (a string, an integer too big for a
    float) reads as 0, like a missing one."""
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return 0.0
    return 0.0


def encode_meta(entry: CacheEntry) -> bytes:
    """The metadata file's bytes for `entry` (stable: sorted keys; no path, it is implied)."""
    payload = {"format": META_FORMAT, **entry.to_json()}
    del payload["path"]
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


__all__ = [
    "META_FORMAT",
    "CacheEntry",
    "CacheStats",
    "decode_meta",
    "encode_meta",
    "entry_from_meta",
]
