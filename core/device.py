"""`simpler-build device gc`: clean a simulated device's preinstall directory while it is in use.

A preinstall directory gains one `simpler_inner_<fp>_<device>.so` per build and
keeps it forever, plus the `.tmp.XXXXXX` files of dispatchers killed mid-write.
`gc` removes both, under the same lock the bootstrap takes: an exclusive
`flock` of the directory, which every bootstrapping process holds shared from
its probe to its load (docs/architecture.md "The preinstall protocol").  So gc
waits for an install in progress, and a process that starts later finds the
file gone and installs it again.  Removing a name never disturbs a process
that has the SO loaded: it keeps the file it opened.

This module is the device's on-disk layout for code that must not import the
runtime (numpy): the CLI.  `runtime/sim/fs.py` takes the layout from here.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from simpler_build.cache.fingerprint import is_fingerprint

TYPE_CHECKING = False  # the simulator imports this module: no typing on its import path
if TYPE_CHECKING:  # nor argparse
    import argparse
    from typing import Any

SIM_ROOT_ENV = "SIMPLER_SIM_ROOT"
#: The name patterns, compiled on first use (`DISPATCHER_TEMP` etc. are module attributes
#: made by `__getattr__`): the simulator imports this module on every first run, which
#: matches names with `installed_fingerprint` and `is_dispatcher_temp` and compiles none.
_PATTERNS = {
    #: dispatcher.cpp atomic_install: `<preinstall>/simpler_inner_<fp>_<dev>.so.tmp.XXXXXX`.
    "DISPATCHER_TEMP": r"^simpler_inner_[0-9a-f]{16}(?:_[0-9]+)?\.so\.tmp\.[A-Za-z0-9]{6}\Z",
    #: An installed inner SO: `simpler_inner_<fp>_<dev>.so`, or the legacy content-only name.
    "INSTALLED_SO": r"^simpler_inner_([0-9a-f]{16})(?:_([0-9]+))?\.so\Z",
    "_DEVICE_DIR": r"^device([0-9]+)\Z",
}
_INNER_PREFIX = "simpler_inner_"


def _compiled(name: str) -> re.Pattern[str]:
    """The pattern `name` of _PATTERNS, compiled once and kept as a module attribute."""
    pattern = globals().get(name)
    if pattern is None:
        pattern = globals()[name] = re.compile(_PATTERNS[name])
    return pattern


def __getattr__(name: str) -> re.Pattern[str]:
    if name in _PATTERNS:
        return _compiled(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def installed_fingerprint(name: str) -> str | None:
    """The fingerprint in an installed inner SO's name, or None if `name` is not one.

    Exactly `INSTALLED_SO.match(name).group(1)` (tests/runtime/test_device_names.py
    checks the two agree), with string operations: every first run of the runtime
    checks the name of the SO it loads, and compiling the pattern cost more than
    the rest of that check.
    """
    if not (name.startswith(_INNER_PREFIX) and name.endswith(".so")):
        return None
    middle = name[len(_INNER_PREFIX) : -3]
    fingerprint, device = middle[:16], middle[16:]
    if not is_fingerprint(fingerprint):
        return None
    if device and not (device[0] == "_" and device[1:].isascii() and device[1:].isdigit()):
        return None
    return fingerprint


def is_dispatcher_temp(name: str) -> bool:
    """Whether `name` is a dispatcher's temp file (`DISPATCHER_TEMP`).

    Only a name that could be one is matched, so a directory of installed SOs
    (every first run sweeps its preinstall directory) compiles no pattern.
    """
    return ".so.tmp." in name and _compiled("DISPATCHER_TEMP").match(name) is not None


def sim_root() -> Path:
    """Root of every simulated device's filesystem (read at call time, so tests can redirect).

    `SIMPLER_SIM_ROOT`, else the platform's user state directory: a device's state is
    not a cache, so it stays out of the cache root that CI saves and `gc` bounds.
    """
    env = os.environ.get(SIM_ROOT_ENV)
    if env:
        return Path(env).expanduser().absolute()
    from simpler_build.cache.paths import user_dir

    return user_dir("state") / "sim"


def preinstall_dirs(device: int | None) -> list[tuple[int, Path]]:
    """(device id, preinstall directory) pairs to clean: one device's, or every device's.

    The dies of an a2a3 chip share the directory of the chip's first die
    (`device<2k>`), so an odd die without a directory of its own is cleaned
    through its chip's.
    """
    root = sim_root()
    if device is not None:
        own = root / f"device{device}" / "preinstall"
        if not own.exists() and device % 2 and (root / f"device{device - 1}").is_dir():
            return [(device - 1, root / f"device{device - 1}" / "preinstall")]
        return [(device, own)]
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), n) for n in names if (m := _compiled("_DEVICE_DIR").match(n))]
    return [(d, root / n / "preinstall") for d, n in sorted(found)]


class GcReport:
    """What gc did to one preinstall directory (a plain class: no dataclasses at import)."""

    __slots__ = ("bytes_freed", "device", "directory", "kept", "removed_so", "removed_temp")

    def __init__(self, device: int, directory: Path) -> None:
        self.device = device
        self.directory = directory
        self.removed_temp: list[str] = []
        self.removed_so: list[str] = []
        self.kept: list[str] = []
        self.bytes_freed = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "directory": str(self.directory),
            "removed_temp": self.removed_temp,
            "removed_so": self.removed_so,
            "kept": self.kept,
            "bytes_freed": self.bytes_freed,
        }


def gc_directory(device: int, directory: Path, keep: frozenset[str]) -> GcReport:
    """Remove temp files and the installed SOs whose fingerprint is not in `keep`.

    Holds the directory's flock exclusively, so no dispatcher is mid-write and no
    process is between its probe and its load.  A missing directory is nothing to do.
    """
    report = GcReport(device, directory)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(directory, flags)
    except FileNotFoundError:
        return report
    except NotADirectoryError:
        raise NotADirectoryError(20, "is not a directory", str(directory)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a blocking wait: bootstraps hold it briefly
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    continue
                temp = is_dispatcher_temp(entry.name)
                installed = installed_fingerprint(entry.name)
                if installed is not None and installed in keep:
                    report.kept.append(entry.name)
                    continue
                if not temp and installed is None:
                    continue  # not the dispatcher's: left alone
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                (report.removed_temp if temp else report.removed_so).append(entry.name)
                report.bytes_freed += size
    finally:
        os.close(fd)  # drops the lock
    return report


def gc(device: int | None, keep: list[str]) -> list[GcReport]:
    """gc of one device's preinstall directory, or of every device's."""
    return [gc_directory(d, path, frozenset(keep)) for d, path in preinstall_dirs(device)]


def _device_id(text: str) -> int:
    import argparse

    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise argparse.ArgumentTypeError(f"invalid device id {text!r}: must be 0 or more")
    # ASCII digits only: int() also takes "1_0", " 3" and other scripts' digits.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"invalid device id {text!r}")
    return int(text)


def _fingerprint(text: str) -> str:
    import argparse

    if not is_fingerprint(text):
        raise argparse.ArgumentTypeError(
            f"invalid fingerprint {text!r}: 16 lowercase hex digits, as in simpler_inner_<fp>"
        )
    return text


def configure(parser: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `gc` under `simpler-build device`."""
    from simpler_build.cache import cli as cache_cli

    sub = parser.add_subparsers(
        dest="device_command", metavar="COMMAND", parser_class=parser_class, required=True
    )
    gc_parser = sub.add_parser(
        "gc",
        help="remove old inner SOs and killed writers' temp files from a preinstall directory",
        description="Clean a simulated device's preinstall directory, safely while other "
        "processes use it: old builds' inner SOs (all but --keep) and the temp files of "
        "dispatchers killed mid-write.",
    )
    gc_parser.add_argument(
        "--device", type=_device_id, metavar="N", help="only device N (default: every device)"
    )
    gc_parser.add_argument(
        "--keep",
        nargs="+",
        type=_fingerprint,
        default=[],
        metavar="FP",
        help="fingerprints of inner SOs to keep installed",
    )
    gc_parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object (docs/json.md); errors as JSON on stderr",
    )
    cache_cli.add_verbosity(gc_parser, suppress=True)
    gc_parser.set_defaults(_parser=gc_parser)


def run(args: argparse.Namespace, json_mode: bool) -> int:
    """Run `simpler-build device gc`; every error becomes one line (or one JSON object)."""
    import json
    import sys

    from simpler_build.cache import cli as cache_cli

    prog = "simpler-build device gc"
    try:
        reports = gc(args.device, args.keep)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else str(sim_root())
        message = f"{where}: {exc.strerror or exc}"
        return cache_cli.report_error(json_mode, prog, message, 1, kind="os", path=str(where))
    freed = sum(r.bytes_freed for r in reports)
    removed = sum(len(r.removed_so) + len(r.removed_temp) for r in reports)
    if json_mode:
        doc = {
            "schema_version": cache_cli.SCHEMA_VERSION,
            "sim_root": str(sim_root()),
            "directories": [r.to_json() for r in reports],
            "removed": removed,
            "bytes_freed": freed,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    quiet = bool(getattr(args, "quiet", False))
    verbose = int(getattr(args, "verbose", 0) or 0) > 0 and not quiet
    for r in reports:
        if verbose:
            for name in r.removed_so + r.removed_temp:
                print(f"removed {r.directory / name}")
    if not quiet:
        where = f"{len(reports)} preinstall director{'y' if len(reports) == 1 else 'ies'}"
        print(f"device gc: removed {removed} file(s), {freed} bytes, in {where}")
    return 0
