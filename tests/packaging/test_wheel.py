"""The wheel, as a user installs it: non-editable, in a fresh venv, used away from any checkout.

One test walks the whole path, because each step needs the one before:

1. a copy of the checkout is built with SCons first (so `build/lib/<arch>`
   holds SOs, as in a developer's tree), then `pip wheel --no-deps` builds
   the wheel from it: setuptools must not pick the SCons outputs up;
2. the wheel's file list: nothing at the top level but `simpler_build/` and
   its `.dist-info`, and everything a build needs is inside;
3. a fresh `python -m venv` gets the base install (no extras): `cache warm`
   works, `simpler-build build` and `import simpler_build.runtime` each
   refuse in one line naming their extra;
4. the same venv gets `[all]`: from an unrelated directory it builds
   (`simpler-build build`), warms, and runs the sample; from the checkout
   copy's root, with the installed package, `scons` and
   `import simpler_build.runtime` work (the root no longer shadows it).

Installing the dependencies needs the package index pip is configured with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import SCons

from simpler_build import __version__
from tests.conftest import REPO

COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    ".setuptools-build",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
)
#: What a build from an installed package needs, inside the wheel.
BUILD_FILES = (
    "simpler_build/SConstruct",
    "simpler_build/py.typed",
    "simpler_build/cache/FORMAT.md",
    "simpler_build/site_scons/simpler_profiles.py",
    "simpler_build/site_scons/simpler_toolchain.py",
    "simpler_build/site_scons/site_tools/simpler_manifest.py",
    "simpler_build/dispatcher/SConscript",
    "simpler_build/dispatcher/dispatcher.cpp",
    "simpler_build/dispatcher/exports.map",
    "simpler_build/runtime/SConscript",
    "simpler_build/runtime/include/simpler_abi.h",
    "simpler_build/runtime/aicpu/host_build_graph.c",
    "simpler_build/runtime/aicore/vector_kernels.c",
)
TIMEOUT = 300  # seconds: a bound for a hang, not a performance claim


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    return proc


def ok(cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    proc = run(cmd, cwd, env)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The user's environment minus anything that points Python at the checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["SIMPLER_CACHE_DIR"] = str(tmp_path / "cache")
    env["SIMPLER_SIM_ROOT"] = str(tmp_path / "sim")
    env.pop("SIMPLER_TEST_BUILD_DIR", None)
    return env


def test_wheel_installs_builds_warms_and_runs_away_from_the_checkout(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=COPY_IGNORE, symlinks=True)
    # 1. SCons outputs in build/lib first, then the wheel from the same tree.
    ok([sys.executable, "-m", "SCons", "-Q", "-j2", "arch=a5", "cache=0"], checkout, env)
    assert any((checkout / "build" / "lib" / "a5").rglob("*.so"))
    dist = tmp_path / "dist"
    ok(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", checkout, "-w", dist],
        tmp_path,
        env,
    )
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"simpler_build-{__version__}-py3-none-any.whl"

    # 2. The file list.
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"simpler_build", f"simpler_build-{__version__}.dist-info"}, tops
    missing = [f for f in BUILD_FILES if f not in names]
    assert not missing, missing
    assert not [n for n in names if "__pycache__" in n or n.endswith((".so", ".elf", ".pyc"))]
    meta = zipfile.ZipFile(wheel).read(f"simpler_build-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta.splitlines()
    assert f"simpler_build-{__version__}.dist-info/licenses/LICENSE" in names

    # 3. A fresh venv, base install: warm works, build and runtime name their extras.
    venv_dir = tmp_path / "venv"
    venv.create(venv_dir, with_pip=True)
    py, tool = venv_dir / "bin" / "python", venv_dir / "bin" / "simpler-build"
    ok([py, "-m", "pip", "install", "-q", wheel], tmp_path, env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run([tool, "build", "--build-dir", "out"], elsewhere, env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "pip install 'simpler-build[build]'" in proc.stderr
    proc = run([py, "-c", "import simpler_build.runtime"], elsewhere, env)
    assert proc.returncode == 1 and "pip install 'simpler-build[runtime]'" in proc.stderr
    # Another Python's SCons (here: the test's) with this base install: the missing extra is named.
    only_scons = tmp_path / "only-scons"
    only_scons.mkdir()
    (only_scons / "SCons").symlink_to(Path(SCons.__file__).parent, target_is_directory=True)
    proc = run([py, "-m", "SCons", "-Q", "-n"], checkout, {**env, "PYTHONPATH": str(only_scons)})
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"scons: *** pyelftools is not installed for {py}, and the build needs it: "
        "install the build extra (pip install 'simpler-build[build]')."
    ]
    warmed = json.loads(ok([tool, "cache", "warm", "--json", checkout / "build"], elsewhere, env))
    assert len(warmed["added"]) == 4  # a5: dispatcher, 2 inner SOs, 1 AICore ELF (deduplicated)

    # 4. [all]: build, warm and run from an unrelated directory.
    ok([py, "-m", "pip", "install", "-q", f"{wheel}[all]"], tmp_path, env)
    assert ok([py, "-m", "simpler_build", "--version"], elsewhere, env).split() == [
        "simpler-build",
        __version__,
    ]
    tree = Path(ok([tool, "build", "--print-source"], elsewhere, env).strip())
    assert tree == venv_dir.joinpath(*site_packages(py, env), "simpler_build")
    sources = {p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    ok(
        [tool, "build", "--build-dir", "out", "-j2", "arch=a5", "runtime=host_build_graph"],
        elsewhere,
        env,
    )
    manifest = elsewhere / "out" / "lib" / "a5" / "host_build_graph" / "runtime_binaries.json"
    assert manifest.is_file()
    # Nothing lands in the installed sources (site-packages may be read-only).
    assert {p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts} == sources
    ok([tool, "cache", "warm", "out"], elsewhere, env)
    shutil.copy2(REPO / "examples" / "vector_add.py", elsewhere / "vector_add.py")
    report = json.loads(
        ok(
            [py, "vector_add.py", "--arch", "a5", "--runs", "3", "--build-dir", "out", "--json"],
            elsewhere,
            env,
        )
    )
    assert report["ok"] and report["checked_results"] == 6

    # ... and from the checkout's root, with the installed (non-editable) package.
    where = ok([py, "-c", "import simpler_build.runtime as r; print(r.__file__)"], checkout, env)
    assert Path(where.strip()).is_relative_to(venv_dir)
    ok(
        [venv_dir / "bin" / "scons", "-Q", "arch=a5", "runtime=host_build_graph", "cache=0"],
        checkout,
        env,
    )


def site_packages(py: Path, env: dict[str, str]) -> tuple[str, ...]:
    """The venv's site-packages, relative to the venv (lib/pythonX.Y/site-packages)."""
    out = subprocess.run(
        [
            str(py),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib', vars={'base': ''}))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    return Path(out.lstrip("/")).parts
