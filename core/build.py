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
from typing import NoReturn

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
    # ASCII digits only: int() also takes "1_0", " 3" and other scripts' digits.
    n = int(text) if text.isascii() and text.isdigit() else 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"invalid job count {text!r} (expected a positive integer)"
        )
    return n


class _UsageError(Exception):
    """A bad command line, reported by main (one line, or JSON with --json)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    p.add_argument(
        "--json",
        action="store_true",
        help="SCons's output goes to stderr; stdout gets one JSON object (docs/json.md)",
    )
    return p


def _error(json_mode: bool, message: str, code: int, kind: str) -> int:
    from simpler_build.cache.cli import report_error

    return report_error(json_mode, PROG, message, code, kind=kind)


def _report(build_dir: Path, tree: Path, code: int) -> dict[str, object]:
    """The --json object: where it built and the manifests now under the build directory."""
    from simpler_build.manifest import MANIFEST_NAME

    manifests = sorted(str(p) for p in build_dir.rglob(MANIFEST_NAME)) if code == 0 else []
    return {
        "schema_version": 1,
        "build_dir": str(build_dir),
        "source": str(tree),
        "exit_code": code,
        "manifests": manifests,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in argv
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except _UsageError as exc:
        if not json_mode:
            p.print_usage(sys.stderr)
        return _error(json_mode, str(exc), 2, "usage")
    tree = source_tree()
    if tree is None:
        return _error(
            json_mode,
            f"{PACKAGE_DIR}: this install carries no SConstruct "
            "(reinstall simpler-build from a wheel or a checkout)",
            1,
            "install",
        )
    if args.print_source:
        print(tree)
        return 0
    problem = missing_build_extra()
    if problem:
        return _error(json_mode, problem, 1, "install")
    build_dir = args.build_dir.expanduser().absolute()
    if build_dir.exists() and not build_dir.is_dir():
        return _error(json_mode, f"--build-dir {build_dir}: not a directory", 1, "usage")
    if any(v.split("=", 1)[0] == "build_dir" for v in args.variables):
        return _error(json_mode, "give the output directory as --build-dir DIR", 2, "usage")
    cmd = [sys.executable, "-m", "SCons", "-C", str(tree), f"-j{args.jobs}"]
    cmd += ["-h"] if args.scons_help else []
    cmd += [*args.variables, f"build_dir={build_dir}"]
    # -C changes SCons's directory; the user's cwd stays the launch directory,
    # where the SConstruct looks for custom.py.  With --json, stdout is the report's alone.
    out = sys.stderr if args.json else None
    code = subprocess.run(cmd, check=False, stdout=out).returncode
    if args.json:
        import json

        json.dump(_report(build_dir, tree, code), sys.stdout)
        sys.stdout.write("\n")
    return code
