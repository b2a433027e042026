"""Opening files that must be regular files, without ever blocking.

A FIFO or a device file opened for reading blocks forever (a FIFO until a
writer appears, a tty until input arrives), so every path the toolkit reads
from a manifest, a build tree or a cache goes through `open_regular`: it
opens with O_NONBLOCK, checks `fstat`, and refuses anything but a regular
file with `NotRegularFile`, whose message says what the path is instead.
"""

from __future__ import annotations

import errno
import os
import stat

from simpler_build.errors import SimplerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink"),
)


def kind_of(mode: int) -> str:
    """'a FIFO', 'a directory', ... for a stat mode that is not a regular file."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


class NotRegularFile(SimplerError, OSError):
    """The path exists but is a FIFO, device, socket or directory, not a regular file."""

    strerror: str  # always set, by __init__: callers quote it as the problem

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self.kind = kind_of(mode)
        super().__init__(errno.EINVAL, f"is {self.kind}, not a regular file", os.fspath(path))


class FileTooLarge(SimplerError, OSError):
    """A file larger than the caller will read into memory (a manifest of gigabytes)."""

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int) -> None:
        super().__init__(
            errno.EFBIG, f"is {size} bytes, more than the {limit} allowed", os.fspath(path)
        )


def open_regular_stat(
    path: str | os.PathLike[str], *, follow_symlinks: bool = True
) -> tuple[int, os.stat_result]:
    """A read-only descriptor of a regular file and its `fstat`; never blocks on a FIFO
    or device.  (Callers that need the stat anyway save a second `fstat`.)"""
    flags = os.O_RDONLY | _O_CLOEXEC | _O_NONBLOCK | (0 if follow_symlinks else _O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        # A socket cannot be opened at all (ENXIO), and O_NOFOLLOW refuses a symlink
        # (ELOOP): say what the path is, not "no such device" or "too many links".
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP, errno.ELOOP):
            mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegularFile(path, mode) from None
        raise
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(path, st.st_mode)
    return fd, st


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> int:
    """A read-only descriptor of a regular file; never blocks on a FIFO or device."""
    return open_regular_stat(path, follow_symlinks=follow_symlinks)[0]


def reused_buffer(local: threading.local, need: int, cap: int) -> bytearray:
    """The calling thread's read buffer in `local`, grown to min(need, cap) bytes.

    Sized to what is read rather than to `cap` at once: `bytearray(n)` zeroes
    all n bytes, and in a fresh process each page zeroed is a page fault, so
    a 1 MiB buffer cost a single 365 KB get more than the hashing did.
    """
    want = min(cap, max(need, 64 << 10))
    buf = getattr(local, "buf", None)
    if buf is None or len(buf) < want:
        buf = local.buf = bytearray(want)
    return buf


def read_regular(path: str | os.PathLike[str], max_size: int | None = None) -> bytes:
    """The whole content of a regular file (refusing one over `max_size` bytes)."""
    return read_regular_stat(path, max_size)[0]


def read_regular_stat(
    path: str | os.PathLike[str], max_size: int | None = None
) -> tuple[bytes, os.stat_result, os.stat_result]:
    """`read_regular`, with the descriptor's `fstat` before and after the read: a caller
    that remembers what it parsed by stat (the stat index) does so only when they agree."""
    fd, st = open_regular_stat(path)
    try:
        size = st.st_size
        if max_size is not None and size > max_size:
            raise FileTooLarge(path, size, max_size)
        parts = []
        remaining = size + 1 if max_size is None else max_size + 1
        while remaining > 0 and (chunk := os.read(fd, min(max(size, 1 << 16), remaining))):
            parts.append(chunk)
            remaining -= len(chunk)
        data = b"".join(parts)
        if max_size is not None and len(data) > max_size:  # grew while being read
            raise FileTooLarge(path, len(data), max_size)
        return data, st, os.fstat(fd)
    finally:
        os.close(fd)


__all__ = [
    "FileTooLarge",
    "NotRegularFile",
    "kind_of",
    "open_regular",
    "open_regular_stat",
    "read_regular",
    "read_regular_stat",
    "reused_buffer",
]
