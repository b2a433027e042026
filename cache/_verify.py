"""`verify [--repair]`: hash every object against its name and check its metadata."""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING

from simpler_build import log
from simpler_build.cache import atomic
from simpler_build.cache._findings import (
    LOGGER,
    SKIPPED,
    CorruptEntry,
    VerifyReport,
    _Findings,
)
from simpler_build.cache._tree import (
    _base_usable,
    _guard,
    _heal_base,
    _heal_lock_path,
    _lstat,
    _move_to_quarantine,
    _same_file,
    _what,
    _why,
)
from simpler_build.cache.errors import CacheError, UnsafePathError
from simpler_build.cache.fingerprint import is_fingerprint

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache


def _all_object_names(cache: ArtifactCache) -> list[str]:
    return sorted({fp for fp, _ in cache._scan(kinds=("so",))})


def _check_object(cache: ArtifactCache, fp: str) -> tuple[str | None, os.stat_result | None]:
    """(problem or None, stat of what was read); problem 'missing' when absent."""
    path = cache.layout.object_path(fp)
    try:
        fd = atomic.open_nofollow(path)
    except UnsafePathError as exc:
        st = _lstat(path)
        return (exc.problem, st) if st is not None else ("missing", None)
    except (FileNotFoundError, NotADirectoryError):
        return "missing", None
    except OSError as exc:
        st = _lstat(path)
        if st is None:
            return "missing", None
        return f"unreadable: {exc.strerror or exc}", st
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

    Repair quarantines a bad object and rewrites bad metadata of a good one;
    it first clears wrong-type things out of the store's directory names so
    the quarantine and the entry locks it needs are usable.  An object that
    disappears while it is checked (another process evicted it) is `gone`,
    never corrupt.
    """
    report = VerifyReport()
    listed = fps is None
    usable = _heal_base(cache, report) if repair else _base_usable(cache, report)
    if not usable:
        report.missing.extend(fps or ())
        return report
    names = _all_object_names(cache) if listed else list(fps or ())
    for fp in names:
        if not is_fingerprint(fp):
            report.missing.append(fp)
            continue
        with _guard(report, cache.layout.object_path(fp), "cannot verify"):
            _verify_one(cache, fp, listed, repair, report)
    return report


def _verify_one(
    cache: ArtifactCache, fp: str, listed: bool, repair: bool, report: VerifyReport
) -> None:
    path = cache.layout.object_path(fp)
    problem, st = _check_object(cache, fp)
    if problem == "missing":
        (report.gone if listed else report.missing).append(fp)
        return
    report.checked += 1
    if problem is None and st is not None:
        problem = _check_meta(cache, fp, st.st_size)
        if problem is not None:
            # An evictor unlinks the object, then its metadata: metadata found missing
            # while the object is gone too is an eviction in progress, not corruption.
            if not _same_file(path, st):
                report.checked -= 1
                report.gone.append(fp)
                return
            problem = _check_meta(cache, fp, st.st_size)
        if problem is None:
            report.ok.append(fp)
            return
        bad = CorruptEntry(fp, cache.layout.meta_path(fp), problem)
        if repair:
            outcome = _rewrite_meta(cache, fp, st, report)
            if outcome == "gone":
                report.checked -= 1
                report.gone.append(fp)
                return
            if outcome == "ok":
                report.ok.append(fp)
                return
            bad.repaired = outcome == "rewritten"
        report.corrupt.append(bad)
        return
    bad = CorruptEntry(fp, path, problem or "unreadable")
    if repair:
        _heal_lock_path(cache, fp, report)
        bad.quarantined_to = cache._quarantine(fp, st, bad.problem)
        bad.repaired = bad.quarantined_to is not None
        if bad.quarantined_to is not None:
            log.info(LOGGER, "quarantined %s to %s: %s", fp, bad.quarantined_to, bad.problem)
        if bad.repaired:
            cache._bump(corruptions=1)
    report.corrupt.append(bad)


def _rewrite_meta(cache: ArtifactCache, fp: str, seen: os.stat_result, report: _Findings) -> str:
    """Rewrite bad metadata of a good object under its entry lock.

    Returns "rewritten", "ok" (fixed meanwhile), "gone" (evicted meanwhile) or
    "failed".  A non-regular file at the metadata name is quarantined first:
    the rename that publishes metadata cannot replace a directory, and a
    symlink is never written through.
    """
    lay = cache.layout
    meta = lay.meta_path(fp)
    try:
        _heal_lock_path(cache, fp, report)
        with cache._lock(fp):
            if not _same_file(lay.object_path(fp), seen):
                return "gone"
            if _check_meta(cache, fp, seen.st_size) is None:
                return "ok"
            st = _lstat(meta)
            if st is not None and not stat.S_ISREG(st.st_mode):
                problem = f"is {_what(st)}, not a regular file"
                _move_to_quarantine(cache, meta, problem, report, fp, ".meta.json")
            old = cache._read_meta(fp)
            entry = cache._entry(fp, seen.st_size, old)
            now = time.time()
            entry = entry.replace(size=seen.st_size, created=entry.created or now, last_used=now)
            cache._write_meta(entry)
    except (OSError, CacheError) as exc:
        report.note(meta, f"metadata not rewritten: {_why(exc)}", SKIPPED)
        return "failed"
    return "rewritten"
