"""`gc`: sweep what dead writers and crashes left, then evict down to the size bound."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from simpler_build.cache._evict import _evict_root, evict
from simpler_build.cache._findings import QUARANTINED, REMOVED, SKIPPED, GcReport, _Findings
from simpler_build.cache._tree import (
    _BASE_NAMES,
    _age,
    _base_usable,
    _guard,
    _heal_base,
    _is_dir,
    _is_shard_name,
    _listdir,
    _lstat,
    _move_to_quarantine,
    _same_file,
    _unknown,
    _unlink,
    _what,
)
from simpler_build.cache.fingerprint import is_fingerprint
from simpler_build.cache.layout import (
    GC_LOCK_NAME,
    LOCK_SUFFIX,
    TEMP_PREFIX,
    parse_entry_name,
    parse_lock_name,
    parse_temp_name,
)

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache

#: A root temp file whose flock is free is a dead writer's once it is older than this.
LOCKED_TEMP_MIN_AGE = 1.0
#: A temp file whose writer still holds the entry lock is removed only after this long.
DEFAULT_GRACE_SECONDS = 3600.0
#: Quarantined objects are kept this long for inspection, then gc removes them.
QUARANTINE_KEEP_SECONDS = 7 * 24 * 3600.0


def _sweep_shard(cache: ArtifactCache, shard: Path, grace: float, report: GcReport) -> None:
    now = time.time()
    for item in _listdir(shard, report):
        with _guard(report, Path(item.path)):
            _sweep_shard_item(cache, shard, Path(item.path), now, grace, report)


def _sweep_shard_item(
    cache: ArtifactCache, shard: Path, path: Path, now: float, grace: float, report: GcReport
) -> None:
    lay = cache.layout
    name = path.name
    if name.startswith(TEMP_PREFIX):
        fp = parse_temp_name(name)
        if fp is not None:
            # A writer holds the entry lock for as long as its temp file exists.
            with cache._try_lock(lay.lock_path(fp)) as free:
                if (free or _age(path, now) > grace) and _unlink(path):
                    report.temp_removed.append(path)
        elif _age(path, now) > grace and _unlink(path):
            report.temp_removed.append(path)
        return
    parsed = parse_entry_name(name)
    if parsed is None or parsed[0][:2] != shard.name:
        _unknown(path, now, grace, report, "not a name the store uses")
        return
    fp, kind = parsed
    st = _lstat(path)
    if st is None:
        return
    if kind == "so":
        if not stat.S_ISREG(st.st_mode):
            _quarantine_object(cache, fp, st, report)
        return
    if not os.path.lexists(lay.object_path(fp)):
        with cache._try_lock(lay.lock_path(fp)) as free:
            if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):
                report.orphan_meta_removed.append(path)
        return
    if not stat.S_ISREG(st.st_mode):
        # The object's metadata name holds a directory, FIFO or symlink: move it out of
        # the way so the next put or `verify --repair` can write real metadata.
        with cache._try_lock(lay.lock_path(fp)) as free:
            if not free:
                report.note(path, "wrong type, but the entry lock is held", SKIPPED)
            elif _same_file(path, st):
                problem = f"is {_what(st)}, not a regular file"
                _move_to_quarantine(cache, path, problem, report, fp, ".meta.json")


def _quarantine_object(cache: ArtifactCache, fp: str, st: os.stat_result, report: GcReport) -> None:
    """Move a directory, FIFO or symlink at an object name (and its metadata) aside."""
    path = cache.layout.object_path(fp)
    problem = f"is {_what(st)}, not a regular file"
    dest = cache._quarantine(fp, st, problem, timeout=0)
    if dest is not None:
        report.note(path, problem, QUARANTINED, dest)
    elif _same_file(path, st):
        report.note(path, f"{problem}; not moved (entry lock held)", SKIPPED)


def _sweep_objects(cache: ArtifactCache, grace: float, report: GcReport) -> None:
    now = time.time()
    for item in _listdir(cache.layout.objects, report):
        path = Path(item.path)
        with _guard(report, path):
            st = os.lstat(path)
            if not _is_shard_name(item.name):
                _unknown(path, now, grace, report, "not a name the store uses")
            elif _is_dir(st):
                _sweep_shard(cache, path, grace, report)
            else:
                problem = f"is {_what(st)}, not a shard directory"
                _move_to_quarantine(cache, path, problem, report, f"objects-{item.name}", ".item")


def _heal_locks(cache: ArtifactCache, grace: float, report: GcReport) -> None:
    """Make every lock name lockable before anything is locked: lock shards that are not
    directories are quarantined, lock names that are not regular files removed, unknown
    names removed after the grace period."""
    now = time.time()
    for item in _listdir(cache.layout.locks, report):
        path = Path(item.path)
        if item.name == GC_LOCK_NAME:
            continue
        with _guard(report, path):
            st = os.lstat(path)
            if not _is_shard_name(item.name):
                _unknown(path, now, grace, report, "not a name the store uses")
            elif not _is_dir(st):
                problem = f"is {_what(st)}, not a directory"
                _move_to_quarantine(cache, path, problem, report, f"locks-{item.name}", ".item")
            else:
                for lock in _listdir(path, report):
                    with _guard(report, Path(lock.path)):
                        _heal_lock_item(Path(lock.path), item.name, now, grace, report)


def _heal_lock_item(path: Path, shard: str, now: float, grace: float, report: GcReport) -> None:
    fp = parse_lock_name(path.name)
    if fp is None or fp[:2] != shard:
        _unknown(path, now, grace, report, "not a name the store uses")
        return
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) and _unlink(path):
        report.note(path, f"is {_what(st)}, not a regular file", REMOVED)


def _sweep_locks(cache: ArtifactCache, report: GcReport) -> None:
    lay = cache.layout
    for shard in _listdir(lay.locks, report):
        if not shard.is_dir(follow_symlinks=False):
            continue
        for item in _listdir(Path(shard.path), report):
            fp = item.name.removesuffix(LOCK_SUFFIX)
            if not is_fingerprint(fp) or os.path.lexists(lay.object_path(fp)):
                continue
            path = Path(item.path)
            # Unlink while holding it: a waiter re-checks st_nlink after flock, so a
            # waiter on the old inode retries on a fresh file instead of sharing it.
            with _guard(report, path), cache._try_lock(path) as free:
                if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):
                    report.orphan_locks_removed += 1


def _sweep_root_temps(cache: ArtifactCache, grace: float, report: GcReport) -> None:
    """The store's own temp files in the shared root (CACHEDIR.TAG's), after the grace.

    The root belongs to other layers too, so only files are removed there; a
    directory with a temp name is not the store's and is reported instead.
    """
    from simpler_build.cache.atomic import writer_gone

    now = time.time()
    for item in _listdir(cache.root, report):
        path = Path(item.path)
        if not item.name.startswith(TEMP_PREFIX):
            continue
        age = _age(path, now)
        # A live writer holds its temp file's flock until the rename (atomic.open_locked_temp);
        # the second of age covers the instant between its create and its lock.
        if age <= grace and not (age > LOCKED_TEMP_MIN_AGE and writer_gone(path)):
            continue
        with _guard(report, path):
            if item.is_dir(follow_symlinks=False):
                report.note(path, "a directory in the shared root; not the store's", SKIPPED)
            elif _unlink(path):
                report.temp_removed.append(path)


def _sweep_base(cache: ArtifactCache, grace: float, report: GcReport) -> None:
    """Temp files and unknown names directly under v1/ (the store owns every name there)."""
    now = time.time()
    for item in _listdir(cache.layout.base, report):
        path = Path(item.path)
        if item.name in _BASE_NAMES:
            continue
        with _guard(report, path):
            if item.name.startswith(TEMP_PREFIX):
                if _age(path, now) > grace and _unlink(path):
                    report.temp_removed.append(path)
            else:
                _unknown(path, now, grace, report, "not a name the store uses")


def _sweep_quarantine(cache: ArtifactCache, keep: float, report: GcReport) -> None:
    now = time.time()
    for item in _listdir(cache.layout.quarantine, report):
        path = Path(item.path)
        with _guard(report, path):
            if _age(path, now) > keep and _unlink(path) and item.name.endswith(".so"):
                report.quarantine_removed += 1


def gc(cache: ArtifactCache, max_bytes: int | None, grace: float) -> GcReport:
    """Sweep temp files of dead writers, orphan metadata and locks, old quarantine and
    things the store does not use; then evict down to `max_bytes` when given.

    Every item is handled on its own (see the module docstring), so the
    eviction at the end always runs.
    """
    report = GcReport(max_bytes=max_bytes)
    before = cache.ls()
    report.bytes_before = sum(e.size for e in before)
    if not _heal_base(cache, report):
        report.bytes_after = report.bytes_before
        return report
    cache._ensure_root()
    with cache._lock_named(GC_LOCK_NAME):
        _heal_locks(cache, grace, report)
        _sweep_objects(cache, grace, report)
        _sweep_locks(cache, report)
        _sweep_root_temps(cache, grace, report)
        _sweep_base(cache, grace, report)
        _sweep_quarantine(cache, QUARANTINE_KEEP_SECONDS, report)
    if max_bytes is not None:
        report.evicted = evict(cache, max_bytes, report=report)
    report.bytes_after = sum(e.size for e in cache.ls())
    return report


def gc_root(cache: ArtifactCache, max_bytes: int | None, grace: float) -> GcReport:
    """`gc` for the whole cache root: the store's sweep, the SCons CacheDir's (crash
    temp files, old quarantine), then least-recently-used eviction across the store and
    the SCons CacheDir until everything under the root fits in `max_bytes` (None: no bound).
    """
    from simpler_build.cache import parts

    report = gc(cache, None, grace)
    if _lstat(cache.layout.base) is None and _is_dir(_lstat(cache.root)):
        _sweep_root_temps(cache, grace, report)  # gc() stops before them without a v1/
    report.max_bytes = max_bytes
    report.root_bytes_before = parts.usage(cache.root).bytes
    temps, quarantined, problems = parts.sweep_scons(cache.root, grace, QUARANTINE_KEEP_SECONDS)
    report.scons_temp_removed, report.scons_quarantine_removed = temps, quarantined
    for line in problems:
        path, _, why = line.partition(": ")
        report.note(Path(path), why, SKIPPED)
    if max_bytes is not None and _base_usable(cache, _Findings()):
        _evict_root(cache, max_bytes, report)
    elif max_bytes is not None:
        _evict_root(cache, max_bytes, report, store=False)
    report.bytes_after = sum(e.size for e in cache.ls())
    report.root_bytes_after = parts.usage(cache.root).bytes
    if report.evicted or report.scons_evicted:
        cache._bump(cleanups=1)
    return report
