"""Choosing the compiler (site_scons/simpler_toolchain.py): variables, env, custom.py, ccache.

The ccache test runs real ccache (Debian's, installed by scripts/setup.sh)
with its directory in tmp: ccache only finds that directory if `CCACHE_DIR`
reaches the compiler's environment, so its hit count on a second clean build
is also the proof that `CCACHE_*` passes through.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from simpler_build.manifest import MANIFEST_NAME
from simpler_build.repro import compare
from tests import compiler_cache
from tests.conftest import scons

#: The subject is the compiler and its launcher: every compile runs gcc (or the test's ccache).
pytestmark = pytest.mark.real_compiles

ONE = ("arch=a2a3", "runtime=host_build_graph")
#: Neither SCons's CacheDir nor the artifact cache: every object is compiled.
UNCACHED = ("--cache-disable", "cache=0")


def compile_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " -c " in line]


def test_ccache_hits_every_compile_of_a_second_clean_build(project_copy: Path, tmp_path: Path):
    assert shutil.which("ccache"), "ccache is missing: scripts/setup.sh installs it"
    ccache_dir = tmp_path / "ccache"
    env = {"CC": "ccache gcc", "CXX": "ccache g++", "CCACHE_DIR": str(ccache_dir)}
    build = f"build_dir={tmp_path / 'b'}"
    first = scons(*ONE, *UNCACHED, build, cwd=project_copy, env=env)
    compiles = compile_lines(first.stdout)
    assert compiles and all(line.startswith("ccache ") for line in compiles)
    cold = compiler_cache.stats(ccache_dir)
    assert cold["direct_cache_hit"] + cold["preprocessed_cache_hit"] == 0
    assert cold["cache_miss"] == len(compiles)

    shutil.rmtree(tmp_path / "b")  # a clean build: every object compiled again
    second = scons(*ONE, *UNCACHED, build, cwd=project_copy, env=env)
    assert len(compile_lines(second.stdout)) == len(compiles)
    warm = compiler_cache.stats(ccache_dir)
    hits = warm["direct_cache_hit"] + warm["preprocessed_cache_hit"]
    assert hits == len(compiles) and warm["cache_miss"] == cold["cache_miss"]


def test_a_ccache_build_writes_the_same_binaries_and_manifests(project_copy: Path, tmp_path: Path):
    """ccache is a launcher, not a toolchain: same bytes, same manifest, as a plain build."""
    assert shutil.which("ccache"), "ccache is missing: scripts/setup.sh installs it"
    ccache = {"CC": "ccache gcc", "CXX": "ccache g++", "CCACHE_DIR": str(tmp_path / "ccache")}
    scons(*ONE, *UNCACHED, f"build_dir={tmp_path / 'plain'}", cwd=project_copy)
    scons(*ONE, *UNCACHED, f"build_dir={tmp_path / 'ccache'}", cwd=project_copy, env=ccache)
    names, diffs = compare(tmp_path / "plain" / "lib", tmp_path / "ccache" / "lib")
    assert diffs == [] and MANIFEST_NAME in {Path(n).name for n in names}


def test_command_line_beats_environment_beats_custom_py(project_copy: Path, tmp_path: Path):
    launch = tmp_path / "launch"
    launch.mkdir()
    (launch / "custom.py").write_text(
        'CCFLAGS = "-DFROM_FILE"\nCFLAGS = ["-DFILE_A", "-DFILE_B=x y"]\nmode = "debug"\n'
    )
    build = f"build_dir={tmp_path / 'b'}"
    env = {"CCFLAGS": "-DFROM_ENV"}
    # From `launch` (custom.py's folder), -C to the sources: what `simpler-build build` does.
    dry = scons("-n", "-C", str(project_copy), *ONE, *UNCACHED, build, cwd=launch, env=env)
    c_lines = [line for line in compile_lines(dry.stdout) if line.startswith("gcc ")]
    assert c_lines
    for line in c_lines:
        assert "-DFROM_ENV" in line and "-DFROM_FILE" not in line  # environment over file
        assert '-DFILE_A "-DFILE_B=x y"' in line  # a list: one argument per item
        assert " -O0 " in line  # mode=debug from custom.py
        # The user's flags come after the project's, so they override them.
        assert line.index("-DFROM_ENV") > line.index("-Wall")
    assert (tmp_path / "b" / "debug").name in dry.stdout

    cmd = scons(
        "-n",
        "-C",
        str(project_copy),
        *ONE,
        *UNCACHED,
        build,
        "CCFLAGS=-DFROM_CMD",
        cwd=launch,
        env=env,
    )
    assert all(
        "-DFROM_CMD" in line and "-DFROM_ENV" not in line for line in compile_lines(cmd.stdout)
    )


def test_cc_from_the_environment_reaches_the_compile_and_the_manifest(
    project_copy: Path, tmp_path: Path
):
    gcc = shutil.which("gcc")
    assert gcc
    build = tmp_path / "b"
    proc = scons(*ONE, *UNCACHED, f"build_dir={build}", cwd=project_copy, env={"CC": gcc})
    c_lines = [line for line in compile_lines(proc.stdout) if line.endswith(".c")]
    assert c_lines and all(line.startswith(gcc + " ") for line in c_lines)
    manifest = (build / "lib" / "a2a3" / "host_build_graph" / "runtime_binaries.json").read_text()
    assert f'"cc": "{gcc}"' in manifest


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("afile", "not a directory"),
        ("afile/sub", "cannot create it: Not a directory"),
        ("", "is the source tree; give the outputs a directory of their own (default: build)"),
        (".", "is the source tree; give the outputs a directory of their own (default: build)"),
    ],
)
def test_a_build_dir_that_cannot_be_one_is_one_line(
    project_copy: Path, tmp_path: Path, where: str, problem: str
):
    """A file at build_dir was a TypeError traceback from SCons; a directory it cannot
    create was one error per target's signature file; the checkout itself built its
    outputs among the sources with one path map overwriting the other."""
    (tmp_path / "afile").write_text("not the build's")
    target = where if where in ("", ".") else str(tmp_path / where)  # "", ".": the checkout
    before = sorted(p.name for p in project_copy.iterdir())
    proc = scons(*ONE, f"build_dir={target}", cwd=project_copy, check=False)
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == [f"scons: *** build_dir={target}: {problem}"], proc.stderr
    assert (tmp_path / "afile").read_text() == "not the build's"
    assert sorted(p.name for p in project_copy.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "custom", "problem"),
    [
        (("CC=no-such-compiler-x",), None, r"CC='no-such-compiler-x': 'no-such-compiler-x' is not"),
        (("CC=",), None, r"CC is empty"),
        (("CC=ccache",), None, r"name the compiler after ccache"),
        (('CCFLAGS=-DX="a',), None, r"CCFLAGS='-DX=\"a': No closing quotation"),
        (("mode=fast",), None, r"Invalid value for enum variable 'mode': 'fast'"),
        (("cache=maybe",), None, r"Error converting option: 'cache' Invalid value for boolean"),
        (("CCLFAGS=-O0",), None, r"unknown variable\(s\): CCLFAGS"),
        ((), "CC = (\n", r"custom.py:1: '\(' was never closed"),
        ((), "OPTIMIZE = 1\n", r"custom.py: unknown variable\(s\): OPTIMIZE"),
        ((), "CC = {'gcc': 1}\n", r"custom.py: CC = \{'gcc': 1\}: expected a string"),
        ((), "raise SystemError('boom')\n", r"custom.py: SystemError: boom"),
    ],
)
def test_a_bad_toolchain_value_is_one_line_and_builds_nothing(
    project_copy: Path, tmp_path: Path, args: tuple[str, ...], custom: str | None, problem: str
):
    if custom is not None:
        (project_copy / "custom.py").write_text(custom)
    proc = scons(*ONE, *args, f"build_dir={tmp_path / 'b'}", cwd=project_copy, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scons: *** "), proc.stderr
    assert re.search(problem, lines[0]), lines[0]
    assert not (tmp_path / "b" / "lib").exists()
