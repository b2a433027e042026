"""Checkout A's editable venv used in checkout B is refused, not silently mixed (issue 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scons_in_another_checkout_with_this_editable_venv_is_one_clear_line(
    tmp_path: Path,
) -> None:
    import simpler_build

    package = Path(simpler_build.__file__).resolve().parent
    if not (package.parent / "SConstruct").is_file():
        raise AssertionError(f"this test needs the editable install of a checkout ({package})")
    other = tmp_path / "checkout-b"
    shutil.copytree(
        REPO,
        other,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info"),
    )
    with (other / "site_scons" / "simpler_profiles.py").open("a") as fh:
        fh.write("# checkout B has moved on\n")
    env = {k: v for k, v in os.environ.items() if k != "SIMPLER_TEST_BUILD_DIR"}
    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", "arch=a5", f"build_dir={tmp_path / 'out'}"],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(package.parent) in lines[0] and str(other.resolve()) in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_scons_in_this_checkout_or_an_identical_copy_passes_the_check(tmp_path: Path) -> None:
    same = tmp_path / "copy"
    for name in ("SConstruct", "site_scons", "dispatcher", "runtime"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, same / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            same.mkdir(exist_ok=True)
            shutil.copy2(src, same / name)
    for where in (REPO, same):
        proc = subprocess.run(
            [sys.executable, "-m", "SCons", "-Q", "-h"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "imports simpler_build from the checkout" not in proc.stderr
