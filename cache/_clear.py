"""`clear`: remove every entry (under its lock) and everything under v1/ the store does not use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simpler_build.cache._findings import REMOVED, SKIPPED, ClearReport
from simpler_build.cache._gc import DEFAULT_GRACE_SECONDS, gc
from simpler_build.cache._tree import (
    _BASE_NAMES,
    _guard,
    _heal_base,
    _heal_lock_path,
    _is_dir,
    _is_shard_name,
    _listdir,
    _lstat,
    _unlink,
    _what,
)
from simpler_build.cache.errors import CacheRootError
from simpler_build.cache.layout import (
    GC_LOCK_NAME,
    TEMP_PREFIX,
    parse_entry_name,
    parse_lock_name,
)

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache


def clear_root(cache: ArtifactCache) -> ClearReport:
    """`clear` for the whole root: the store, then the SCons CacheDir's entries and quarantine
    (its `config` and CACHEDIR.TAG stay, so SCons keeps using the directory)."""
    from simpler_build.cache import parts

    report = clear(cache)
    removed, skipped, problems = parts.clear_scons(cache.root)
    report.scons_removed = removed
    if skipped:
        report.note(
            parts.scons_dir(cache.root),
            f"{skipped} SCons CacheDir entries not removed: a build was pushing to their directory",
            SKIPPED,
        )
    for line in problems:
        path, _, why = line.partition(": ")
        report.note(Path(path), f"not removed: {why}", SKIPPED)
    return report


def clear(cache: ArtifactCache) -> ClearReport:
    """Remove every entry under its lock, the quarantine, unknown things under v1/ and
    crash leftovers.  An entry whose lock is held (a live writer) is skipped, not waited for.
    """
    lay = cache.layout
    report = ClearReport()
    st = _lstat(lay.base)
    if st is None or not _is_dir(st):
        if cache.root.exists() and not cache.root.is_dir():
            raise CacheRootError(cache.root, "not a directory")
        if st is not None and _unlink(lay.base):
            report.note(lay.base, f"is {_what(st)}, not a directory", REMOVED)
        return report
    _heal_base(cache, report)
    cache._ensure_root()
    with cache._lock_named(GC_LOCK_NAME):
        for item in _listdir(lay.objects, report):
            path = Path(item.path)
            with _guard(report, path, "not removed"):
                if _is_shard_name(item.name) and item.is_dir(follow_symlinks=False):
                    _clear_shard(cache, path, report)
                elif _unlink(path):
                    report.note(path, "not a shard directory", REMOVED)
        for item in _listdir(lay.quarantine, report):
            with _guard(report, Path(item.path), "not removed"):
                _unlink(Path(item.path))
        _clear_locks(cache, report)
        for item in _listdir(lay.base, report):
            path = Path(item.path)
            if item.name in _BASE_NAMES or item.name.startswith(TEMP_PREFIX):
                continue
            with _guard(report, path, "not removed"):
                if _unlink(path):
                    report.note(path, "not a name the store uses", REMOVED)
    swept = gc(cache, None, DEFAULT_GRACE_SECONDS)
    report.findings.extend(f for f in swept.findings if f not in report.findings)
    return report


def _clear_locks(cache: ArtifactCache, report: ClearReport) -> None:
    """Remove every name under locks/ the store does not use; lock files themselves are
    left to gc, which unlinks them only while holding them."""
    for item in _listdir(cache.layout.locks, report):
        path = Path(item.path)
        if item.name == GC_LOCK_NAME:
            continue
        with _guard(report, path, "not removed"):
            if not (_is_shard_name(item.name) and item.is_dir(follow_symlinks=False)):
                if _unlink(path):
                    report.note(path, "not a lock shard directory", REMOVED)
                continue
            for lock in _listdir(path, report):
                fp = parse_lock_name(lock.name)
                if fp is not None and fp[:2] == item.name and lock.is_file(follow_symlinks=False):
                    continue
                with _guard(report, Path(lock.path), "not removed"):
                    if _unlink(Path(lock.path)):
                        report.note(Path(lock.path), "not a lock file of the store", REMOVED)


def _clear_shard(cache: ArtifactCache, shard: Path, report: ClearReport) -> None:
    """Remove every entry of one shard (under its lock) and every unknown name in it;
    temp files are left to gc, which knows whether their writer still lives."""
    lay = cache.layout
    fps: set[str] = set()
    for item in _listdir(shard, report):
        path = Path(item.path)
        parsed = parse_entry_name(item.name)
        if parsed is not None and parsed[0][:2] == shard.name:
            fps.add(parsed[0])
        elif not item.name.startswith(TEMP_PREFIX):
            with _guard(report, path, "not removed"):
                if _unlink(path):
                    report.note(path, "not a name the store uses", REMOVED)
    for fp in sorted(fps):
        obj = lay.object_path(fp)
        with _guard(report, obj, "not removed"):
            _heal_lock_path(cache, fp, report)
            with cache._try_lock(lay.lock_path(fp)) as free:
                if not free:
                    report.note(obj, "not removed: entry lock held by another process", SKIPPED)
                    continue
                # Symlinks or other non-regular files planted at object names count too.
                if _unlink(obj):
                    report.removed += 1
                _unlink(lay.meta_path(fp))
