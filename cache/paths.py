"""Where the project cache lives: `SIMPLER_CACHE_DIR`, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "SIMPLER_CACHE_DIR"
APP_NAME = "simpler-build"


def default_cache_root() -> Path:
    """The project cache root every layer shares (artifact cache, SCons CacheDir, sim device)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs  # only here: CI sets SIMPLER_CACHE_DIR and skips its 3 ms import

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The absolute cache root for `root` (None: `default_cache_root()`), as
    `ArtifactCache(root).root` has it: `cache warm` resolves it without the store."""
    return Path(default_cache_root() if root is None else root).expanduser().absolute()


def scons_cache_dir(root: Path | None = None) -> Path:
    """SCons's own CacheDir for derived files, kept apart from our object store."""
    return (root or default_cache_root()) / "scons"
