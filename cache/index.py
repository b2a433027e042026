"""Persistent stat index: (device, inode, size, mtime_ns, ctime_ns) -> fingerprint.

`warm` checks every binary a manifest names against its recorded
fingerprint.  The per-process memo (fingerprint.py) only helps within one
process; this index, kept in the cache root and shared by every process,
lets a new process trust an unchanged file's fingerprint from one `stat`,
the way git's index and ccache's manifests do.  Format and rules: FORMAT.md,
"Stat index".

- A line is ``<dev> <ino> <size> <mtime_ns> <ctime_ns> <fp> <check>``, where
  ``<check>`` is XXH3-64 of everything before it.  A torn or damaged line
  fails the check and is ignored: it can only cost a re-hash.
- An entry is recorded only from the descriptor that was hashed, only when
  its stat was the same before and after the hash, and only when both mtime
  and ctime are at least `RACY_NS` older than now (git's "racy" rule: a file
  changed again within the filesystem's timestamp granularity could keep the
  same stat).  ctime is in the key because no user call can set it back, so a
  rewrite that restores size and mtime still misses.
- Writers append whole lines with O_APPEND and never lock; a file over
  `MAX_BYTES` is rewritten (temp file + rename) with the entries this process
  used.  A line lost in a race is a re-hash later, nothing more.
- The index never creates the cache root: without one, nothing is recorded.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from contextlib import suppress

import xxhash

from simpler_build.cache.fingerprint import is_fingerprint

INDEX_NAME = "stat-index-v1.log"
#: Git's racy window: mtime or ctime this close to now is not trusted.
RACY_NS = 2_000_000_000
#: Above this size the next writer rewrites the file with the entries it used.
MAX_BYTES = 4 << 20
_READ_LIMIT = 2 * MAX_BYTES
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _line(key: str, fp: str) -> str:
    payload = f"{key} {fp}"
    return f"{payload} {xxhash.xxh3_64_hexdigest(payload.encode())}\n"


class StatIndex:
    """The stat index of one cache root (loaded once per process, on first lookup)."""

    def __init__(self, root: str | os.PathLike[str], clock: Callable[[], int] = time.time_ns):
        self.root = os.fspath(root)
        self.path = os.path.join(self.root, INDEX_NAME)
        self.clock = clock
        self._entries: dict[str, str] | None = None  # key -> the whole verified-on-use line
        self._used: dict[str, str] = {}  # key -> fp of every entry this process used or made
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "recorded": 0}

    def _read(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            return os.read(fd, _READ_LIMIT)
        except OSError:
            return b""
        finally:
            os.close(fd)

    def _load(self) -> dict[str, str]:
        if self._entries is None:
            entries: dict[str, str] = {}
            try:
                text = self._read().decode("ascii")
            except UnicodeDecodeError:
                text = ""
            for line in text.split("\n"):
                parts = line.split(" ")
                if len(parts) == 7:
                    entries[" ".join(parts[:5])] = line
            self._entries = entries
        return self._entries

    def lookup(self, st: os.stat_result) -> str | None:
        """The fingerprint recorded for a file with exactly this stat, or None."""
        key = _key(st)
        with self._lock:
            line = self._load().get(key)
            fp = None
            if line is not None:
                payload, _, check = line.rpartition(" ")
                candidate = payload.rpartition(" ")[2]
                if xxhash.xxh3_64_hexdigest(payload.encode()) == check and is_fingerprint(
                    candidate
                ):
                    fp = candidate
            if fp is None:
                self.stats["misses"] += 1
                return None
            self.stats["hits"] += 1
            self._used[key] = fp
            return fp

    def trusted(self, st: os.stat_result) -> bool:
        """Whether a file with this stat may be recorded (git's racy rule)."""
        now = self.clock()
        return now - st.st_mtime_ns >= RACY_NS and now - st.st_ctime_ns >= RACY_NS

    def record(self, before: os.stat_result, after: os.stat_result, fp: str) -> None:
        """Remember `fp` for a file hashed between the stats `before` and `after`."""
        key = _key(before)
        if key != _key(after) or not stat.S_ISREG(before.st_mode) or not self.trusted(before):
            return
        with self._lock:
            if self._used.get(key) == fp:
                return
            self._used[key] = fp
            self._pending.append(_line(key, fp))
            self.stats["recorded"] += 1

    def flush(self) -> None:
        """Append what was recorded (best effort: the index only saves work)."""
        with self._lock:
            lines, self._pending = self._pending, []
            if not lines or not os.path.isdir(self.root):
                return
            data = "".join(lines).encode("ascii")
            try:
                size = os.lstat(self.path).st_size
            except OSError:
                size = 0
            try:
                if size + len(data) > MAX_BYTES:
                    self._rewrite()
                else:
                    self._append(data)
            except OSError:
                pass

    def _append(self, data: bytes) -> None:
        fd = os.open(
            self.path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK,
            0o644,
        )
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.write(fd, data)  # one write: appenders never interleave within it
        finally:
            os.close(fd)

    def _rewrite(self) -> None:
        data = "".join(_line(k, fp) for k, fp in self._used.items()).encode("ascii")
        tmp = os.path.join(self.root, f".tmp-statindex-{os.getpid()}-{os.urandom(6).hex()}")
        from simpler_build.cache.atomic import open_locked_temp

        fd = open_locked_temp(tmp)  # locked until renamed: gc can tell a dead writer's
        try:
            try:
                os.write(fd, data)
                os.rename(tmp, self.path)
            finally:
                os.close(fd)
        except OSError:
            with suppress(OSError):
                os.unlink(tmp)
            raise


__all__ = ["INDEX_NAME", "MAX_BYTES", "RACY_NS", "StatIndex"]
