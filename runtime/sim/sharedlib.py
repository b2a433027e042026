"""dlopen of device-side code from verified bytes, the way the device's loader would.

Code is always loaded from a private copy written from bytes already in
(simulated) device memory, never from a path someone else may rewrite: what
was checked is exactly what runs.  The copy is an anonymous, sealed memfd
dlopened through `/proc/self/fd/N`: it has no name in any directory, so a
Ctrl-C or a SIGKILL at any moment leaves no file behind, and the seals refuse
writes from anyone who reaches it through /proc.  RTLD_LOCAL keeps one SO's
symbols from resolving another's.  Loading and lookups go through `_ctypes`'
dlopen/dlsym/dlclose, not `ctypes.CDLL`: a CDLL object builds a class of its own,
and every first run loads three SOs (and probes each path twice).

The dynamic loader matches a dlopen path against the names of libraries it
already holds *before* it looks at the file, so `/proc/self/fd/N` must never
name two libraries: a descriptor is closed only once no library is
registered under its path any more, and a path still registered is skipped.
"""

from __future__ import annotations

import _ctypes
import fcntl
import io
import os

_MODE = os.RTLD_LOCAL | os.RTLD_NOW
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
#: Copies whose path a library still holds (a dlclose that did not unload): never closed.
_pinned: list[io.FileIO] = []


def path_of(copy: io.FileIO) -> str:
    """The path that reaches an open anonymous file (dlopen and the op JSON's reader use it)."""
    return f"/proc/self/fd/{copy.fileno()}"


def registered(path: str) -> bool:
    """Whether the dynamic loader holds a library under `path` (RTLD_NOLOAD never loads)."""
    try:
        handle = _ctypes.dlopen(path, os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    _ctypes.dlclose(handle)
    return True


def anonymous_file(label: str, data: bytes | memoryview) -> io.FileIO:
    """A sealed memfd holding `data`, open for reading; closing it is idempotent."""
    fd = os.memfd_create(label, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        return open(fd, "rb", buffering=0)  # the caller owns (and closes) it
    except BaseException:
        os.close(fd)
        raise


def _fresh_copy(data: bytes | memoryview, label: str) -> io.FileIO:
    """An anonymous copy whose /proc path names no library yet."""
    while True:
        copy = anonymous_file(label, data)
        if not registered(path_of(copy)):
            return copy
        _pinned.append(copy)  # that number's name is taken: keep it out of use


class SharedLib:
    """A dlopened private copy; `close()` dlcloses it and closes the copy."""

    def __init__(self, data: bytes | memoryview, label: str) -> None:
        self.label = label
        self._handle: int | None = None
        self._copy: io.FileIO | None = None
        try:
            self._copy = _fresh_copy(data, label)
            self._handle = _ctypes.dlopen(path_of(self._copy), _MODE)
        except BaseException:
            self.close()
            raise

    def symbol(self, name: str) -> int | None:
        """Address of the exported symbol `name`, or None when it is not exported."""
        handle = self._handle
        if handle is None:  # closed: as a closed CDLL's lookups fail, so does this one
            raise ValueError(f"{self.label}: symbol lookup after close()")
        try:
            return _ctypes.dlsym(handle, name) or None
        except OSError:
            return None

    def close(self) -> None:
        """dlclose, then close the copy; idempotent, and resumable after an interrupt."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _ctypes.dlclose(handle)
        copy = self._copy
        if copy is not None:
            if not copy.closed and registered(path_of(copy)):
                _pinned.append(copy)
            else:
                copy.close()
            self._copy = None
