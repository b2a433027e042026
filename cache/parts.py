"""The whole cache root: what each part holds, and the SCons CacheDir's maintenance.

The root holds more than the artifact store (FORMAT.md "Root"): SCons's
CacheDir (`<root>/scons`, written by site_scons/site_tools/simpler_cachedir.py)
is usually the biggest part.  `stats` reports every part, and `gc` bounds
and `clear` empties all of them, so the size a user configures is the size
on disk.

SCons CacheDir layout (SCons 4, prefix length 2)::

    <root>/scons/config, CACHEDIR.TAG      SCons's own; kept
    <root>/scons/<XX>/<sig>                 an entry; its mtime is its last use
                                            (SCons touches an entry it retrieves)
    <root>/scons/<XX>/<sig>.simpler-digest  its digest record
    <root>/scons/<XX>/.simpler-lock         flock taken by every push and quarantine
    <root>/scons/<XX>/.tmp-*                a push in progress (or a crash leftover)
    <root>/scons/quarantine/<sig>-<ns>-<pid>/   entries that failed verification

An entry is removed under its directory's `.simpler-lock` (non-blocking: a
push in progress means "busy, skip it"), entry first, record second.  A build
reading meanwhile (retrieval takes no lock) gets the whole entry (its open
descriptor keeps the bytes) or a miss: no entry, or -- when it saw the entry
just before the removal and looks for the record just after -- an entry
without a record, which it does not trust.  Never a damaged entry, so nothing
is quarantined and the build at worst rebuilds and pushes again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from pathlib import Path

from simpler_build.cache._record import Record
from simpler_build.cache.layout import FORMAT_VERSION, TEMP_PREFIX

TYPE_CHECKING = False  # no typing or dataclasses: `cache stats` reads this
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

#: The names site_scons/site_tools/simpler_cachedir.py uses (a test keeps them equal).
SCONS_DIR = "scons"
RECORD_SUFFIX = ".simpler-digest"
LOCK_NAME = ".simpler-lock"
QUARANTINE_DIR = "quarantine"
_UPPER_HEX = frozenset("0123456789ABCDEF")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

PART_NAMES = ("store", "store_quarantine", "scons", "scons_quarantine", "other")


class Part(Record):
    """Files and bytes (apparent sizes of regular files) of one part of the root."""

    _fields = ("files", "bytes")
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {"files": 0, "bytes": 0}
    files: int
    bytes: int

    def to_json(self) -> dict[str, int]:
        return {"files": self.files, "bytes": self.bytes}


class RootUsage(Record):
    """Every part of the root (PART_NAMES) and its files and bytes."""

    _fields = ("parts",)
    __slots__ = _fields
    parts: dict[str, Part]

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts.values())

    def to_json(self) -> dict[str, Any]:
        return {name: self.parts[name].to_json() for name in PART_NAMES}


class SconsEntry(Record):
    """An SCons CacheDir entry, as gc sees it."""

    _fields = ("path", "size", "last_used", "seen")
    __slots__ = _fields
    path: Path
    #: Entry plus digest record.
    size: int
    last_used: float
    seen: tuple[int, int, int, int]


def scons_dir(root: Path) -> Path:
    return root / SCONS_DIR


def _tree(path: Path) -> tuple[int, int]:
    """(files, bytes) of the regular files under `path`, never following a symlink."""
    files = size = 0
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0
    if stat.S_ISREG(st.st_mode):
        return 1, st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0, 0
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for item in it:
                    try:
                        if item.is_dir(follow_symlinks=False):
                            stack.append(item.path)
                        elif item.is_file(follow_symlinks=False):
                            files += 1
                            size += item.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return files, size


def usage(root: Path) -> RootUsage:
    """Every byte under `root`, by part (anything unaccounted for is `other`)."""
    base = root / f"v{FORMAT_VERSION}"
    sc = scons_dir(root)
    parts: dict[str, tuple[int, int]] = dict.fromkeys(PART_NAMES, (0, 0))
    parts["store_quarantine"] = _tree(base / "quarantine")
    store = _tree(base)
    parts["store"] = (
        store[0] - parts["store_quarantine"][0],
        store[1] - parts["store_quarantine"][1],
    )
    parts["scons_quarantine"] = _tree(sc / QUARANTINE_DIR)
    scons = _tree(sc)
    parts["scons"] = (
        scons[0] - parts["scons_quarantine"][0],
        scons[1] - parts["scons_quarantine"][1],
    )
    whole = _tree(root)
    parts["other"] = (whole[0] - store[0] - scons[0], whole[1] - store[1] - scons[1])
    return RootUsage({k: Part(*v) for k, v in parts.items()})


def _prefix_dirs(root: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(scons_dir(root)) as it:
            items = sorted(it, key=lambda d: d.name)
    except OSError:
        return
    for item in items:
        if _is_prefix(item.name) and item.is_dir(follow_symlinks=False):
            yield item


def _is_prefix(name: str) -> bool:
    """SCons's directory names: the first two hex digits of a signature, upper case."""
    return len(name) == 2 and set(name) <= _UPPER_HEX


def scons_entries(root: Path) -> list[SconsEntry]:
    """Every entry of the SCons CacheDir (regular files only), with its record's bytes."""
    out: list[SconsEntry] = []
    for prefix in _prefix_dirs(root):
        out += _entries_of(Path(prefix.path))
    return out


def _entries_of(directory: Path) -> list[SconsEntry]:
    out: list[SconsEntry] = []
    try:
        with os.scandir(directory) as it:
            items = list(it)
    except OSError:
        return out
    names = {i.name for i in items}
    for item in items:
        if item.name.startswith(".") or item.name.endswith(RECORD_SUFFIX):
            continue
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        size = st.st_size
        if item.name + RECORD_SUFFIX in names:
            with contextlib.suppress(OSError):
                size += os.lstat(item.path + RECORD_SUFFIX).st_size
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        out.append(SconsEntry(Path(item.path), size, st.st_mtime, seen))
    return out


def scons_entries_in(directory: Path, name: str) -> SconsEntry | None:
    """The entry `name` of one CacheDir directory as it is now, or None."""
    for entry in _entries_of(directory):
        if entry.path.name == name:
            return entry
    return None


@contextlib.contextmanager
def _try_prefix_lock(directory: Path) -> Iterator[bool]:
    """The push lock of one CacheDir directory, without waiting (True when taken)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


REMOVED = "removed"
BUSY = "busy"
CHANGED = "changed"


def remove_scons_entry(entry: SconsEntry) -> str:
    """Remove an entry, then its record, under its directory's push lock.

    Returns REMOVED; BUSY when a push holds the lock; CHANGED when the entry is
    gone or is not the file listed (pushed again, or used by a build since:
    no longer the least recently used).
    """
    with _try_prefix_lock(entry.path.parent) as held:
        if not held:
            return BUSY
        try:
            st = os.lstat(entry.path)
        except FileNotFoundError:
            return CHANGED
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != entry.seen:
            return CHANGED
        os.unlink(entry.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{entry.path}{RECORD_SUFFIX}")
    return REMOVED


def _age(st: os.stat_result, now: float) -> float:
    return now - st.st_mtime


def sweep_scons(root: Path, grace: float, keep: float) -> tuple[int, int, list[str]]:
    """Remove push temp files older than `grace`, records without an entry (under the
    lock), and quarantined entries older than `keep`.

    Returns (temp files removed, quarantined entries removed, problems as lines).
    """
    now = time.time()
    temps = quarantined = 0
    problems: list[str] = []
    for prefix in _prefix_dirs(root):
        directory = Path(prefix.path)
        try:
            with os.scandir(directory) as it:
                items = list(it)
        except OSError as exc:
            problems.append(f"{directory}: cannot list: {exc.strerror or exc}")
            continue
        names = {i.name for i in items}
        for item in items:
            path = Path(item.path)
            try:
                st = os.lstat(path)
                if item.name.startswith(TEMP_PREFIX) and _age(st, now) > grace:
                    _remove_any(path)
                    temps += 1
                elif item.name.endswith(RECORD_SUFFIX):
                    entry = item.name.removesuffix(RECORD_SUFFIX)
                    if entry in names:
                        continue
                    with _try_prefix_lock(directory) as held:
                        if held and not os.path.lexists(directory / entry):
                            os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
    qdir = scons_dir(root) / QUARANTINE_DIR
    with contextlib.suppress(OSError), os.scandir(qdir) as it:
        for item in list(it):
            try:
                if _age(os.lstat(item.path), now) > keep:
                    _remove_any(Path(item.path))
                    quarantined += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{item.path}: {exc.strerror or exc}")
    return temps, quarantined, problems


def clear_scons(root: Path) -> tuple[int, int, list[str]]:
    """Remove every SCons CacheDir entry (under its lock) and its quarantine.

    Returns (entries removed, entries skipped because a push held the lock, problems).
    """
    removed = skipped = 0
    problems: list[str] = []
    for entry in scons_entries(root):
        try:
            outcome = remove_scons_entry(entry)
            if outcome == REMOVED:
                removed += 1
            elif outcome == BUSY:
                skipped += 1
            elif os.path.lexists(entry.path):  # pushed again meanwhile: remove that one too
                again = scons_entries_in(entry.path.parent, entry.path.name)
                if again is not None and remove_scons_entry(again) == REMOVED:
                    removed += 1
        except OSError as exc:
            problems.append(f"{entry.path}: {exc.strerror or exc}")
    qdir = scons_dir(root) / QUARANTINE_DIR
    with contextlib.suppress(OSError), os.scandir(qdir) as it:
        for item in list(it):
            try:
                _remove_any(Path(item.path))
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{item.path}: {exc.strerror or exc}")
    return removed, skipped, problems


def _remove_any(path: Path) -> None:
    """A file or a whole directory, never through a symlink (rmtree works by descriptor)."""
    if stat.S_ISDIR(os.lstat(path).st_mode):
        import shutil  # only when a quarantine is swept: shutil imports bz2, lzma, ...

        shutil.rmtree(path)
    else:
        os.unlink(path)


__all__ = [
    "BUSY",
    "CHANGED",
    "PART_NAMES",
    "REMOVED",
    "Part",
    "RootUsage",
    "SconsEntry",
    "clear_scons",
    "remove_scons_entry",
    "scons_dir",
    "scons_entries",
    "sweep_scons",
    "usage",
]
