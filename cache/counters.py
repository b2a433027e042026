"""Process-shared statistics counters: one small JSON file, updated under flock.

A `get` must stay cheap, so `Counters.bump` only adds to a per-process
tally in memory.  The tally is written to the file -- open, flock, read ~200
bytes, rewrite in place, close, no fsync -- when the process exits (`atexit`,
and a `multiprocessing` finalizer because multiprocessing children leave by
`os._exit`, which skips atexit), at most `FLUSH_INTERVAL` seconds after the
oldest unwritten increment (on the next bump), and before this process reads
the counters (`Counters.read`, so `stats` in one process sees its own gets).
`flush_all()` writes every root's tally at once.

The page cache is shared by all processes, so the file stays exact across
processes that exit normally; a process killed by a signal (SIGKILL) loses
the increments it had not written, and a machine crash may lose recent ones.
A forked child starts with an empty tally (the parent's belong to the parent).
The lock is flock(2) on the counters file itself.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from simpler_build.files import NotRegularFile

COUNTER_NAMES = (
    "hits",
    "misses",
    "added",
    "evictions",
    "corruptions",
    "bytes_added",
    "bytes_evicted",
    # The remote tier (docs/architecture.md "Remote tier"): objects pulled and verified,
    # asked for but absent, failed requests, pulled but refused, and bytes.
    "remote_hits",
    "remote_misses",
    "remote_errors",
    "remote_rejected",
    "bytes_pulled",
    "bytes_pushed",
    # gc: runs that evicted anything (ccache's cleanups_performed), and entries of the
    # SCons CacheDir under the same root it evicted (FORMAT.md "Whole-root bound").
    "cleanups",
    "scons_evictions",
    "bytes_scons_evicted",
)
#: Seconds since the epoch (ccache's names): the last update of the file, the last `zero`.
TIMESTAMP_NAMES = ("stats_updated_timestamp", "stats_zeroed_timestamp")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _require_regular(path: Path, fd: int) -> None:
    """A FIFO or device at the counters' name is refused (OSError), never read or locked."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)


def _decode(raw: bytes) -> dict[str, int]:
    """Counters and timestamps from file bytes; unreadable content (a torn update after a
    crash) counts as 0."""
    counts: dict[str, int] = dict.fromkeys(COUNTER_NAMES + TIMESTAMP_NAMES, 0)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return counts
    if isinstance(data, dict):
        for name in COUNTER_NAMES + TIMESTAMP_NAMES:
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts[name] = value
    return counts


def _encode(counts: dict[str, int]) -> bytes:
    return (json.dumps({"format": 1, **counts}, sort_keys=True) + "\n").encode()


#: Write a process's tally at the latest this long after its oldest unwritten
#: increment (checked on the next bump), so a long-lived process's hits show up.
FLUSH_INTERVAL = 1.0

_lock = threading.Lock()
#: counters file -> unwritten deltas, and the callback that creates its tree.
_pending: dict[str, dict[str, int]] = {}
_prepare: dict[str, Callable[[], None]] = {}
_oldest: float | None = None
_registered = False


def _register_exit_flush() -> None:
    """Flush at exit: atexit for ordinary exits, a multiprocessing finalizer for
    multiprocessing children (they end with os._exit after running finalizers)."""
    global _registered
    if _registered:
        return
    _registered = True
    atexit.register(flush_all)
    if "multiprocessing" in sys.modules:  # never import it just for this
        from multiprocessing.util import Finalize

        Finalize(None, flush_all, exitpriority=100)


def _after_fork_in_child() -> None:
    """The parent's tally is the parent's; a forked child starts empty and registers
    its own exit flush (multiprocessing clears the finalizers it inherits)."""
    global _lock, _oldest, _registered
    _lock = threading.Lock()
    _pending.clear()
    _oldest = None
    _registered = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _write(path: str, deltas: dict[str, int]) -> None:
    """Add `deltas` to the file atomically with respect to other processes.

    Raises OSError (e.g. FileNotFoundError when the cache tree does not exist yet).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK, 0o644)
    try:
        _require_regular(Path(path), fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 4096, 0)
        counts = _decode(raw)
        for name, delta in deltas.items():
            counts[name] = counts.get(name, 0) + delta
        counts["stats_updated_timestamp"] = int(time.time())
        payload = _encode(counts)
        os.pwrite(fd, payload, 0)
        if len(payload) < len(raw):  # counters only grow, so this is rare
            os.ftruncate(fd, len(payload))
    finally:
        os.close(fd)  # releases the flock


def _flush_path(path: str, deltas: dict[str, int]) -> None:
    """Write one root's tally; best effort (statistics never fail anything)."""
    try:
        _write(path, deltas)
    except FileNotFoundError:
        prepare = _prepare.get(path)
        if prepare is None:
            return
        try:
            prepare()
            _write(path, deltas)
        except Exception:
            pass
    except OSError:
        pass


def _take(path: str | None) -> dict[str, dict[str, int]]:
    """Remove and return the unwritten tallies (of `path`, or of every file)."""
    global _oldest
    with _lock:
        if path is None:
            taken = dict(_pending)
            _pending.clear()
        else:
            taken = {path: _pending.pop(path)} if path in _pending else {}
        if not _pending:
            _oldest = None
    return taken


def flush_all() -> None:
    """Write every unwritten increment of this process (exit, tests, benchmarks)."""
    for path, deltas in _take(None).items():
        _flush_path(path, deltas)


class Counters:
    """The counters file of one cache root.

    `prepare` is called when the file's directory is missing at a flush (the
    store passes the function that creates its tree).
    """

    def __init__(self, path: Path, prepare: Callable[[], None] | None = None) -> None:
        self.path = path
        self._key = os.fspath(path)
        if prepare is not None:
            _prepare[self._key] = prepare

    def bump(self, **deltas: int) -> None:
        """Add `deltas` to this process's tally (written later; see the module doc)."""
        global _oldest
        now = time.monotonic()
        with _lock:
            tally = _pending.get(self._key)
            if tally is None:
                tally = _pending[self._key] = {}
            for name, delta in deltas.items():
                tally[name] = tally.get(name, 0) + delta
            if _oldest is None:
                _oldest = now
            due = now - _oldest >= FLUSH_INTERVAL
            if not _registered:
                _register_exit_flush()
        if due:
            flush_all()

    def flush(self) -> None:
        """Write this file's unwritten increments now."""
        for path, deltas in _take(self._key).items():
            _flush_path(path, deltas)

    def zero(self) -> None:
        """Reset every counter to 0 and stamp `stats_zeroed_timestamp` (`stats --zero`).

        This process's unwritten increments are dropped with the rest; other
        processes' later increments count from zero.
        """
        _take(self._key)
        now = int(time.time())
        counts: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        counts.update(stats_updated_timestamp=now, stats_zeroed_timestamp=now)
        flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            prepare = _prepare.get(self._key)
            if prepare is None:
                raise
            prepare()
            fd = os.open(self.path, flags, 0o644)
        try:
            _require_regular(self.path, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            payload = _encode(counts)
            os.pwrite(fd, payload, 0)
            os.ftruncate(fd, len(payload))
        finally:
            os.close(fd)

    def read(self) -> dict[str, int]:
        """A consistent snapshot of every counter (zeros when there is no file yet),
        including this process's increments (written first)."""
        self.flush()
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return dict.fromkeys(COUNTER_NAMES + TIMESTAMP_NAMES, 0)
            raise
        try:
            _require_regular(self.path, fd)
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _decode(os.pread(fd, 4096, 0))
        finally:
            os.close(fd)


__all__ = ["COUNTER_NAMES", "FLUSH_INTERVAL", "TIMESTAMP_NAMES", "Counters", "flush_all"]
