"""One exception hierarchy for the artifact cache.

Every error carries the path it is about and the problem, and renders as
``<path>: <problem>`` so the command line can print it verbatim
(``simpler-build cache: error: <path>: <problem>``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from simpler_build.errors import SimplerError


class CacheError(SimplerError):
    """Base of every cache error: a path and what is wrong with it."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CacheRootError(CacheError):
    """The cache root cannot be used: not a directory, not writable, under a file."""


class CacheWriteError(CacheError):
    """Publishing an object or its metadata failed (ENOSPC, EIO, quota, ...).

    The store guarantees that existing entries are untouched and that the
    failed write left no temp file behind.
    """


class CacheLockError(CacheError):
    """An entry lock could not be taken within the timeout."""


class UnsafePathError(CacheError):
    """A cache path is a symlink or not a regular file; it is refused, never followed."""


class InvalidFingerprint(CacheError, ValueError):
    """A string that is not 16 lowercase hex digits was used as a fingerprint."""


class FingerprintMismatch(CacheError):
    """The bytes of a file do not hash to the fingerprint they were claimed to have."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        expected: str,
        actual: str,
        context: str = "",
    ) -> None:
        self.expected = expected
        self.actual = actual
        where = f" {context}" if context else ""
        super().__init__(path, f"fingerprint {actual} does not match {expected}{where}")


class SourceError(CacheError):
    """A file to be cached (or the manifest naming it) is missing or unreadable."""


class BinaryUnavailable(CacheError):
    """A binary a manifest names is nowhere: not beside it, not cached, not on a remote."""


#: errno values that mean "you may not write here" rather than "the write failed".
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def classify_os_error(
    path: str | os.PathLike[str],
    exc: OSError,
    doing: str,
    root: str | os.PathLike[str] | None = None,
) -> CacheError:
    """Map an OSError raised while mutating the cache to the matching CacheError.

    Permission problems are reported against the cache root (that is what the
    user must fix); everything else against the file being written.
    """
    reason = exc.strerror or str(exc)
    if exc.errno in _NOT_WRITABLE:
        where = root if root is not None else path
        detail = f"{doing} {path}" if root is not None else doing
        return CacheRootError(where, f"cache root not writable ({detail}: {reason})")
    if exc.errno == errno.ENOTDIR:
        where = root if root is not None else path
        return CacheRootError(where, f"not a directory ({doing}: {reason})")
    if exc.errno == errno.ELOOP:
        return UnsafePathError(path, f"is a symlink; refusing to follow it ({doing})")
    return CacheWriteError(path, f"{doing} failed: {reason}")


__all__ = [
    "BinaryUnavailable",
    "CacheError",
    "CacheLockError",
    "CacheRootError",
    "CacheWriteError",
    "FingerprintMismatch",
    "InvalidFingerprint",
    "SourceError",
    "UnsafePathError",
    "classify_os_error",
]
