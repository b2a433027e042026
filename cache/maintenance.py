"""verify, gc, LRU eviction and clear for ArtifactCache.

Kept apart from store.py because none of it is on a build's or a run's hot
path.  Everything that deletes takes the entry's lock first (non-blocking
where a held lock means "a live writer is busy, leave it"), so maintenance is
safe while other processes put and get.

Maintenance must finish even when the tree holds things it does not expect
(a crash leftover, another tool's file, a directory where a file belongs):
otherwise one bad entry would stop eviction and the size bound would never be
enforced again.  So every item is handled on its own; what cannot be used is
removed, moved to quarantine or skipped, and recorded as a `Finding` in the
report.  Nothing is ever followed through a symlink, and nothing outside
``<root>/v1`` is removed except the store's own ``.tmp-*`` files in the root.
FORMAT.md ("What maintenance does with things it does not recognise") is the
contract.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpler_build import log
from simpler_build.cache import atomic
from simpler_build.cache.errors import CacheError, CacheRootError, UnsafePathError
from simpler_build.cache.fingerprint import is_fingerprint
from simpler_build.cache.layout import (
    GC_LOCK_NAME,
    LOCK_SUFFIX,
    STATS_NAME,
    TEMP_PREFIX,
    parse_entry_name,
    parse_temp_name,
)
from simpler_build.files import kind_of

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache, CacheEntry

#: A root temp file whose flock is free is a dead writer's once it is older than this.
LOCKED_TEMP_MIN_AGE = 1.0
#: A temp file whose writer still holds the entry lock is removed only after this long.
DEFAULT_GRACE_SECONDS = 3600.0
#: Quarantined objects are kept this long for inspection, then gc removes them.
QUARANTINE_KEEP_SECONDS = 7 * 24 * 3600.0
_HEX = frozenset("0123456789abcdef")
#: Names directly under v1/ that the store uses (anything else there is unknown).
_BASE_NAMES = frozenset({"objects", "locks", "quarantine", STATS_NAME})

SKIPPED = "skipped"
REMOVED = "removed"
QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Finding:
    """Something maintenance found unusable, and what it did: skipped, removed or quarantined."""

    path: Path
    reason: str
    action: str
    moved_to: Path | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "reason": self.reason}
        if self.moved_to is not None:
            out["moved_to"] = str(self.moved_to)
        return out

    def line(self) -> str:
        """One line for the command line: `<action>: <path>: <reason>`."""
        where = f" (moved to {self.moved_to})" if self.moved_to is not None else ""
        return f"{self.action}: {self.path}: {self.reason}{where}"


@dataclass
class _Findings:
    """What a maintenance run could not use; shared by every report."""

    findings: list[Finding] = field(default_factory=list)

    def note(self, path: Path, reason: str, action: str, moved_to: Path | None = None) -> None:
        self.findings.append(Finding(Path(path), reason, action, moved_to))
        log.info(__name__, "%s %s: %s", action, path, reason)

    def _of(self, action: str) -> list[Finding]:
        return [f for f in self.findings if f.action == action]

    @property
    def skipped(self) -> list[Finding]:
        """Left in place: busy, too young to judge, or it could not be removed."""
        return self._of(SKIPPED)

    @property
    def removed_unknown(self) -> list[Finding]:
        """Unknown or wrong-type things that were deleted."""
        return self._of(REMOVED)

    @property
    def quarantined_unknown(self) -> list[Finding]:
        """Wrong-type things at the store's names that were moved to quarantine/."""
        return self._of(QUARANTINED)

    def _findings_json(self) -> dict[str, Any]:
        return {
            "skipped": [f.to_json() for f in self.skipped],
            "removed_unknown": [f.to_json() for f in self.removed_unknown],
            "quarantined_unknown": [f.to_json() for f in self.quarantined_unknown],
        }


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
class VerifyReport(_Findings):
    checked: int = 0
    ok: list[str] = field(default_factory=list)
    corrupt: list[CorruptEntry] = field(default_factory=list)
    #: Fingerprints asked for (or malformed) that are not in the store.
    missing: list[str] = field(default_factory=list)
    #: Listed, then gone before they could be checked: evicted meanwhile, not corrupt.
    gone: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "corrupt": [c.to_json() for c in self.corrupt],
            "missing": self.missing,
            "gone": self.gone,
            **self._findings_json(),
        }


@dataclass
class GcReport(_Findings):
    temp_removed: list[Path] = field(default_factory=list)
    orphan_meta_removed: list[Path] = field(default_factory=list)
    orphan_locks_removed: int = 0
    quarantine_removed: int = 0
    evicted: list[CacheEntry] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    max_bytes: int | None = None
    #: Whole-root gc (`gc_root`): the SCons CacheDir's part and every byte under the root.
    scons_evicted: list[Path] = field(default_factory=list)
    bytes_scons_evicted: int = 0
    scons_temp_removed: int = 0
    scons_quarantine_removed: int = 0
    root_bytes_before: int = 0
    root_bytes_after: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scons_evicted": [str(p) for p in self.scons_evicted],
            "bytes_scons_evicted": self.bytes_scons_evicted,
            "scons_temp_removed": self.scons_temp_removed,
            "scons_quarantine_removed": self.scons_quarantine_removed,
            "root_bytes_before": self.root_bytes_before,
            "root_bytes_after": self.root_bytes_after,
            "temp_removed": [str(p) for p in self.temp_removed],
            "orphan_meta_removed": [str(p) for p in self.orphan_meta_removed],
            "orphan_locks_removed": self.orphan_locks_removed,
            "quarantine_removed": self.quarantine_removed,
            "evicted": [e.fingerprint for e in self.evicted],
            "bytes_evicted": sum(e.size for e in self.evicted),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "max_bytes": self.max_bytes,
            **self._findings_json(),
        }


@dataclass
class ClearReport(_Findings):
    #: Objects removed (including non-regular things planted at object names).
    removed: int = 0
    #: SCons CacheDir entries removed (`clear_root`).
    scons_removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "scons_removed": self.scons_removed,
            **self._findings_json(),
        }


# -- shared helpers -------------------------------------------------------------------


def _why(exc: BaseException) -> str:
    if isinstance(exc, CacheError):
        return exc.problem
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


@contextlib.contextmanager
def _guard(report: _Findings, path: Path, doing: str = "cannot handle it") -> Iterator[None]:
    """Turn a failure on one item into a 'skipped' finding, so the run goes on."""
    try:
        yield
    except FileNotFoundError:
        pass  # it vanished meanwhile (another process removed it): nothing left to do
    except (OSError, CacheError) as exc:
        report.note(path, f"{doing}: {_why(exc)}", SKIPPED)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _what(st: os.stat_result) -> str:
    return "a regular file" if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)


def _is_dir(st: os.stat_result | None) -> bool:
    """A real directory (a symlink to one is not: it is never followed)."""
    return st is not None and stat.S_ISDIR(st.st_mode)


def _is_shard_name(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


def _remove_any(path: Path) -> None:
    """Delete what is at `path` without following a symlink; a directory with its contents.

    shutil.rmtree walks by file descriptor on Linux, so a symlink inside is
    unlinked, never followed, and nothing outside `path` can be reached.
    """
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _unlink(path: Path) -> bool:
    """Remove a store file (or a wrong-type thing at its name); False when already gone."""
    try:
        _remove_any(path)
    except FileNotFoundError:
        return False
    return True


def _age(path: Path, now: float) -> float:
    try:
        return now - os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _listdir(path: Path, report: _Findings) -> list[os.DirEntry[str]]:
    """Sorted entries of a store directory; one that cannot be listed is reported, not fatal."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda d: d.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        report.note(path, f"cannot list: {_why(exc)}", SKIPPED)
        return []


def _move_to_quarantine(
    cache: ArtifactCache, path: Path, problem: str, report: _Findings, stem: str, suffix: str
) -> None:
    """Rename a wrong-type thing at a store name into quarantine/ (never across a symlink)."""
    q = cache.layout.quarantine
    if not _is_dir(_lstat(q)):
        q.mkdir()  # fails (reported) if something else is there now
    stem = f"{stem}-{time.time_ns()}-{os.getpid()}"
    dest = q / f"{stem}{suffix}"
    os.rename(path, dest)
    reason = {"problem": problem, "original": str(path)}
    with contextlib.suppress(OSError):
        (q / f"{stem}.reason.json").write_text(json.dumps(reason) + "\n")
    atomic.fsync_dir(path.parent)
    report.note(path, problem, QUARANTINED, dest)


def _unknown(path: Path, now: float, grace: float, report: _Findings, what: str) -> None:
    """A name the store does not use: removed once older than the grace period."""
    if _age(path, now) > grace:
        if _unlink(path):
            report.note(path, what, REMOVED)
    else:
        report.note(path, f"{what}; kept until it is older than the grace period", SKIPPED)


def _base_usable(cache: ArtifactCache, report: _Findings) -> bool:
    """Whether v1/ is a real directory; anything else there (a file, a symlink, which
    is never followed) is reported, and only `clear` removes it."""
    base = cache.layout.base
    st = _lstat(base)
    if st is None:
        return False
    if not _is_dir(st):
        report.note(
            base, f"is {_what(st)}, not a directory; left alone (`clear` removes it)", SKIPPED
        )
        return False
    return True


def _heal_base(cache: ArtifactCache, report: _Findings) -> bool:
    """Make quarantine/, objects/ and locks/ real directories and gc.lock and stats.json
    regular files (or absent), moving or removing what stands in their way.

    Returns False when there is no usable v1/ directory (nothing to maintain).
    """
    lay = cache.layout
    if not _base_usable(cache, report):
        return False
    # quarantine/ first: the others are moved into it.  Its own content is disposable.
    with _guard(report, lay.quarantine):
        st = _lstat(lay.quarantine)
        if st is not None and not _is_dir(st) and _unlink(lay.quarantine):
            report.note(lay.quarantine, f"is {_what(st)}, not a directory", REMOVED)
        lay.quarantine.mkdir(exist_ok=True)
    for directory in (lay.objects, lay.locks):
        with _guard(report, directory):
            st = _lstat(directory)
            if st is not None and not _is_dir(st):
                problem = f"is {_what(st)}, not a directory"
                _move_to_quarantine(cache, directory, problem, report, directory.name, ".item")
            directory.mkdir(exist_ok=True)
    for file in (lay.gc_lock, lay.stats_file):
        with _guard(report, file):
            st = _lstat(file)
            if st is not None and not stat.S_ISREG(st.st_mode) and _unlink(file):
                report.note(file, f"is {_what(st)}, not a regular file", REMOVED)
    return True


def _heal_lock_path(cache: ArtifactCache, fp: str, report: _Findings) -> None:
    """Clear the way to an entry's lock file: a lock shard that is not a directory is
    quarantined, a lock name that is not a regular file is removed (neither can be held)."""
    lock = cache.layout.lock_path(fp)
    st = _lstat(lock.parent)
    if st is not None and not _is_dir(st):
        problem = f"is {_what(st)}, not a directory"
        stem = f"locks-{lock.parent.name}"
        _move_to_quarantine(cache, lock.parent, problem, report, stem, ".item")
        return
    st = _lstat(lock)
    if st is not None and not stat.S_ISREG(st.st_mode) and _unlink(lock):
        report.note(lock, f"is {_what(st)}, not a regular file", REMOVED)


def _same_file(path: Path, seen: os.stat_result) -> bool:
    """Whether `path` still names the file that was read (not evicted, not replaced)."""
    now = _lstat(path)
    return now is not None and (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) == (
        seen.st_dev,
        seen.st_ino,
        seen.st_size,
        seen.st_mtime_ns,
    )


# -- verify ---------------------------------------------------------------------------


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
            log.info(__name__, "quarantined %s to %s: %s", fp, bad.quarantined_to, bad.problem)
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
        # The object is gone, so the entry is evicted whatever follows; a metadata or
        # lock file that cannot be removed now is an orphan for the next gc.
        for path in (lay.meta_path(entry.fingerprint), lay.lock_path(entry.fingerprint)):
            with contextlib.suppress(OSError):
                _unlink(path)
    return True


def evict(
    cache: ArtifactCache,
    max_bytes: int,
    protect: set[str] | frozenset[str] = frozenset(),
    report: _Findings | None = None,
) -> list[CacheEntry]:
    """Remove least-recently-used entries until the store holds at most `max_bytes`.

    Entries in `protect` (the object just added) and entries whose lock is
    busy are skipped (noted in `report` when given); an entry that cannot be
    removed never stops the others.  A lock name that cannot be locked at all
    (a directory, a symlink, a file where its shard should be) is cleared and
    the entry tried once more.  Serialised by the gc lock.
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
                removed = _remove_entry(cache, entry)
                if not removed and _lock_unusable(cache, entry.fingerprint):
                    _heal_lock_path(cache, entry.fingerprint, notes)
                    removed = _remove_entry(cache, entry)
                if removed:
                    total -= entry.size
                    evicted.append(entry)
                    log.debug(__name__, "evicted %s (%d bytes)", entry.fingerprint, entry.size)
                elif os.path.lexists(entry.path):
                    notes.note(entry.path, "not evicted: its entry lock is held", SKIPPED)
    if evicted:
        cache._bump(evictions=len(evicted), bytes_evicted=sum(e.size for e in evicted))
    return evicted


def _lock_unusable(cache: ArtifactCache, fp: str) -> bool:
    lock = cache.layout.lock_path(fp)
    shard, file = _lstat(lock.parent), _lstat(lock)
    return (shard is not None and not _is_dir(shard)) or (
        file is not None and not stat.S_ISREG(file.st_mode)
    )


# -- gc -------------------------------------------------------------------------------


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
    fp = path.name.removesuffix(LOCK_SUFFIX)
    if not path.name.endswith(LOCK_SUFFIX) or not is_fingerprint(fp) or fp[:2] != shard:
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
                        log.debug(__name__, "evicted SCons entry %s", item.path)
                    elif outcome == parts.BUSY:
                        report.note(item.path, "not evicted: a build is pushing to it", SKIPPED)
                continue
            meta = _lstat(cache.layout.meta_path(item.fingerprint))
            with _guard(report, item.path, "not evicted"):
                removed = _remove_entry(cache, item)
                if not removed and _lock_unusable(cache, item.fingerprint):
                    _heal_lock_path(cache, item.fingerprint, report)
                    removed = _remove_entry(cache, item)
                if removed:
                    total -= item.size + (meta.st_size if meta is not None else 0)
                    evicted.append(item)
                    log.debug(__name__, "evicted %s (%d bytes)", item.fingerprint, item.size)
                elif os.path.lexists(item.path):
                    report.note(item.path, "not evicted: its entry lock is held", SKIPPED)
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


# -- clear ----------------------------------------------------------------------------


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
                fp = lock.name.removesuffix(LOCK_SUFFIX)
                ours = lock.name.endswith(LOCK_SUFFIX) and is_fingerprint(fp)
                if ours and fp[:2] == item.name and lock.is_file(follow_symlinks=False):
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


__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "ClearReport",
    "CorruptEntry",
    "Finding",
    "GcReport",
    "VerifyReport",
    "clear",
    "clear_root",
    "evict",
    "gc",
    "gc_root",
    "verify",
]
