"""The suite's compiler cache (tests/compiler_cache.py): on, shared by path, off when marked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import compiler_cache

SOURCE = "int simpler_answer(void) { return 42; }\n"


def _compile(checkout: Path, env: dict[str, str], *options: str) -> bytes:
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "a.c").write_text(SOURCE)
    prefix_map = f"-ffile-prefix-map={checkout}=/simpler"
    cmd = ["gcc", "-c", "-g", prefix_map, *options, "src/a.c", "-o", "a.o"]
    subprocess.run(cmd, cwd=checkout, env=env, check=True, timeout=60)
    return (checkout / "a.o").read_bytes()


def test_the_suite_compiles_through_ccache() -> None:
    assert shutil.which("ccache"), "ccache is missing: scripts/setup.sh installs it"
    gcc = shutil.which("gcc")
    assert gcc and compiler_cache.is_masquerade(os.path.dirname(gcc))
    assert os.environ["CCACHE_NOHASHDIR"] == "1"


@pytest.mark.real_compiles
def test_a_real_compiles_test_sees_no_ccache() -> None:
    gcc = shutil.which("gcc")
    assert gcc and not compiler_cache.is_masquerade(os.path.dirname(gcc))
    assert not any(name in os.environ for name in compiler_cache.VARS)


def test_checkouts_at_different_paths_share_one_entry(tmp_path: Path) -> None:
    """The same source and options under two paths: one miss, then a hit with the same bytes."""
    base = compiler_cache.without(os.environ)
    env = compiler_cache.environment(tmp_path / "bin", tmp_path / "ccache", base)
    assert env is not None, "ccache is missing: scripts/setup.sh installs it"
    env = {**base, **env}
    one = _compile(tmp_path / "a", env)
    two = _compile(tmp_path / "a much longer" / "path" / "b", env)
    stats = compiler_cache.stats(Path(env["CCACHE_DIR"]))
    assert (stats["cache_miss"], stats["direct_cache_hit"]) == (1, 1)
    assert one == two and str(tmp_path).encode() not in one
    # Another option is a real compile: only the prefix map is left out of the hash.
    _compile(tmp_path / "c", env, "-O2")
    stats = compiler_cache.stats(Path(env["CCACHE_DIR"]))
    assert (stats["cache_miss"], stats["direct_cache_hit"]) == (2, 1)
