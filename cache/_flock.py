"""A blocking flock(2) with a timeout, that never sleep-polls.

The store's entry locks are `flock(LOCK_EX)` on `v1/locks/<xx>/<fp>.lock`
(FORMAT.md, "Locks"); a C writer takes the same lock with
`open(O_RDWR|O_CREAT)` + `flock`.  Python's `fcntl.flock` has no timeout, and
`filelock` waits by retrying `LOCK_NB` after a sleep, so a waiter wakes late
(up to one poll interval) or burns CPU.  Here a waiter first tries `LOCK_NB`
(the uncontended case costs one syscall) and otherwise blocks in `flock`
itself, on a helper thread, while the caller waits on an event with the
timeout.  The kernel wakes the helper the moment the holder releases.  On a
timeout the caller abandons the attempt and the helper, once its `flock`
returns, closes the descriptor, which releases the lock at once: an abandoned
wait never keeps a lock.

A waiter that wins the lock on an inode that was unlinked meanwhile (gc
removes a lock file while holding it) or replaced at the path notices
(`st_nlink == 0`, or a different inode at the path) and starts again, as
filelock does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time

from simpler_build.errors import SimplerError

_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)
)
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


class LockTimeout(SimplerError):
    """The lock was still held by someone else when the timeout ran out."""


def _open(path: str) -> int:
    try:
        fd = os.open(path, _FLAGS, 0o644)
    except FileNotFoundError:  # the lock shard does not exist yet
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, _FLAGS, 0o644)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO or device is not a lock anyone can hold
            raise OSError(errno.EINVAL, "lock name is not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def _wait(fd: int, timeout: float) -> bool:
    """Block in flock on a helper thread for at most `timeout` seconds.

    Returns True when `fd` holds the lock.  On False the descriptor belongs to
    the helper, which closes it (releasing the lock if it ever got it).
    """
    done = threading.Event()
    guard = threading.Lock()
    state: dict[str, object] = {"abandoned": False, "error": None}

    def block() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException as exc:
            state["error"] = exc
        with guard:
            if state["abandoned"]:
                os.close(fd)
        done.set()

    helper = threading.Thread(target=block, name="simpler-flock-wait", daemon=True)
    helper.start()
    try:
        done.wait(timeout)
    finally:
        with guard:
            if not done.is_set():
                state["abandoned"] = True
                abandoned = True
            else:
                abandoned = False
    if abandoned:
        return False
    error = state["error"]
    if error is not None:
        os.close(fd)
        raise error  # type: ignore[misc]
    return True


def _still_linked(fd: int, path: str) -> bool:
    held = os.fstat(fd)
    if held.st_nlink == 0:
        return False
    try:
        return os.path.samestat(os.lstat(path), held)
    except FileNotFoundError:
        return False


def acquire(path: str | os.PathLike[str], timeout: float) -> int:
    """Open `path` and hold `flock(LOCK_EX)` on it; returns the descriptor.

    `timeout` 0 tries once (LockTimeout when busy); otherwise waits at most
    `timeout` seconds, blocked in the kernel.  Release with `release(fd)`.
    """
    name = os.fspath(path)
    deadline = time.monotonic() + timeout
    while True:
        fd = _open(name)
        try:
            locked = _try(fd)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            remaining = deadline - time.monotonic()
            if timeout <= 0 or remaining <= 0:
                os.close(fd)
                raise LockTimeout(name)
            if not _wait(fd, remaining):
                raise LockTimeout(name)
        try:
            if _still_linked(fd, name):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # won a lock file someone removed or replaced: take the new one


def release(fd: int) -> None:
    """Drop the lock (closing the descriptor releases the flock)."""
    os.close(fd)


__all__ = ["LockTimeout", "acquire", "release"]
