"""cache/paths.user_dir answers as platformdirs does, without importing it in the usual case."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import platformdirs
from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build.cache.paths import APP_NAME, user_dir

#: Values a user's environment may hold: unset, empty, blank, absolute with and without a
#: trailing slash, relative, a tilde, and whatever else hypothesis makes of text.
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "/", "/home/u", "/home/u/", "/x y/z", "rel", "~/c", " /abs"]),
    st.text(alphabet="/abc~. ", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(home=VALUES, xdg_cache=VALUES, xdg_state=VALUES)
def test_user_dir_is_platformdirs_answer(
    home: str | None, xdg_cache: str | None, xdg_state: str | None
) -> None:
    env = {"HOME": home, "XDG_CACHE_HOME": xdg_cache, "XDG_STATE_HOME": xdg_state}
    with mock.patch.dict(os.environ):
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            cache = platformdirs.user_cache_dir(APP_NAME, appauthor=False)
            state = platformdirs.user_state_dir(APP_NAME, appauthor=False)
        except RuntimeError:  # platformdirs cannot resolve a home: nor may we answer one
            return
        assert user_dir("cache") == Path(cache)
        assert user_dir("state") == Path(state)


def test_the_default_roots_do_not_import_platformdirs(tmp_path: Path) -> None:
    """A user with neither SIMPLER_CACHE_DIR nor SIMPLER_SIM_ROOT set (issue 9)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("SIMPLER_CACHE_DIR", "SIMPLER_SIM_ROOT")
    }
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME="", XDG_STATE_HOME="")
    probe = (
        "import sys\n"
        "from simpler_build.cache.paths import default_cache_root\n"
        "from simpler_build.device import sim_root\n"
        "print(default_cache_root(), sim_root(), 'platformdirs' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    cache, sim, loaded = proc.stdout.split()
    assert cache == str(tmp_path / ".cache" / APP_NAME)
    assert sim == str(tmp_path / ".local" / "state" / APP_NAME / "sim")
    assert loaded == "False"
