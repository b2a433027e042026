"""`simpler-build build`: run SCons on this install's sources into a directory the user names.

A wheel carries the SCons tree inside the package folder (setup.py), so a
pip-installed toolkit builds without a checkout; an editable install builds
from its checkout.  The sources may be read-only (site-packages): every
output, the signature database included, goes under the build directory, and
SCons runs under this interpreter so the SConstruct imports this very package.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

PROG = "simpler-build build"
PACKAGE_DIR = Path(__file__).resolve().parent
#: Modules the build imports, and the extra that installs them.
BUILD_NEEDS = {"SCons": "SCons", "elftools": "pyelftools"}


def source_tree() -> Path | None:
    """The folder holding the SConstruct this install builds from, or None.

    A wheel install: the package folder itself (setup.py copies the SCons
    tree there).  An editable install: the checkout, the package folder's
    parent (the package lives in <checkout>/core).
    """
    for candidate in (PACKAGE_DIR, PACKAGE_DIR.parent):
        if (candidate / "SConstruct").is_file() and (candidate / "site_scons").is_dir():
            return candidate
    return None


def missing_build_extra() -> str | None:
    """One line naming what the build needs and how to install it, or None."""
    missing = [dist for mod, dist in BUILD_NEEDS.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not installed for {sys.executable}; "
        "install the build extra: pip install 'simpler-build[build]'"
    )


def _variable(text: str) -> str:
    """A SCons variable argument: NAME=VALUE (SCons checks the name and the value)."""
    name, eq, _value = text.partition("=")
    if not eq or not name or not name.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (for example arch=a5)")
    return text


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"invalid job count {text!r} (expected a positive integer)"
        )
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build the runtime binaries from this install's sources with SCons.",
        epilog="Variables (arch=, runtime=, mode=, cache=, CC=, CFLAGS=, ...) are SCons's: "
        "see `simpler-build build --scons-help`.",
    )
    p.add_argument(
        "variables",
        nargs="*",
        type=_variable,
        metavar="NAME=VALUE",
        help="SCons variables, e.g. arch=a5 mode=debug CC=clang",
    )
    p.add_argument(
        "--build-dir",
        type=Path,
        default=Path("build"),
        metavar="DIR",
        help="output directory (default: ./build); created if missing",
    )
    p.add_argument("-j", "--jobs", type=_jobs, default=os.cpu_count() or 1, metavar="N")
    p.add_argument("--scons-help", action="store_true", help="list the SCons variables and exit")
    p.add_argument("--print-source", action="store_true", help="print the source tree and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    tree = source_tree()
    if tree is None:
        print(
            f"{PROG}: error: {PACKAGE_DIR}: this install carries no SConstruct "
            "(reinstall simpler-build from a wheel or a checkout)",
            file=sys.stderr,
        )
        return 1
    if args.print_source:
        print(tree)
        return 0
    problem = missing_build_extra()
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 1
    build_dir = args.build_dir.expanduser().absolute()
    if build_dir.exists() and not build_dir.is_dir():
        print(f"{PROG}: error: --build-dir {build_dir}: not a directory", file=sys.stderr)
        return 1
    if any(v.split("=", 1)[0] == "build_dir" for v in args.variables):
        print(f"{PROG}: error: give the output directory as --build-dir DIR", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "SCons", "-C", str(tree), f"-j{args.jobs}"]
    cmd += ["-h"] if args.scons_help else []
    cmd += [*args.variables, f"build_dir={build_dir}"]
    # -C changes SCons's directory; the user's cwd stays the launch directory,
    # where the SConstruct looks for custom.py.
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
