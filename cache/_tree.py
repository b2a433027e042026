"""Tolerant filesystem steps that verify, gc, eviction and clear share.

Each handles one item: a failure becomes a `Finding` (`_guard`), a thing of
the wrong type at a store name is moved to quarantine or removed, and nothing
is followed through a symlink.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from simpler_build.cache import atomic
from simpler_build.cache._findings import QUARANTINED, REMOVED, SKIPPED, _Findings
from simpler_build.cache.errors import CacheError
from simpler_build.cache.layout import STATS_NAME
from simpler_build.files import kind_of

if TYPE_CHECKING:
    from simpler_build.cache.store import ArtifactCache

_HEX = frozenset("0123456789abcdef")
#: Names directly under v1/ that the store uses (anything else there is unknown).
_BASE_NAMES = frozenset({"objects", "locks", "quarantine", STATS_NAME})


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


def _lock_unusable(cache: ArtifactCache, fp: str) -> bool:
    lock = cache.layout.lock_path(fp)
    shard, file = _lstat(lock.parent), _lstat(lock)
    return (shard is not None and not _is_dir(shard)) or (
        file is not None and not stat.S_ISREG(file.st_mode)
    )
