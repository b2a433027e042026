"""Crash-safe publication and symlink-safe reads.

A file is published by writing a temp file in the destination directory,
fsyncing it, setting its final mode, renaming it over the final name and
fsyncing the directory.  A reader therefore sees either no file or the whole
file, and a crash leaves at most a ``.tmp-*`` file that gc sweeps.  Reads go
through ``O_NOFOLLOW`` so a symlink planted at a cache path is refused, never
followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import xxhash

from simpler_build.cache.errors import UnsafePathError
from simpler_build.files import NotRegularFile, open_regular_stat, reused_buffer

CHUNK = 1 << 20
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _write_chunk(fd: int, chunk: memoryview) -> None:
    """Write one chunk completely.  A module-level seam: tests patch it to inject
    ENOSPC or to slow a writer down so it can be killed mid-write."""
    while chunk:
        written = os.write(fd, chunk)
        chunk = chunk[written:]


def _open_temp(path: Path) -> int:
    """Create a temp file exclusively and lock it.  A seam like _write_chunk: tests inject
    EACCES here."""
    return open_locked_temp(path, 0o600)


def open_locked_temp(path: str | Path, mode: int = 0o644) -> int:
    """Create `path` exclusively and hold an exclusive flock on it until the descriptor closes.

    cache/FORMAT.md "Writing (publish protocol)": a writer keeps its temp file locked from creation
    until after the rename, so gc can tell a dead writer's leftover (lock free) from
    a live one's (lock held) at once, without waiting out the age grace.
    """
    import fcntl

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return fd


def writer_gone(path: str | Path) -> bool:
    """True when nobody holds the flock of temp file `path` (its writer died or finished)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write `data` to `fd` in CHUNK-sized pieces."""
    view = memoryview(data).cast("B")
    for start in range(0, len(view), CHUNK):
        _write_chunk(fd, view[start : start + CHUNK])


def open_nofollow_stat(path: str | Path) -> tuple[int, os.stat_result]:
    """Open a regular file for reading without following a symlink at its last component;
    returns the descriptor and its `fstat`.

    One mechanism with the rest of the toolkit (`simpler_build.files.open_regular`:
    O_NONBLOCK, so a FIFO planted at a cache path is refused, not waited on).
    Raises UnsafePathError for a symlink or a non-regular file; other
    OSErrors (ENOENT, ENOTDIR, ...) propagate unchanged for the caller to map.
    """
    try:
        return open_regular_stat(path, follow_symlinks=False)
    except NotRegularFile as exc:
        if exc.kind == "a symlink":
            raise UnsafePathError(path, "is a symlink; refusing to follow it") from None
        raise UnsafePathError(path, f"is {exc.kind}, not a regular file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(path, "is a symlink; refusing to follow it") from None
        raise


def open_nofollow(path: str | Path) -> int:
    """open_nofollow_stat without the stat."""
    return open_nofollow_stat(path)[0]


def read_nofollow(path: Path) -> bytes:
    """Whole contents of a regular file, refusing symlinks (see open_nofollow)."""
    fd = open_nofollow(path)
    try:
        size = os.fstat(fd).st_size
        parts: list[bytes] = []
        while chunk := os.read(fd, max(CHUNK, size + 1)):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


_buffers = threading.local()


def hash_fd(fd: int) -> str:
    """XXH3-64 of everything left in `fd`, read into a reused per-thread buffer.

    Reading into one buffer instead of allocating a bytes object per read
    makes a verified get of a 365 KB object about three times cheaper.
    """
    buf = reused_buffer(_buffers, os.fstat(fd).st_size + 1, CHUNK)
    view = memoryview(buf)
    hasher = xxhash.xxh3_64()
    while n := os.readv(fd, [buf]):
        hasher.update(view[:n])
    return hasher.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def publish(final: Path, temp_name: str, fill: Callable[[int], None], mode: int) -> None:
    """Atomically create or replace `final` with what `fill(fd)` writes.

    The temp file lives beside `final` (same filesystem, so rename is atomic)
    and is removed on every failure path, including KeyboardInterrupt.  The
    caller holds the entry lock and has refused a symlink at `final`.
    """
    directory = final.parent
    temp = directory / temp_name
    fd = _open_temp(temp)
    try:
        try:
            fill(fd)
            os.fsync(fd)
            os.fchmod(fd, mode)
            os.replace(temp, final)  # still locked: gc never takes a live writer's temp file
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(directory)


def publish_bytes(final: Path, temp_name: str, data: bytes, mode: int) -> None:
    """publish() for an in-memory payload."""
    publish(final, temp_name, lambda fd: write_all(fd, data), mode)


__all__ = [
    "CHUNK",
    "fsync_dir",
    "hash_fd",
    "open_locked_temp",
    "open_nofollow",
    "open_nofollow_stat",
    "publish",
    "publish_bytes",
    "read_nofollow",
    "write_all",
    "writer_gone",
]
