"""Reproducible binaries: the same sources give the same bytes in any checkout and build dir.

Two copies at different paths, different `build_dir` names, `-j1` against
`-j2`, different umask and TZ, caching off: identical binaries and
manifests, for both arches and both modes.  A second checkout retrieves
every object from the first one's SCons CacheDir and gets the same bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simpler_build.repro import SOURCES, compare
from tests import compiler_cache
from tests.conftest import REPO


def _copy(dest: Path) -> Path:
    from simpler_build.repro import _copy_sources

    _copy_sources(REPO, dest)
    return dest


def _scons(tree: Path, *args: str, env: dict[str, str] | None = None, umask: int = 0o022) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *args],
        cwd=tree,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.real_compiles  # the subject is what gcc writes: no compiler cache stands in
@pytest.mark.parametrize("mode", ["release", "debug"])
def test_two_checkouts_build_identical_bytes(tmp_path: Path, mode: str) -> None:
    one = _copy(tmp_path / "a" / "src")
    two = _copy(tmp_path / "a much longer (odd) name" / "x" / "y" / "src")
    off = ("cache=0", "--cache-disable", "arch=all", f"mode={mode}")
    _scons(one, "-j1", "build_dir=build", *off, env={"TZ": "UTC", "LC_ALL": "C"})
    _scons(
        two,
        "-j2",
        "build_dir=other-out",
        *off,
        env={"TZ": "Asia/Kolkata", "LC_ALL": "C.UTF-8"},
        umask=0o077,
    )
    sub = ("debug",) if mode == "debug" else ()  # each mode has its own tree
    names, diffs = compare(
        one.joinpath("build", *sub, "lib"), two.joinpath("other-out", *sub, "lib")
    )
    assert diffs == []
    assert len([n for n in names if n.endswith(".json")]) == 4 and len(names) == 16
    for path in one.joinpath("build", *sub, "lib").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert str(one).encode() not in data and str(tmp_path).encode() not in data, path


def test_a_second_checkout_retrieves_everything_from_cachedir(tmp_path: Path) -> None:
    cache = {"SIMPLER_CACHE_DIR": str(tmp_path / "cache")}
    one = _copy(tmp_path / "a" / "src")
    two = _copy(tmp_path / "bbbbbbbb" / "src")
    fresh = _copy(tmp_path / "fresh" / "src")
    _scons(one, "-j2", "arch=all", "cache=0", env=cache)
    out = _scons(two, "-j2", "arch=all", "cache=0", env=cache)
    compiled = [line for line in out.splitlines() if line.startswith(("gcc ", "g++ "))]
    assert compiled == [], "every compile and link must come from the CacheDir"
    assert out.count("Retrieved") >= 20
    _scons(fresh, "-j2", "arch=all", "cache=0", "--cache-disable", env=cache)
    _, diffs = compare(two / "build" / "lib", fresh / "build" / "lib")
    assert diffs == []


def test_repro_check_passes_and_names_a_leaking_section(tmp_path: Path) -> None:
    """Run with ccache first on PATH (tests/compiler_cache.py), in a directory of its own:
    repro-check compiles for real anyway, so that ccache sees no call at all."""
    assert os.environ.get("CCACHE_DIR"), "the suite's compiler cache is off: is ccache installed?"
    ccache_dir = tmp_path / "ccache"
    run = [sys.executable, "-m", "simpler_build.cli", "repro-check", "--arch", "a2a3", "--json"]
    ok = subprocess.run(
        run,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "CCACHE_DIR": str(ccache_dir)},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["reproducible"] is True
    calls = compiler_cache.stats(ccache_dir)
    compiles = ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss")
    assert sum(calls[k] for k in compiles) == 0, "repro-check let ccache stand in for its compiles"

    # A kernel that embeds the absolute path of its checkout, through a define.
    tree = _copy(tmp_path / "leaky")
    assert {p.name for p in tree.iterdir()} == set(SOURCES)
    table = tree / "runtime" / "aicore" / "kernel_table.c"
    table.write_text(
        table.read_text()
        + "\n__attribute__((used)) static const char simpler_where[] = SIMPLER_WHERE;\n"
    )
    script = tree / "runtime" / "SConscript"
    script.write_text(
        script.read_text().replace(
            "kenv = base.Clone()\n",
            'kenv = base.Clone()\nkenv.Append(CPPDEFINES=[("SIMPLER_WHERE", '
            "'\\\\\"' + Dir(\"#\").abspath + '\\\\\"')])\n",
        )
    )
    bad = subprocess.run(
        [*run, "--source", str(tree)], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    by_file = {d["file"]: d for d in report["differences"]}
    assert "a2a3/aicore/aicore_kernels.elf" in by_file
    assert ".rodata" in by_file["a2a3/aicore/aicore_kernels.elf"]["where"]
    assert report["reproducible"] is False


@pytest.mark.parametrize("json_mode", [False, True])
def test_repro_check_errors_are_one_line(tmp_path: Path, json_mode: bool) -> None:
    """No SConstruct at --source (exit 2), a build that fails (exit 1): one line, no traceback."""
    broken = _copy(tmp_path / "broken")
    source = broken / "dispatcher" / "dispatcher.cpp"
    source.write_text(source.read_text() + "\n#error a deliberate break\n")
    cases = (
        (tmp_path, 2, "config", "no SConstruct here"),
        (broken, 1, "build", "the build of its copy failed"),
    )
    for where, code, kind, words in cases:
        cmd = [sys.executable, "-m", "simpler_build.cli", "repro-check", "--arch", "a2a3"]
        cmd += ["--source", str(where), *(["--json"] if json_mode else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == code and proc.stdout == "", proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
        if json_mode:
            error = json.loads(proc.stderr)["error"]
            assert (error["kind"], error["exit_code"], error["path"]) == (kind, code, str(where))
            assert words in error["message"]
        else:
            assert proc.stderr.startswith(f"simpler-build repro-check: error: {where}: {words}")
        if code == 1:
            assert "a deliberate break" in proc.stderr, "the compiler's own error line"
