"""`simpler-build build` (core/build.py) from this (editable) install: where it builds, bad input.

The wheel path -- the SCons tree inside an installed package -- is
test_wheel.py's; here the same command runs from the checkout's install.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import SCons

from tests.conftest import REPO

TIMEOUT = 600  # seconds: a bound for a hang


def build_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simpler_build", "build", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def documented_keys(title: str) -> set[str]:
    """The key column of docs/json.md's table under `## `title``."""
    keys: set[str] = set()
    section = ""
    for line in (REPO / "docs" / "json.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip().strip("`")
        elif section == title and (m := re.match(r"^\| `([a-z_0-9]+)` \|", line)):
            keys.add(m.group(1))
    return keys


def tree_files(tree: Path) -> set[Path]:
    """The source tree's files, minus Python's bytecode caches."""
    return {p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_builds_the_install_s_sources_into_the_named_directory(tmp_path: Path) -> None:
    where = build_cmd("--print-source", cwd=tmp_path)
    assert where.returncode == 0 and Path(where.stdout.strip()) == REPO
    before = tree_files(REPO / "site_scons") | tree_files(REPO / "runtime")
    proc = build_cmd(
        "arch=a2a3", "runtime=host_build_graph", "--build-dir", "out", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = tmp_path / "out" / "lib" / "a2a3" / "host_build_graph" / "runtime_binaries.json"
    assert manifest.is_file()
    # --json: SCons's chatter went to stderr; stdout is one object with the documented keys.
    report = json.loads(proc.stdout)
    assert set(report) == documented_keys("simpler-build build --json")
    assert report["manifests"] == [str(manifest)] and report["exit_code"] == 0
    assert report["build_dir"] == str(tmp_path / "out")
    assert (tmp_path / "out" / ".sconsign.dblite").is_file()
    # Nothing lands in the sources: they may be a read-only site-packages.
    assert tree_files(REPO / "site_scons") | tree_files(REPO / "runtime") == before


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("arch",), "'arch' is not NAME=VALUE"),
        (("=a5",), "'=a5' is not NAME=VALUE"),
        (("-j", "0"), "invalid job count '0'"),
        (("-j", "1_0"), "invalid job count '1_0'"),
        (("build_dir=x",), "give the output directory as --build-dir DIR"),
        (("--build-dir", "afile"), "afile: not a directory"),
        (("arch=a9",), "Invalid value for enum variable 'arch': 'a9'"),
        (("CC=/nonexistent/cc",), "'/nonexistent/cc' is not an executable on PATH"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...], problem: str) -> None:
    (tmp_path / "afile").write_text("")
    proc = build_cmd(*args, cwd=tmp_path)
    assert proc.returncode != 0
    # One error line (argparse's usage lines may precede it).
    errors = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith(("simpler-build build: error: ", "scons: *** "))
    ]
    assert len(errors) == 1 and problem in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "build").exists()


def test_scons_under_a_python_without_the_package_says_so(tmp_path: Path) -> None:
    """The SConstruct's import error names the interpreter, not a venv it guesses at."""
    only_scons = tmp_path / "only-scons"
    only_scons.mkdir()
    (only_scons / "SCons").symlink_to(Path(SCons.__file__).parent, target_is_directory=True)
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "SCons", "-Q", "-n", "-C", str(REPO)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(only_scons)},  # -S: no site-packages
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"scons: *** simpler_build is not installed for {sys.executable}, the Python running "
        "SCons: run the scons of the venv it is installed in (README.md: scripts/setup.sh), "
        "or pip install '.[all]' there."
    ]


@pytest.mark.parametrize(
    ("args", "kind", "problem"),
    [
        (("arch",), "usage", "'arch' is not NAME=VALUE"),
        (("build_dir=x",), "usage", "give the output directory as --build-dir DIR"),
    ],
)
def test_bad_input_with_json_is_one_json_object_on_stderr(
    tmp_path: Path, args: tuple[str, ...], kind: str, problem: str
) -> None:
    proc = build_cmd(*args, "--json", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    error = json.loads(line)["error"]
    assert error["kind"] == kind and problem in error["message"] and error["exit_code"] == 2
