"""The top-level command: --version from the single source, `python -m simpler_build`."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import simpler_build


def test_version_is_single_sourced() -> None:
    assert version("simpler-build") == simpler_build.__version__


def test_python_m_and_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simpler_build", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout == f"simpler-build {simpler_build.__version__}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "simpler_build", "frobnicate"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice: 'frobnicate'" in bad.stderr
    assert bad.stderr.startswith("usage: simpler-build ") and bad.stdout == ""


def test_sim_state_defaults_to_the_user_state_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The simulated device's state is not a cache: it lives outside the cache root that CI
    saves, under the platform's user state dir; SIMPLER_SIM_ROOT still overrides it."""
    import os

    code = (
        "from simpler_build.runtime.sim.fs import sim_root\n"
        "from simpler_build.cache.paths import default_cache_root\n"
        "print(sim_root()); print(default_cache_root())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLER_")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), SIMPLER_CACHE_DIR=str(tmp_path / "c"))

    def roots(**extra: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.splitlines()

    sim, cache = roots()
    assert sim == str(tmp_path / "state" / "simpler-build" / "sim")
    assert not sim.startswith(cache)
    assert roots(SIMPLER_SIM_ROOT=str(tmp_path / "s"))[0] == str(tmp_path / "s")
