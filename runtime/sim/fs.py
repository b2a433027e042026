"""The simulated device filesystem, shared by every process using the same device id.

Root: `SIMPLER_SIM_ROOT`, else `<user state dir>/sim` (e.g.
`~/.local/state/simpler-build/sim`); device N's filesystem lives in
`<root>/device<N>/`, except that the dies of one chip share one filesystem
(`profiles.py` topology): on a2a3, devices 2k and 2k+1 both live in
`<root>/device<2k>/`.  The dispatcher preinstalls inner SOs into its
`preinstall/` directory as `simpler_inner_<fp>_<device_id>.so` (upstream
#890), which a second process finds with the device-side probe.

`PreinstallLock` is how host processes share that directory safely: it tells
a crashed writer's temp files from a live one's, and clears a FIFO or device
node from a name the dispatcher would open (and block on).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import weakref
from pathlib import Path
from types import TracebackType

from simpler_build import device as _layout
from simpler_build.device import (
    SIM_ROOT_ENV,
    installed_fingerprint,
    is_dispatcher_temp,
    sim_root,
)
from simpler_build.files import NotRegularFile, kind_of

__all__ = [  # and DISPATCHER_TEMP and INSTALLED_SO, through __getattr__
    "SIM_ROOT_ENV",
    "installed_fingerprint",
    "is_dispatcher_temp",
    "sim_root",
]


def __getattr__(name: str) -> object:
    """DISPATCHER_TEMP and INSTALLED_SO, compiled on first use (`simpler_build.device`)."""
    if name in ("DISPATCHER_TEMP", "INSTALLED_SO"):
        return getattr(_layout, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Switch to the content-only name and in-place write #890 replaced; its regression test only.
LEGACY_NAME_ENV = "SIMPLER_SIM_LEGACY_PREINSTALL_NAME"


def legacy_names() -> bool:
    """Whether the legacy content-only preinstall name is switched on (read at call time)."""
    return os.environ.get(LEGACY_NAME_ENV, "") not in ("", "0")


def installed_name(fingerprint: str, device_id: int, legacy: bool = False) -> str:
    """`simpler_inner_<fp>_<device_id>.so`: the die is in the name, as dies share a filesystem."""
    if legacy:
        return f"simpler_inner_{fingerprint}.so"
    return f"simpler_inner_{fingerprint}_{device_id}.so"


def device_dir(device_id: int) -> Path:
    return sim_root() / f"device{device_id}"


def preinstall_dir(device_id: int, arch: str | None = None) -> Path:
    """Where the dispatcher of device `device_id` writes its inner SOs (the dispatcher creates it).

    With `arch`, the topology applies: every die of a chip gets the chip's one directory.
    Without it, the device is taken as a chip of one die.
    """
    if arch is not None:
        from .profiles import profile_for

        device_id = profile_for(arch).filesystem_of(device_id)
    return device_dir(device_id) / "preinstall"


def ensure_directory(path: Path) -> None:
    """Create `path` as a directory; one line naming it when something else is in the way."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return
    except (FileExistsError, NotADirectoryError):
        pass
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    what = kind_of(mode) if mode else "not a directory (a parent is in the way)"
    raise NotADirectoryError(errno.ENOTDIR, f"is {what}, not a directory", str(path))


def sweep_stale(directory: Path) -> list[str]:
    """Remove the dispatcher's temp files in `directory`; only under the exclusive lock.

    Housekeeping never fails a run: what cannot be listed or removed (a
    read-only device filesystem) is left for a later sweep.
    """
    removed = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if is_dispatcher_temp(entry.name) and not entry.is_dir(follow_symlinks=False):
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        continue
                    removed.append(entry.name)
    except OSError:
        pass
    return sorted(removed)


class PreinstallLock:
    """A flock on the preinstall directory itself, held shared by every host process while the
    dispatcher may write into it.

    The dispatcher writes `<name>.tmp.XXXXXX` and renames it; a writer killed in
    between leaves the temp file, and its name carries no pid to ask whether the
    writer lives.  Whoever gets the lock exclusively knows that no writer is
    mid-write, so every temp file present then is stale and is swept.  The kernel
    drops a killed process's flock, and the directory is the lock, so there is no
    lock file to leave behind either.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.swept: list[str] = []
        self._fd: int | None = None
        self._closer: weakref.finalize[[int], PreinstallLock] | None = None

    def __enter__(self) -> PreinstallLock:
        ensure_directory(self.directory)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
        fd = self._fd = os.open(self.directory, flags)
        # Closed (and so unlocked) even if an interrupt skips __exit__: a held lock
        # would stop every later sweep and replacement in this process.
        self._closer = weakref.finalize(self, os.close, fd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # someone is installing: their temp files are not ours to judge
            else:
                self.swept = sweep_stale(self.directory)
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the directory, which drops the lock; idempotent."""
        self._fd = None
        if self._closer is not None:
            self._closer()  # runs os.close at most once

    def make_room(self, path: Path) -> str | None:
        """Remove a FIFO, socket or device node at `path` so the dispatcher can install there.

        The dispatcher opens the installed name before writing (dispatcher.cpp,
        `already_installed`) without O_NONBLOCK: a FIFO there would hang it.  The
        name belongs to the SO, so a special file in its place is not installed and
        is replaced, under the exclusive lock (no writer may be mid-install).  A
        directory there is refused with NotRegularFile.  Returns what was removed.
        """
        assert self._fd is not None, "make_room needs the lock held"
        mode = _lstat_mode(path)
        if mode is None or stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            return None  # absent, a file (verified elsewhere), or a link the rename replaces
        if stat.S_ISDIR(mode):
            raise NotRegularFile(path, mode)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            mode = _lstat_mode(path)
            if mode is None or stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                return None
            if stat.S_ISDIR(mode):
                raise NotRegularFile(path, mode)
            try:
                os.unlink(path)
            except FileNotFoundError:
                return None
            except OSError as exc:  # left in place, it would hang the dispatcher: say so
                raise NotRegularFile(path, mode) from exc
            return kind_of(mode)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_SH)


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None
