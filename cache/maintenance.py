"""verify, gc, LRU eviction and clear for ArtifactCache.

Kept apart from store.py because none of it is on a build's or a run's hot
path.  Everything that deletes takes the entry's lock first (non-blocking
where a held lock means "a live writer is busy, leave it"), so maintenance is
safe while other processes put and get.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpler_build.cache import atomic
from simpler_build.cache.errors import CacheError, UnsafePathError
from simpler_build.cache.fingerprint import is_fingerprint
from simpler_build.cache.layout import (
    GC_LOCK_NAME,
    LOCK_SUFFIX,
    TEMP_PREFIX,
    parse_entry_name,
    parse_temp_name,
)

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache, CacheEntry

#: A temp file whose writer still holds the entry lock is removed only after this long.
DEFAULT_GRACE_SECONDS = 3600.0
#: Quarantined objects are kept this long for inspection, then gc removes them.
QUARANTINE_KEEP_SECONDS = 7 * 24 * 3600.0


@dataclass
class CorruptEntry:
    fingerprint: str
    path: Path
    problem: str
    #: Where repair moved the object (None when not repaired or only metadata was rewritten).
    quarantined_to: Path | None = None
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "path": str(self.path),
            "problem": self.problem,
            "quarantined_to": str(self.quarantined_to) if self.quarantined_to else None,
            "repaired": self.repaired,
        }


@dataclass
class VerifyReport:
    checked: int = 0
    ok: list[str] = field(default_factory=list)
    corrupt: list[CorruptEntry] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "corrupt": [c.to_json() for c in self.corrupt],
            "missing": self.missing,
        }


@dataclass
class GcReport:
    temp_removed: list[Path] = field(default_factory=list)
    orphan_meta_removed: list[Path] = field(default_factory=list)
    orphan_locks_removed: int = 0
    quarantine_removed: int = 0
    evicted: list[CacheEntry] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    max_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "temp_removed": [str(p) for p in self.temp_removed],
            "orphan_meta_removed": [str(p) for p in self.orphan_meta_removed],
            "orphan_locks_removed": self.orphan_locks_removed,
            "quarantine_removed": self.quarantine_removed,
            "evicted": [e.fingerprint for e in self.evicted],
            "bytes_evicted": sum(e.size for e in self.evicted),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "max_bytes": self.max_bytes,
        }


# -- verify ---------------------------------------------------------------------------


def _all_object_names(cache: ArtifactCache) -> list[str]:
    return sorted({fp for fp, _ in cache._scan(kinds=("so",))})


def _check_object(cache: ArtifactCache, fp: str) -> tuple[str | None, os.stat_result | None]:
    """(problem or None, stat of what was read); problem 'missing' when absent."""
    path = cache.layout.object_path(fp)
    try:
        fd = atomic.open_nofollow(path)
    except UnsafePathError as exc:
        return exc.problem, None
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}", None
    try:
        st = os.fstat(fd)
        actual = atomic.hash_fd(fd)
    finally:
        os.close(fd)
    if actual != fp:
        return f"content hashes to {actual}, not {fp}", st
    return None, st


def _check_meta(cache: ArtifactCache, fp: str, size: int) -> str | None:
    meta_st = cache._read_meta(fp)
    if meta_st is None:
        return "metadata missing or unreadable"
    meta = meta_st[0]
    if meta.get("fingerprint") != fp:
        return f"metadata names fingerprint {meta.get('fingerprint')!r}"
    if meta.get("size") != size:
        return f"metadata says size {meta.get('size')!r}, object has {size}"
    return None


def verify(cache: ArtifactCache, fps: list[str] | None, repair: bool) -> VerifyReport:
    """Hash each object against its name; check its metadata.

    Repair quarantines a bad object and rewrites bad metadata of a good one.
    """
    report = VerifyReport()
    names = _all_object_names(cache) if fps is None else list(fps)
    for fp in names:
        if not is_fingerprint(fp):
            report.missing.append(fp)
            continue
        path = cache.layout.object_path(fp)
        problem, st = _check_object(cache, fp)
        if problem == "missing":
            report.missing.append(fp)
            continue
        report.checked += 1
        if problem is None and st is not None:
            problem = _check_meta(cache, fp, st.st_size)
            if problem is None:
                report.ok.append(fp)
                continue
            bad = CorruptEntry(fp, cache.layout.meta_path(fp), problem)
            if repair:
                bad.repaired = _rewrite_meta(cache, fp, st.st_size)
            report.corrupt.append(bad)
            continue
        bad = CorruptEntry(fp, path, problem or "unreadable")
        if repair:
            bad.quarantined_to = cache._quarantine(fp, st, bad.problem)
            bad.repaired = bad.quarantined_to is not None
            if bad.repaired:
                cache._bump(corruptions=1)
        report.corrupt.append(bad)
    return report


def _rewrite_meta(cache: ArtifactCache, fp: str, size: int) -> bool:
    from dataclasses import replace

    old = cache._read_meta(fp)
    entry = cache._entry(fp, size, old)
    now = time.time()
    entry = replace(entry, size=size, created=entry.created or now, last_used=now)
    try:
        with cache._lock(fp):
            cache._write_meta(entry)
    except (OSError, CacheError):
        return False
    return True


# -- eviction -------------------------------------------------------------------------


def _remove_entry(cache: ArtifactCache, entry: CacheEntry) -> bool:
    """Unlink object then metadata if the entry lock is free (caller counts it)."""
    lay = cache.layout
    with cache._try_lock(lay.lock_path(entry.fingerprint)) as held:
        if not held:
            return False
        try:
            os.unlink(lay.object_path(entry.fingerprint))
        except FileNotFoundError:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lay.meta_path(entry.fingerprint))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lay.lock_path(entry.fingerprint))
    return True


def evict(
    cache: ArtifactCache, max_bytes: int, protect: set[str] | frozenset[str] = frozenset()
) -> list[CacheEntry]:
    """Remove least-recently-used entries until the store holds at most `max_bytes`.

    Entries in `protect` (the object just added) and entries whose lock is
    busy are skipped.  Serialised by the gc lock.
    """
    evicted: list[CacheEntry] = []
    with cache._lock_named(GC_LOCK_NAME):
        entries = cache.ls()
        total = sum(e.size for e in entries)
        if total <= max_bytes:
            return evicted
        for entry in sorted(entries, key=lambda e: (e.last_used, e.created, e.fingerprint)):
            if total <= max_bytes:
                break
            if entry.fingerprint in protect:
                continue
            if _remove_entry(cache, entry):
                total -= entry.size
                evicted.append(entry)
    if evicted:
        cache._bump(evictions=len(evicted), bytes_evicted=sum(e.size for e in evicted))
    return evicted


# -- gc -------------------------------------------------------------------------------


def _age(path: Path, now: float) -> float:
    try:
        return now - os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _sweep_shard(cache: ArtifactCache, shard: Path, grace: float, report: GcReport) -> None:
    lay = cache.layout
    now = time.time()
    for item in list(os.scandir(shard)):
        path = Path(item.path)
        if item.name.startswith(TEMP_PREFIX):
            fp = parse_temp_name(item.name)
            if fp is not None:
                # A writer holds the entry lock for as long as its temp file exists.
                with cache._try_lock(lay.lock_path(fp)) as free:
                    if (free or _age(path, now) > grace) and _unlink(path):
                        report.temp_removed.append(path)
            elif _age(path, now) > grace and _unlink(path):
                report.temp_removed.append(path)
            continue
        parsed = parse_entry_name(item.name)
        if parsed is None or parsed[1] != "json":
            continue
        fp = parsed[0]
        if os.path.lexists(lay.object_path(fp)):
            continue
        with cache._try_lock(lay.lock_path(fp)) as free:
            if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):
                report.orphan_meta_removed.append(path)


def _sweep_locks(cache: ArtifactCache, report: GcReport) -> None:
    lay = cache.layout
    try:
        shards = list(os.scandir(lay.locks))
    except FileNotFoundError:
        return
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        for item in list(os.scandir(shard.path)):
            fp = item.name.removesuffix(LOCK_SUFFIX)
            if not is_fingerprint(fp) or os.path.lexists(lay.object_path(fp)):
                continue
            path = Path(item.path)
            # Unlink while holding it: filelock re-checks st_nlink after flock, so a
            # waiter on the old inode retries on a fresh file instead of sharing it.
            with cache._try_lock(path) as free:
                if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):
                    report.orphan_locks_removed += 1


def _sweep_loose_temps(directory: Path, grace: float, report: GcReport) -> None:
    """Temp files outside the shards (CACHEDIR.TAG's, quarantine reasons) after the grace."""
    now = time.time()
    try:
        items = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for item in items:
        path = Path(item.path)
        if item.name.startswith(TEMP_PREFIX) and _age(path, now) > grace and _unlink(path):
            report.temp_removed.append(path)


def _sweep_quarantine(cache: ArtifactCache, keep: float, report: GcReport) -> None:
    now = time.time()
    try:
        items = list(os.scandir(cache.layout.quarantine))
    except FileNotFoundError:
        return
    for item in items:
        path = Path(item.path)
        if _age(path, now) > keep and _unlink(path) and item.name.endswith(".so"):
            report.quarantine_removed += 1


def gc(cache: ArtifactCache, max_bytes: int | None, grace: float) -> GcReport:
    """Sweep temp files of dead writers, orphan metadata and locks, old quarantine;
    then evict down to `max_bytes` when given."""
    report = GcReport(max_bytes=max_bytes)
    lay = cache.layout
    before = cache.ls()
    report.bytes_before = sum(e.size for e in before)
    if not lay.base.is_dir():
        return report
    cache._ensure_root()
    with cache._lock_named(GC_LOCK_NAME):
        for shard in sorted(os.scandir(lay.objects), key=lambda d: d.name):
            if shard.is_dir(follow_symlinks=False):
                _sweep_shard(cache, Path(shard.path), grace, report)
        _sweep_locks(cache, report)
        _sweep_loose_temps(cache.root, grace, report)
        _sweep_loose_temps(lay.base, grace, report)
        _sweep_quarantine(cache, QUARANTINE_KEEP_SECONDS, report)
    if max_bytes is not None:
        report.evicted = evict(cache, max_bytes)
    report.bytes_after = sum(e.size for e in cache.ls())
    return report


# -- clear ----------------------------------------------------------------------------


def clear(cache: ArtifactCache) -> int:
    """Remove every entry under its lock, the quarantine and crash leftovers."""
    lay = cache.layout
    if not lay.base.is_dir():
        if cache.root.exists() and not cache.root.is_dir():
            from simpler_build.cache.errors import CacheRootError

            raise CacheRootError(cache.root, "not a directory")
        return 0
    removed = 0
    cache._ensure_root()
    with cache._lock_named(GC_LOCK_NAME):
        for entry in cache.ls():
            with cache._lock(entry.fingerprint):
                if _unlink(lay.object_path(entry.fingerprint)):
                    removed += 1
                _unlink(lay.meta_path(entry.fingerprint))
        for fp, _kind in list(cache._scan(kinds=("so",))):
            # Symlinks or other non-regular files planted at object names.
            path = lay.object_path(fp)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode) and _unlink(path):
                    removed += 1
            except FileNotFoundError:
                pass
        shutil.rmtree(lay.quarantine, ignore_errors=True)
        lay.quarantine.mkdir(exist_ok=True)
    gc(cache, None, DEFAULT_GRACE_SECONDS)
    return removed


__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "CorruptEntry",
    "GcReport",
    "VerifyReport",
    "clear",
    "evict",
    "gc",
    "verify",
]
