"""The simulator's C launch helper (`_launch.c`): compiled once per user, loaded on first use.

Launch threads are pthreads parked on futexes (docs/simulated-device.md "Launch
path"), so a launch costs futex wake-ups instead of a GIL handoff per thread.
The helper is host code of the simulator, not device code: it is built from
the source shipped next to this file with the host's C compiler (`$CC`, else
`cc`) into `SIMPLER_SIM_NATIVE_DIR`, else `~/.cache/simpler-build-sim` (`native_dir`), under
a name carrying the hash of the source and the command, so an edit or another
compiler builds a new file and concurrent first uses race harmlessly (each
writes a private temp file and renames it into place).
"""

from __future__ import annotations

import _thread
import ctypes
import os
from pathlib import Path

from simpler_build.errors import DeviceError

NATIVE_DIR_ENV = "SIMPLER_SIM_NATIVE_DIR"
SOURCE = Path(__file__).with_name("_launch.c")
FLAGS = ("-std=c11", "-O2", "-fPIC", "-shared", "-pthread", "-Wall", "-Wextra", "-Werror")

_lib: ctypes.CDLL | None = None
_lock = _thread.allocate_lock()


class NativeHelperError(DeviceError):
    """The launch helper could not be built or loaded (one line: what and why)."""


def native_dir() -> Path:
    """`SIMPLER_SIM_NATIVE_DIR`, else `$XDG_CACHE_HOME/simpler-build-sim` (`~/.cache/...`).

    Not inside the artifact cache root (`simpler-build`), whose contents `gc`
    and `verify` own; the simulator is Linux-only, so this is the XDG rule
    without importing platformdirs on every first run.
    """
    env = os.environ.get(NATIVE_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "simpler-build-sim"


def _compiler() -> list[str]:
    """`$CC` as an argument list (shell quoting rules), else `cc`.

    Every first run computes this (the helper's cache key names the command), so
    shlex is imported only for a `$CC` with quotes or backslashes: without them,
    its split is the whitespace split.
    """
    raw = os.environ.get("CC") or "cc"
    if any(ch in raw for ch in "'\"\\"):
        import shlex

        cc = shlex.split(raw)
    else:
        cc = raw.split()
    return cc or ["cc"]


def _build(source: bytes) -> Path:
    """The cached build of `source`, compiling it first if this source and command never were.

    The compiler and temp-file modules are imported here: a process whose helper
    is already built never pays for them (the key is the runtime's own XXH3
    fingerprint, already loaded).
    """
    from simpler_build.cache.fingerprint import fingerprint_bytes

    cc = _compiler()
    key = fingerprint_bytes(source + b"\0" + " ".join([*cc, *FLAGS]).encode())
    directory = native_dir()
    target = directory / f"libsimpler_sim_launch_{key}.so"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NativeHelperError(
            f"{NATIVE_DIR_ENV}: cannot create {directory}: {exc.strerror or exc}"
        ) from None
    import subprocess
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", dir=directory)
    os.close(fd)
    try:
        try:
            done = subprocess.run(
                [*cc, *FLAGS, "-o", tmp, "-x", "c", "-"],
                input=source,
                capture_output=True,
                check=False,
            )
        except OSError as exc:
            raise NativeHelperError(
                f"{SOURCE}: cannot run the C compiler {cc[0]!r} ($CC): {exc.strerror or exc}"
            ) from None
        if done.returncode != 0:
            first = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[0]
            raise NativeHelperError(f"{SOURCE}: {' '.join(cc)} failed: {first}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, u32, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32
    signatures: dict[str, tuple[type | None, list[type]]] = {
        "simlaunch_thread_start": (p, []),
        "simlaunch_thread_stop": (None, [p]),
        "simlaunch_launch_new": (p, [u32]),
        "simlaunch_launch_free": (None, [p]),
        "simlaunch_launch_abort_word": (p, [p]),
        "simlaunch_launch_start": (i32, [p, p, p, p, u32]),
        "simlaunch_launch_wait": (u32, [p, ctypes.c_double]),
        "simlaunch_launch_result": (i32, [p, u32]),
        "simlaunch_launch_finished": (u32, [p, u32]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def helper() -> ctypes.CDLL:
    """The loaded helper, built on the first call of this process if no build is cached."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                path = _build(SOURCE.read_bytes())
                try:
                    _lib = _declare(ctypes.CDLL(str(path)))
                except OSError as exc:
                    raise NativeHelperError(f"{path}: does not load: {exc}") from None
    return _lib
