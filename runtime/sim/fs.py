"""The simulated device filesystem, shared by every process using the same device id.

Root: `SIMPLER_SIM_ROOT`, else `<project cache root>/sim`; device N lives in
`<root>/device<N>/`.  The dispatcher preinstalls inner SOs into its
`preinstall/` directory, which is why a second process can skip the
bootstrap when the file is already there and verifies.
"""

from __future__ import annotations

import os
from pathlib import Path

from simpler_build.cache.paths import default_cache_root

SIM_ROOT_ENV = "SIMPLER_SIM_ROOT"


def sim_root() -> Path:
    """Root of every simulated device's filesystem (read at call time, so tests can redirect)."""
    env = os.environ.get(SIM_ROOT_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return default_cache_root() / "sim"


def device_dir(device_id: int) -> Path:
    return sim_root() / f"device{device_id}"


def preinstall_dir(device_id: int) -> Path:
    """Where the dispatcher writes `simpler_inner_<fp>.so` (the dispatcher creates it)."""
    return device_dir(device_id) / "preinstall"
