"""Where the project cache lives: `SIMPLER_CACHE_DIR`, else the user cache dir."""

from __future__ import annotations

import os
import posixpath
import sys
from pathlib import Path

CACHE_DIR_ENV = "SIMPLER_CACHE_DIR"
APP_NAME = "simpler-build"


#: kind -> (XDG variable, the fallback under HOME) of platformdirs' Linux rule.
_XDG = {"cache": ("XDG_CACHE_HOME", "~/.cache"), "state": ("XDG_STATE_HOME", "~/.local/state")}


def user_dir(kind: str) -> Path:
    """platformdirs' `user_<kind>_dir` for this app; `kind` is "cache" or "state".

    Importing platformdirs costs a new process about 5 ms (tempfile, shutil,
    random...), which every `cache warm` and first run of a user without
    `SIMPLER_CACHE_DIR` would pay.  On Linux the usual case -- an absolute
    `$XDG_<KIND>_HOME`, else an absolute `$HOME` -- is platformdirs' rule, answered
    here; anything else (no or a relative HOME, another platform) asks
    platformdirs.  tests/cache/test_user_dirs.py holds the two to the same
    answer for generated environments.
    """
    var, fallback = _XDG[kind]
    if sys.platform.startswith("linux"):
        xdg = os.environ.get(var, "")
        if posixpath.isabs(xdg):
            return Path(posixpath.join(xdg, APP_NAME))
        if posixpath.isabs(os.environ.get("HOME", "")):
            return Path(posixpath.join(posixpath.expanduser(fallback), APP_NAME))
    import platformdirs

    if kind == "state":
        return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_cache_root() -> Path:
    """The project cache root every layer shares (artifact cache, SCons CacheDir, sim device)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return user_dir("cache")


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The absolute cache root for `root` (None: `default_cache_root()`), as
    `ArtifactCache(root).root` has it: `cache warm` resolves it without the store."""
    return Path(default_cache_root() if root is None else root).expanduser().absolute()


def scons_cache_dir(root: Path | None = None) -> Path:
    """SCons's own CacheDir for derived files, kept apart from our object store."""
    return (root or default_cache_root()) / "scons"
