"""The build as a build system: errors, no-op rebuilds, minimal rebuilds, caching."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from simpler_build.manifest import MANIFEST_NAME
from tests.conftest import scons

COMPILE = re.compile(r"^(gcc|g\+\+) .* -c .*?(\S+\.(?:c|cpp))$", re.MULTILINE)
LINK = re.compile(r"^(?:gcc|g\+\+) -o (\S+) .*-shared", re.MULTILINE)


def compiled(output: str) -> set[str]:
    return {m.group(2) for m in COMPILE.finditer(output)}


def linked(output: str) -> set[str]:
    return {Path(m.group(1)).name for m in LINK.finditer(output)}


@pytest.mark.parametrize(
    ("arg", "valid"),
    [
        ("arch=a9", "'a2a3', 'a5', 'all'"),
        ("runtime=nope", "'host_build_graph', 'aicpu_build_graph', 'all'"),
    ],
)
def test_unknown_arch_or_runtime_stops_before_compiling(tmp_path: Path, arg: str, valid: str):
    build_dir = tmp_path / "b"
    proc = scons(arg, f"build_dir={build_dir}", check=False)
    assert proc.returncode != 0
    assert valid in proc.stderr
    assert not build_dir.exists(), "nothing may be built for a bad variable"


def test_unknown_variable_is_an_error(tmp_path: Path):
    proc = scons("arhc=a5", f"build_dir={tmp_path / 'b'}", check=False)
    assert proc.returncode != 0
    assert "arhc" in proc.stderr and "arch" in proc.stderr


def test_help_lists_the_variables():
    out = scons("--help").stdout
    for var in ("arch:", "runtime:", "mode:", "build_dir:", "cache:"):
        assert var in out


def test_noop_rebuild_then_one_source_change(project_copy: Path, tmp_path: Path):
    build = f"build_dir={tmp_path / 'b'}"
    first = scons("-j2", "arch=all", build, "--cache-disable", cwd=project_copy)
    assert "dispatcher/dispatcher.cpp" in compiled(first.stdout)

    again = scons("-j2", "arch=all", build, cwd=project_copy)
    assert compiled(again.stdout) == set() and linked(again.stdout) == set()
    assert scons("-q", "arch=all", build, cwd=project_copy, check=False).returncode == 0

    # A small AICore source (the kernels themselves take seconds to compile; the claim is the same).
    kernel = project_copy / "runtime" / "aicore" / "kernel_table.c"
    kernel.write_text("/* an edit that moves every line */\n" + kernel.read_text())
    assert scons("-q", "arch=all", build, cwd=project_copy, check=False).returncode != 0
    edit = scons("-j2", "arch=all", build, "--cache-disable", cwd=project_copy)
    assert compiled(edit.stdout) == {"runtime/aicore/kernel_table.c"}
    assert linked(edit.stdout) == {"aicore_kernels.elf"}, "only the AICore binaries relink"
    assert "runtime_binaries.json" in edit.stdout


def test_mode_change_rebuilds(project_copy: Path, tmp_path: Path):
    build = f"build_dir={tmp_path / 'b'}"
    scons("arch=a2a3", "runtime=host_build_graph", build, "--cache-disable", cwd=project_copy)
    debug = scons(
        "arch=a2a3",
        "runtime=host_build_graph",
        "mode=debug",
        build,
        "--cache-disable",
        cwd=project_copy,
    )
    assert "dispatcher/dispatcher.cpp" in compiled(debug.stdout)
    assert " -O0 " in debug.stdout
    # Each mode has its own tree: the debug build leaves the release one alone.
    release = tmp_path / "b" / "lib" / "a2a3" / "host_build_graph" / MANIFEST_NAME
    debug_manifest = tmp_path / "b" / "debug" / "lib" / "a2a3" / "host_build_graph" / MANIFEST_NAME
    assert '"mode": "debug"' in debug_manifest.read_text()
    assert '"mode": "release"' in release.read_text()
    back = scons(
        "-q", "arch=a2a3", "runtime=host_build_graph", build, cwd=project_copy, check=False
    )
    assert back.returncode == 0, "back to release: nothing to rebuild"


def test_clean_removes_outputs(project_copy: Path, tmp_path: Path):
    build = f"build_dir={tmp_path / 'b'}"
    scons("arch=a5", build, cwd=project_copy)
    lib = tmp_path / "b" / "lib" / "a5"
    assert any(lib.rglob("*.so"))
    scons("-c", "arch=a5", build, cwd=project_copy)
    assert not [p for p in lib.rglob("*") if p.is_file()]


def test_clean_checkout_rebuilds_from_scons_cachedir(project_copy: Path, tmp_path: Path):
    """A second checkout elsewhere, same cache root: everything comes from the CacheDir."""
    env = {"SIMPLER_CACHE_DIR": str(tmp_path / "cache")}
    other = tmp_path / "other-checkout"
    shutil.copytree(project_copy, other)
    cold = scons("-j2", "arch=all", cwd=project_copy, env=env)
    assert compiled(cold.stdout)
    warm = scons("-j2", "arch=all", cwd=other, env=env)
    assert compiled(warm.stdout) == set(), "a warm CacheDir retrieves instead of compiling"
    assert "Retrieved" in warm.stdout
    elf = Path("build", "lib", "a5", "aicore", "aicore_kernels.elf")
    assert (project_copy / elf).read_bytes() == (other / elf).read_bytes()
    for checkout in (project_copy, other):
        assert (checkout / "build" / "lib" / "a5" / "host_build_graph" / MANIFEST_NAME).exists()
    disabled = scons(
        "arch=a2a3", f"build_dir={tmp_path / 'three'}", "--cache-disable", cwd=other, env=env
    )
    assert "dispatcher/dispatcher.cpp" in compiled(disabled.stdout)
