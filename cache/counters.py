"""Process-shared statistics counters: one small JSON file updated under flock.

Every `get` bumps a counter, so an update must be cheap: open, flock, read
~200 bytes, rewrite in place, close -- no fsync.  The page cache is shared by
all processes, so concurrent updates are exact; a machine crash may lose the
last few increments, which is acceptable for statistics (never for objects).
The lock is flock(2) on the counters file itself, the same primitive filelock
uses for entry locks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
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
)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _require_regular(path: Path, fd: int) -> None:
    """A FIFO or device at the counters' name is refused (OSError), never read or locked."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)


def _decode(raw: bytes) -> dict[str, int]:
    """Counters from file bytes; unreadable content (a torn update after a crash) counts as 0."""
    counts = dict.fromkeys(COUNTER_NAMES, 0)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return counts
    if isinstance(data, dict):
        for name in COUNTER_NAMES:
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts[name] = value
    return counts


def _encode(counts: dict[str, int]) -> bytes:
    return (json.dumps({"format": 1, **counts}, sort_keys=True) + "\n").encode()


class Counters:
    """The counters file of one cache root."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bump(self, **deltas: int) -> None:
        """Add `deltas` atomically with respect to other processes.

        Raises OSError (e.g. FileNotFoundError when the cache tree does not
        exist yet); callers on the read path ignore failures.
        """
        fd = os.open(
            self.path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK, 0o644
        )
        try:
            _require_regular(self.path, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 4096, 0)
            counts = _decode(raw)
            for name, delta in deltas.items():
                counts[name] = counts.get(name, 0) + delta
            payload = _encode(counts)
            os.pwrite(fd, payload, 0)
            if len(payload) < len(raw):  # counters only grow, so this is rare
                os.ftruncate(fd, len(payload))
        finally:
            os.close(fd)  # releases the flock

    def read(self) -> dict[str, int]:
        """A consistent snapshot of every counter (zeros when there is no file yet)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return dict.fromkeys(COUNTER_NAMES, 0)
            raise
        try:
            _require_regular(self.path, fd)
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _decode(os.pread(fd, 4096, 0))
        finally:
            os.close(fd)


__all__ = ["COUNTER_NAMES", "Counters"]
