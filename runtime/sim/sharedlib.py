"""dlopen of device-side code from verified bytes, the way the device's loader would.

Code is always loaded from a private copy written from bytes already in
(simulated) device memory, never from a path someone else may rewrite: what
was checked is exactly what runs.  RTLD_LOCAL keeps one SO's symbols from
resolving another's.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import os
import tempfile
from pathlib import Path


class SharedLib:
    """A dlopened private copy; `close()` dlcloses it."""

    def __init__(self, data: bytes | memoryview, label: str, workdir: Path | None = None) -> None:
        self.label = label
        fd, tmp = tempfile.mkstemp(prefix=f"{label}.", suffix=".so", dir=workdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._lib = ctypes.CDLL(tmp, mode=os.RTLD_LOCAL | os.RTLD_NOW)
        finally:
            # The mapping outlives the name; nothing can swap the code underneath.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._handle: int | None = self._lib._handle

    def symbol(self, name: str) -> int | None:
        """Address of the exported symbol `name`, or None when it is not exported."""
        try:
            return ctypes.cast(getattr(self._lib, name), ctypes.c_void_p).value
        except AttributeError:
            return None

    def close(self) -> None:
        if self._handle is not None:
            _ctypes.dlclose(self._handle)
            self._handle = None
