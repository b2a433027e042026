"""Fixtures for the cache tests: an isolated cache root per test, never the user's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import run_env

from simpler_build.cache.fingerprint import clear_memo
from simpler_build.cache.store import ArtifactCache


@pytest.fixture(autouse=True)
def _isolated_cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point SIMPLER_CACHE_DIR at a temp dir so nothing can reach the real cache."""
    monkeypatch.setenv("SIMPLER_CACHE_DIR", str(tmp_path / "default-cache"))
    clear_memo()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cache(cache_dir: Path) -> ArtifactCache:
    return ArtifactCache(cache_dir)


def run_cli(
    *args: str, cache_dir: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m simpler_build.cli cache ...` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "simpler_build.cli", "cache", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=run_env(cache_dir),
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli
