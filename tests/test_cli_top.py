"""The top-level command: --version from the single source, `python -m simpler_build`."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import simpler_build


def test_version_is_single_sourced() -> None:
    assert version("simpler-build") == simpler_build.__version__


def test_python_m_and_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simpler_build", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout == f"simpler-build {simpler_build.__version__}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "simpler_build", "frobnicate"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice: 'frobnicate'" in bad.stderr
    assert bad.stderr.startswith("usage: simpler-build ") and bad.stdout == ""
