#!/usr/bin/env python3
"""Type-check the `simpler_build` package with mypy (pyproject.toml [tool.mypy]: --strict).

    python scripts/typecheck.py            # mypy, as CI runs it (scripts/test.sh)
    python scripts/typecheck.py --pyright  # pyright instead (not in CI: it needs node)
    python scripts/typecheck.py -- ARGS    # extra arguments for the checker

Why a script: pyproject maps `simpler_build` to core/ and its subpackages to
cache/, remote/ and runtime/ (package-dir), and the editable install resolves
that with an import hook, which neither checker runs.  So the package is laid
out as a tree of per-file symlinks in a temporary folder, the checker runs
there, and every path it prints is mapped back to the file in the checkout.
Exit status is the checker's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "simpler_build"
#: Files a checker reads: sources, stubs and the PEP 561 marker.
CHECKED = ("*.py", "*.pyi", "py.typed")


def link_tree(dest: Path) -> dict[str, str]:
    """Lay the package out under `dest` as pyproject's package-dir maps it (one symlink
    per file, so pyright, which skips symlinked folders, sees every module).

    Returns {path under dest: path in the checkout}, both relative, for the output.
    """
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    back: dict[str, str] = {}
    for package in setuptools["packages"]:
        folder = REPO / package_dir.get(package, package.replace(".", "/"))
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for pattern in CHECKED:
            for source in sorted(folder.glob(pattern)):
                link = target / source.name
                link.symlink_to(source)
                back[link.relative_to(dest).as_posix()] = source.relative_to(REPO).as_posix()
    return back


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyright", action="store_true", help="run pyright, not mypy")
    parser.add_argument("extra", nargs="*", help="more arguments for the checker (after --)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="simpler-typecheck-"))
    try:
        back = link_tree(work)
        if args.pyright:
            command = ["pyright", "--pythonpath", sys.executable, PACKAGE, *args.extra]
        else:
            command = [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(REPO / "pyproject.toml"),
                "--cache-dir",
                str(REPO / ".mypy_cache"),  # mypy writes a .gitignore into it
                "-p",
                PACKAGE,
                *args.extra,
            ]
        if shutil.which(command[0]) is None and command[0] != sys.executable:
            print(f"typecheck: error: {command[0]} is not installed", file=sys.stderr)
            return 2
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True)
        prefix = re.escape(str(work) + os.sep)
        paths = re.compile(rf"(?:{prefix})?({re.escape(PACKAGE)}/[\w/]+\.pyi?)")
        for stream, text in ((sys.stdout, proc.stdout), (sys.stderr, proc.stderr)):
            stream.write(paths.sub(lambda m: back.get(m.group(1), m.group(1)), text))
        return proc.returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
