"""Session-wide isolation and the one real build every suite shares.

Every test session gets its own cache root and simulated-device root, so
nothing touches the user's real cache; `built_tree` runs the real SCons build
(`arch=all`, `-j2`) once per session.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import compiler_cache

REPO = Path(__file__).resolve().parents[1]
ARCHES = ("a2a3", "a5")
RUNTIMES = ("host_build_graph", "aicpu_build_graph")

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="simpler-test-"))
os.environ["SIMPLER_CACHE_DIR"] = str(_SESSION_ROOT / "cache")
os.environ["SIMPLER_SIM_ROOT"] = str(_SESSION_ROOT / "sim")

# Compiles go through ccache unless a test is marked real_compiles (tests/compiler_cache.py).
# SIMPLER_TEST_CCACHE_DIR shares one ccache directory between sessions: tests/mutants.py sets
# it, and the first process to get here sets it for the pytest-xdist workers it starts.
os.environ.setdefault("SIMPLER_TEST_CCACHE_DIR", str(_SESSION_ROOT / "ccache"))
_CCACHE_DIR = Path(os.environ["SIMPLER_TEST_CCACHE_DIR"])
_MASQUERADE = _SESSION_ROOT / "ccache-bin"
_CCACHE = compiler_cache.environment(_MASQUERADE, _CCACHE_DIR, os.environ)
if _CCACHE is not None:
    os.environ.update(_CCACHE)


def scons(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, check: bool = True):
    """Run SCons under this interpreter (so it sees the installed package)."""
    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"scons {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class BuiltTree:
    build_dir: Path

    @property
    def lib(self) -> Path:
        return self.build_dir / "lib"

    def manifest(self, arch: str, runtime: str) -> Path:
        return self.lib / arch / runtime / "runtime_binaries.json"

    def dispatcher(self, arch: str) -> Path:
        return self.lib / arch / "dispatcher" / "libsimpler_aicpu_dispatcher.so"

    def inner_so(self, arch: str, runtime: str) -> Path:
        return self.lib / arch / runtime / f"libsimpler_inner_{runtime}.so"

    def aicore(self, arch: str, runtime: str) -> Path:
        return self.lib / arch / runtime / "aicore_kernels.elf"


@pytest.fixture(scope="session")
def built_tree() -> BuiltTree:
    """The real build of both arches, made once per session (or SIMPLER_TEST_BUILD_DIR)."""
    given = os.environ.get("SIMPLER_TEST_BUILD_DIR")
    if given:
        return BuiltTree(Path(given).absolute())
    build_dir = _SESSION_ROOT / "build"
    # pytest-xdist workers build one at a time, so all but the first find every object in
    # the shared ccache; each still has its own tree, published into its own cache root.
    _CCACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(_CCACHE_DIR / "simpler-test-build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        scons("-j2", "arch=all", f"build_dir={build_dir}")
    return BuiltTree(build_dir)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_compiles: every compile runs gcc itself (no ccache; see compiler_cache)"
    )


@pytest.fixture(autouse=True)
def _real_compiles(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests marked `real_compiles` see the environment without the suite's compiler cache."""
    if request.node.get_closest_marker("real_compiles") is None:
        return
    for name in compiler_cache.VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", compiler_cache.without(os.environ)["PATH"])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stress-seconds",
        type=float,
        default=None,
        metavar="N",
        help="run the cache stress test for N seconds (also $SIMPLER_STRESS_SECONDS)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_ROOT, ignore_errors=True)


@pytest.fixture
def project_copy(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the build sources, for tests that edit them."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("SConstruct", "site_scons", "dispatcher", "runtime"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    yield dest
