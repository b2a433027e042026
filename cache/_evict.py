"""Least-recently-used eviction: of the store (`evict`), and of the whole root (`_evict_root`)."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from simpler_build import log
from simpler_build.cache._findings import LOGGER, SKIPPED, GcReport, _Findings
from simpler_build.cache._tree import _guard, _heal_lock_path, _lock_unusable, _lstat, _unlink
from simpler_build.cache.layout import GC_LOCK_NAME

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache, CacheEntry


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
        # The object is gone, so the entry is evicted whatever follows; a metadata or
        # lock file that cannot be removed now is an orphan for the next gc.
        for path in (lay.meta_path(entry.fingerprint), lay.lock_path(entry.fingerprint)):
            with contextlib.suppress(OSError):
                _unlink(path)
    return True


def _evict_entry(cache: ArtifactCache, entry: CacheEntry, notes: _Findings) -> bool:
    """Remove one entry unless its lock is held (noted). A lock name that cannot be locked
    at all (a directory, a symlink, a file where its shard should be) is cleared and the
    entry tried once more."""
    removed = _remove_entry(cache, entry)
    if not removed and _lock_unusable(cache, entry.fingerprint):
        _heal_lock_path(cache, entry.fingerprint, notes)
        removed = _remove_entry(cache, entry)
    if removed:
        log.debug(LOGGER, "evicted %s (%d bytes)", entry.fingerprint, entry.size)
    elif os.path.lexists(entry.path):
        notes.note(entry.path, "not evicted: its entry lock is held", SKIPPED)
    return removed


def evict(
    cache: ArtifactCache,
    max_bytes: int,
    protect: set[str] | frozenset[str] = frozenset(),
    report: _Findings | None = None,
) -> list[CacheEntry]:
    """Remove least-recently-used entries until the store holds at most `max_bytes`.

    Entries in `protect` (the object just added) and entries whose lock is
    busy are skipped (noted in `report` when given); an entry that cannot be
    removed never stops the others.  Serialised by the gc lock.
    """
    notes = report if report is not None else _Findings()
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
            with _guard(notes, entry.path, "not evicted"):
                if _evict_entry(cache, entry, notes):
                    total -= entry.size
                    evicted.append(entry)
    if evicted:
        cache._bump(evictions=len(evicted), bytes_evicted=sum(e.size for e in evicted))
    return evicted


def _evict_root(cache: ArtifactCache, max_bytes: int, report: GcReport, store: bool = True) -> None:
    """Least recently used first, store entries and SCons entries alike, until the root fits."""
    from simpler_build.cache import parts

    with cache._lock_named(GC_LOCK_NAME) if store else contextlib.nullcontext():
        total = parts.usage(cache.root).bytes
        if total <= max_bytes:
            return
        candidates: list[tuple[float, str, Any]] = []
        if store:
            candidates += [(e.last_used, e.fingerprint, e) for e in cache.ls()]
        candidates += [(e.last_used, str(e.path), e) for e in parts.scons_entries(cache.root)]
        evicted: list[CacheEntry] = []
        for _when, _name, item in sorted(candidates, key=lambda c: (c[0], c[1])):
            if total <= max_bytes:
                break
            if isinstance(item, parts.SconsEntry):
                with _guard(report, item.path, "not evicted"):
                    outcome = parts.remove_scons_entry(item)
                    if outcome == parts.REMOVED:
                        total -= item.size
                        report.scons_evicted.append(item.path)
                        report.bytes_scons_evicted += item.size
                        log.debug(LOGGER, "evicted SCons entry %s", item.path)
                    elif outcome == parts.BUSY:
                        report.note(item.path, "not evicted: a build is pushing to it", SKIPPED)
                continue
            meta = _lstat(cache.layout.meta_path(item.fingerprint))
            with _guard(report, item.path, "not evicted"):
                if _evict_entry(cache, item, report):
                    total -= item.size + (meta.st_size if meta is not None else 0)
                    evicted.append(item)
    report.evicted.extend(evicted)
    bumps: dict[str, int] = {}
    if evicted:
        bumps.update(evictions=len(evicted), bytes_evicted=sum(e.size for e in evicted))
    if report.scons_evicted:
        bumps.update(
            scons_evictions=len(report.scons_evicted),
            bytes_scons_evicted=report.bytes_scons_evicted,
        )
    if bumps:
        cache._bump(**bumps)
