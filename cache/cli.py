"""`simpler-build cache {warm,fetch,push,stats,verify,gc,ls,clear}`.

Imports stay light (no tqdm unless a bar is shown, no lock module unless a lock
is taken) because `cache warm` on a warm cache runs in every build and CI
shard.  Errors print one line, ``simpler-build cache: error: <path>: <problem>``,
and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from simpler_build.cache.errors import CacheError

PROG = "simpler-build cache"
#: Show a progress bar only for a warm of at least this many SOs, and only on a TTY.
PROGRESS_MIN_ENTRIES = 16
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from '500K', '10M', '1G', '1.5GiB' or a plain byte count (binary units)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r} (expected bytes or a number with K, M, G or T)"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _path(text: str) -> Path:
    """A path argument: a NUL byte or an empty string is a usage error, not a traceback."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"invalid path {text!r}")
    return Path(text)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=_path,
        default=argparse.SUPPRESS,
        help="cache root (default: $SIMPLER_CACHE_DIR, else the user cache directory)",
    )
    common.add_argument(
        "--remote",
        metavar="URL",
        action="append",
        default=argparse.SUPPRESS,
        help="remote storage URL(s), replacing $SIMPLER_REMOTE_STORAGE (repeatable)",
    )
    parser = argparse.ArgumentParser(prog=PROG, description="Manage the artifact cache.")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=_path,
        default=None,
        help="cache root (default: $SIMPLER_CACHE_DIR, else the user cache directory)",
    )
    parser.add_argument(
        "--remote",
        metavar="URL",
        action="append",
        default=None,
        help="remote storage URL(s), replacing $SIMPLER_REMOTE_STORAGE (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("warm", parents=[common], help="put the binaries named by manifests")
    p.add_argument(
        "sources", nargs="*", default=["build"], metavar="MANIFEST_OR_BUILD_DIR", type=_path
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")

    p = sub.add_parser(
        "fetch", parents=[common], help="pull what manifests name from the remote tier"
    )
    p.add_argument("sources", nargs="*", default=["build"], metavar="MANIFEST_OR_DIR", type=_path)
    p.add_argument("--json", action="store_true", help="machine-readable report")

    p = sub.add_parser("push", parents=[common], help="push what manifests name to the remotes")
    p.add_argument(
        "sources", nargs="*", default=["build"], metavar="MANIFEST_OR_BUILD_DIR", type=_path
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")

    p = sub.add_parser("stats", parents=[common], help="entries, size, hits, misses, ...")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("verify", parents=[common], help="hash every object (exit 1 if corrupt)")
    p.add_argument("--repair", action="store_true", help="quarantine corrupt objects")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("gc", parents=[common], help="sweep crash leftovers, evict LRU entries")
    p.add_argument("--max-size", type=parse_size, metavar="SIZE", help="e.g. 500K, 10M, 1G")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ls", parents=[common], help="list cached objects")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("clear", parents=[common], help="remove every cached object")
    p.add_argument("--yes", action="store_true", help="really remove everything")
    p.add_argument("--json", action="store_true")
    return parser


def _emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _cmd_warm(cache: Any, args: argparse.Namespace) -> int:
    from simpler_build.cache import warm

    tasks = warm.plan(args.sources, cache)
    bar = None
    if sys.stderr.isatty() and len(tasks) >= PROGRESS_MIN_ENTRIES and not args.json:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="so", desc="warm", file=sys.stderr, leave=False)
    try:
        report = warm.apply(cache, tasks, on_done=(lambda _t: bar.update()) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        _emit_json({"cache_dir": str(cache.root), **report.to_json()})
        return 0
    for label, items in (("added", report.added), ("present", report.present)):
        for i in items:
            print(f"{label:8} {i.fingerprint}  {i.arch}/{i.runtime}  {i.source}")
    print(
        f"warm: {len(report.added)} added, {len(report.present)} already present"
        f" (cache: {cache.root})"
    )
    return 0


def _remotes(args: argparse.Namespace) -> list[Any]:
    """The remotes of --remote (all of them, space-separated too), else the environment."""
    from simpler_build.remote import open_remotes

    if args.remote is not None:
        return open_remotes(" ".join(args.remote), "--remote")
    return open_remotes()


def _cmd_fetch(cache: Any, args: argparse.Namespace) -> int:
    from simpler_build.cache.transfer import collect_manifests, pull, wanted_of

    remotes = _remotes(args)  # a bad URL is a usage error, reported before anything else
    manifests = collect_manifests(args.sources)
    wanted = [w for m in manifests for w in wanted_of(m)]
    report = pull(cache, wanted, remotes)
    if args.json:
        _emit_json({"cache_dir": str(cache.root), **report.to_json()})
    else:
        for w in report.pulled:
            print(f"pulled   {w.fingerprint}  {w.arch}/{w.runtime or '-'}  {w.role}")
    if not remotes and report.missing:
        print(
            f"{PROG}: error: no remote storage configured "
            "(set SIMPLER_REMOTE_STORAGE or pass --remote URL)",
            file=sys.stderr,
        )
    for w in report.missing:
        print(
            f"{PROG}: error: {w.manifest}: {w.role} {w.fingerprint} ({w.beside.name}) "
            "is available nowhere (not in the local cache, not intact on any remote)",
            file=sys.stderr,
        )
    if not args.json:
        print(
            f"fetch: {len(report.pulled)} pulled ({format_size(report.bytes_pulled)}), "
            f"{len(report.present)} already cached, {len(report.rejected)} refused, "
            f"{len(report.missing)} missing (cache: {cache.root})"
        )
    return 0 if report.complete else 1


def _cmd_push(cache: Any, args: argparse.Namespace) -> int:
    from simpler_build.cache.transfer import collect_manifests, push, wanted_of

    remotes = _remotes(args)
    manifests = collect_manifests(args.sources)
    if not remotes:
        print(
            f"{PROG}: error: no remote storage configured "
            "(set SIMPLER_REMOTE_STORAGE or pass --remote URL)",
            file=sys.stderr,
        )
        return 2
    report = push(cache, [w for m in manifests for w in wanted_of(m)], remotes)
    if args.json:
        _emit_json(report.to_json())
    else:
        for url, w in report.pushed:
            print(f"pushed   {w.fingerprint}  {w.arch}/{w.runtime or '-'}  {w.role}  -> {url}")
        for url in report.read_only:
            print(f"push: {url} is read-only; nothing pushed to it")
        for url in report.failed:
            print(f"push: could not write to {url} (see the warning above); nothing lost locally")
        if report.too_large:
            names = ", ".join(sorted({w.label() for _u, w in report.too_large}))
            print(f"push: not pushed, larger than the remote's max-size: {names}")
        print(
            f"push: {len(report.pushed)} pushed ({format_size(report.bytes_pushed)}), "
            f"{len(report.present)} already present"
        )
    for w in report.unavailable:
        print(
            f"{PROG}: error: {w.manifest}: {w.role} {w.fingerprint} has no intact local copy "
            "to push (build it, or fetch it first)",
            file=sys.stderr,
        )
    return 1 if report.unavailable else 0


def _cmd_stats(cache: Any, args: argparse.Namespace) -> int:
    s = cache.stats()
    if args.json:
        _emit_json(s.to_json())
        return 0
    lookups = s.hits + s.misses
    rate = f"{100.0 * s.hits / lookups:.1f} %" if lookups else "-"
    rows = [
        ("cache directory", str(s.root)),
        ("entries", str(s.entries)),
        ("size", f"{format_size(s.bytes)} ({s.bytes} bytes)"),
        ("max size", format_size(s.max_bytes) if s.max_bytes is not None else "unlimited"),
        ("hits", str(s.hits)),
        ("misses", str(s.misses)),
        ("hit rate", rate),
        ("added", f"{s.added} ({format_size(s.bytes_added)})"),
        ("evictions", f"{s.evictions} ({format_size(s.bytes_evicted)})"),
        ("corruptions", str(s.corruptions)),
        ("quarantined", str(s.quarantined)),
        ("remote hits", str(s.remote_hits)),
        ("remote misses", str(s.remote_misses)),
        ("remote errors", str(s.remote_errors)),
        ("remote rejected", str(s.remote_rejected)),
        ("pulled", format_size(s.bytes_pulled)),
        ("pushed", format_size(s.bytes_pushed)),
    ]
    for name, value in rows:
        print(f"{name:16} {value}")
    return 0


def _cmd_verify(cache: Any, args: argparse.Namespace) -> int:
    report = cache.verify(repair=args.repair)
    if args.json:
        _emit_json(report.to_json())
    else:
        for finding in report.findings:
            print(finding.line())
        for bad in report.corrupt:
            fix = ""
            if bad.quarantined_to is not None:
                fix = f" (quarantined to {bad.quarantined_to})"
            elif bad.repaired:
                fix = " (metadata rewritten)"
            print(f"corrupt: {bad.path}: {bad.problem}{fix}")
        gone = f", {len(report.gone)} evicted meanwhile" if report.gone else ""
        print(f"verify: {report.checked} checked, {len(report.corrupt)} corrupt{gone}")
    return 0 if report.clean else 1


def _cmd_gc(cache: Any, args: argparse.Namespace) -> int:
    report = cache.gc(max_bytes=args.max_size)
    if args.json:
        _emit_json(report.to_json())
        return 0
    for finding in report.findings:
        print(finding.line())
    evicted = sum(e.size for e in report.evicted)
    print(
        f"gc: removed {len(report.temp_removed)} temp files, "
        f"{len(report.orphan_meta_removed)} orphan metadata, "
        f"{report.orphan_locks_removed} orphan locks, "
        f"{report.quarantine_removed} old quarantined objects; "
        f"evicted {len(report.evicted)} entries ({format_size(evicted)}); "
        f"size {format_size(report.bytes_before)} -> {format_size(report.bytes_after)}"
        + (
            f"; unusable: {len(report.removed_unknown)} removed, "
            f"{len(report.quarantined_unknown)} quarantined, {len(report.skipped)} skipped"
            if report.findings
            else ""
        )
    )
    return 0


def _cmd_ls(cache: Any, args: argparse.Namespace) -> int:
    entries = cache.ls()
    if args.json:
        _emit_json([e.to_json() for e in entries])
        return 0
    for e in entries:
        print(
            f"{e.fingerprint}  {e.size:>10}  {e.arch or '-':6} {e.runtime or '-':24} "
            f"{_when(e.last_used)}  {e.build_id or '-'}"
        )
    return 0


def _cmd_clear(cache: Any, args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"{PROG}: error: {cache.root}: refusing to clear without --yes", file=sys.stderr)
        return 2
    from simpler_build.cache.maintenance import clear

    report = clear(cache)
    if args.json:
        _emit_json({"cache_dir": str(cache.root), **report.to_json()})
        return 0
    for finding in report.findings:
        print(finding.line())
    print(
        f"clear: removed {report.removed} entries from {cache.root}"
        + (f" ({len(report.skipped)} skipped)" if report.skipped else "")
    )
    return 0


_COMMANDS = {
    "warm": _cmd_warm,
    "fetch": _cmd_fetch,
    "push": _cmd_push,
    "stats": _cmd_stats,
    "verify": _cmd_verify,
    "gc": _cmd_gc,
    "ls": _cmd_ls,
    "clear": _cmd_clear,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `simpler-build cache`; returns the exit status."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    from simpler_build.cache.store import ArtifactCache
    from simpler_build.remote.errors import RemoteConfigError

    try:
        cache = ArtifactCache(args.cache_dir)
        return _COMMANDS[args.command](cache, args)
    except RemoteConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except CacheError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "cache"
        print(f"{PROG}: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
