"""`simpler-build cache {warm,fetch,push,stats,verify,gc,ls,clear,config}`.

Imports stay light (no tqdm unless a bar is shown, no lock module unless a lock
is taken, each command's implementation only when it runs) because `cache warm`
on a warm cache runs in every build and CI shard.  Habits follow ccache's:

* output: a summary line by default, a line per item with ``-v``, nothing
  but errors with ``-q``; ``--json`` prints one object (docs/json.md);
* errors: one line, ``simpler-build cache: error: <path>: <problem>``, exit 1
  (usage errors: the subcommand's usage and exit 2); with ``--json`` the error
  is a JSON object on stderr instead;
* a closed stdout (``warm -v | head -1``) ends the command quietly, exit 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

from simpler_build.cache.errors import CacheError
from simpler_build.errors import SimplerError

# No argparse, typing or collections.abc at import time: `cache warm` on a warm cache
# runs in every build, and `fast_parse` answers its common forms without argparse
# (whose import, gettext and help formatter cost several milliseconds).  `Parser`
# (an ArgumentParser subclass) is made on first use, through `__getattr__` below.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import IO, Any, NoReturn

PROG = "simpler-build cache"
#: Version of every `--json` object's layout (docs/json.md); bumped when a key changes meaning.
SCHEMA_VERSION = 1
#: Show a progress bar only for a warm of at least this many SOs, and only on a TTY.
PROGRESS_MIN_ENTRIES = 16


class UsageError(SimplerError):
    """A bad command line, raised by `Parser.error` instead of exiting (so --json can report it)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


def _make_parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class Parser(argparse.ArgumentParser):
        """ArgumentParser whose errors name the (sub)command that failed, not the top level."""

        # Every parser here is given a HelpFormatter class (argparse's default or a subclass),
        # which takes the `width` _get_formatter passes; typeshed only promises `prog`.
        formatter_class: type[argparse.HelpFormatter]

        def error(self, message: str) -> NoReturn:
            raise UsageError(self, message)

        def _get_formatter(self) -> argparse.HelpFormatter:
            # argparse's default width comes from shutil (which imports bz2, lzma, ...)
            # on every add_argument; os gives the same columns.
            return self.formatter_class(prog=self.prog, width=_columns() - 2)

    Parser.__module__ = __name__
    return Parser


def _columns() -> int:
    """Terminal width for help text: $COLUMNS, else the terminal's, else 80 (as shutil)."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _parser_class() -> type[argparse.ArgumentParser]:
    """`Parser`, made (and argparse imported) on first use."""
    made = globals().get("Parser")
    if made is None:
        made = globals()["Parser"] = _make_parser_class()
    return made


def __getattr__(name: str) -> Any:
    if name == "Parser":
        return _parser_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_size(text: str) -> int:
    """A size argument (cache/config.py's parser: K/M/G/T decimal, Ki/Mi/Gi/Ti binary)."""
    import argparse

    from simpler_build.cache.config import parse_size as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_size(n: int) -> str:
    from simpler_build.cache.config import format_size as fmt

    return fmt(n)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _path(text: str) -> Path:
    """A path argument: a NUL byte or an empty string is a usage error, not a traceback."""
    import argparse

    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"invalid path {text!r}")
    return Path(text)


def add_verbosity(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """-q/-v; at inner levels they default to SUPPRESS so an outer level's value stands."""
    import argparse

    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="a line per item (e.g. per binary warm adds); -vv adds the log at INFO, -vvv at DEBUG",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if suppress else False,
        help="print nothing but errors (stats, ls and config still print their answer)",
    )


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as one JSON object (docs/json.md); errors as JSON on stderr",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the cache options and subcommands to `parser` (`simpler-build cache`)."""
    import argparse

    common = _parser_class()(add_help=False)
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
    add_verbosity(common, suppress=True)
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
    add_verbosity(parser, suppress=True)
    parser.set_defaults(_parser=parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=description)
        p.set_defaults(_parser=p)
        return p

    p = add(
        "warm",
        "put the binaries named by manifests",
        "Put every binary the manifests name into the cache (checked against the manifest "
        "first). Prints a summary; -v adds a line per binary.",
    )
    p.add_argument(
        "sources", nargs="*", default=["build"], metavar="MANIFEST_OR_BUILD_DIR", type=_path
    )
    _json_flag(p, "what was added and what was present")

    p = add(
        "fetch",
        "pull what manifests name from the remote tier",
        "Pull every binary the manifests name that the local cache lacks from the remotes "
        "($SIMPLER_REMOTE_STORAGE or --remote); exit 1 if one is available nowhere.",
    )
    p.add_argument("sources", nargs="*", default=["build"], metavar="MANIFEST_OR_DIR", type=_path)
    _json_flag(p, "what was pulled, present, refused and missing")

    p = add(
        "push",
        "push what manifests name to the remotes",
        "Push every binary the manifests name to the writable remotes.",
    )
    p.add_argument(
        "sources", nargs="*", default=["build"], metavar="MANIFEST_OR_BUILD_DIR", type=_path
    )
    _json_flag(p, "what was pushed")

    p = add(
        "stats",
        "sizes of every part of the cache root, hits, misses, ...",
        "Entries and bytes of every part of the cache root (the store, the SCons CacheDir, "
        "their quarantines, the rest), the configured bound and the counters.",
    )
    p.add_argument("-z", "--zero", action="store_true", help="reset the counters (like ccache -z)")
    _json_flag(p, "the statistics")

    p = add(
        "verify",
        "hash every object (exit 1 if corrupt)",
        "Hash every object of the store against its name and check its metadata.",
    )
    p.add_argument("--repair", action="store_true", help="quarantine corrupt objects")
    _json_flag(p, "what was checked and what is corrupt")

    p = add(
        "gc",
        "sweep crash leftovers, bound the whole cache root",
        "Sweep crash leftovers, then evict least-recently-used entries of the store and of "
        "the SCons CacheDir until everything under the cache root fits in max_size "
        "(`cache config max_size`; 0 = unlimited).",
    )
    p.add_argument(
        "--max-size",
        type=parse_size,
        metavar="SIZE",
        help="bound for this run instead of the configured max_size: bytes, "
        "or 500K/10M/1G/1T (powers of 1000) or 512Ki/10Mi/1Gi/1Ti (powers of 1024); 0 = unlimited",
    )
    _json_flag(p, "what was swept and evicted")

    p = add("ls", "list cached objects", "List the store's objects, one line each.")
    _json_flag(p, "the objects")

    p = add(
        "clear",
        "remove every cached object and SCons CacheDir entry",
        "Remove every object of the store, every SCons CacheDir entry and both quarantines. "
        "Counters and settings stay.",
    )
    p.add_argument("--yes", action="store_true", help="really remove everything")
    _json_flag(p, "what was removed")

    p = add(
        "config",
        "show or change settings (simpler-build.conf in the cache root)",
        "Without KEY: every setting, its value and where it comes from (environment, file, "
        "default). With KEY: its value. With KEY VALUE: write it to the cache root's "
        "simpler-build.conf. Keys: max_size (env SIMPLER_CACHE_MAX_SIZE; 0 = unlimited).",
    )
    p.add_argument("key", nargs="?", metavar="KEY")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.add_argument("--unset", action="store_true", help="remove KEY from the file")
    _json_flag(p, "the settings")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _parser_class()(
        prog=prog, description="Manage the artifact cache (docs/architecture.md)."
    )
    configure(parser)
    return parser


class _Out:
    """stdout, honouring -q/-v; JSON goes through `json`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.verbose = int(getattr(args, "verbose", 0) or 0) > 0 and not self.quiet
        self.json = bool(getattr(args, "json", False))
        self.root: Path | None = None

    def line(self, text: str) -> None:
        """A summary line (not with -q)."""
        if not self.quiet:
            print(text)

    def item(self, text: str) -> None:
        """A line per item (only with -v)."""
        if self.verbose:
            print(text)

    def always(self, text: str) -> None:
        """The answer to a query (ls, stats, config): printed even with -q."""
        print(text)

    def emit(self, obj: dict[str, Any]) -> None:
        import json

        head = {"schema_version": SCHEMA_VERSION}
        if self.root is not None:
            head["cache_root"] = str(self.root)  # type: ignore[assignment]
        json.dump({**head, **obj}, sys.stdout, indent=2)
        sys.stdout.write("\n")


def _warm(cache: Any | None, args: argparse.Namespace, out: _Out) -> int:
    """`cache warm`; `run` passes no `cache`, so that none (nor the store module) is
    made when the stat index answers every manifest (warm.py `warm_root`)."""
    from simpler_build.cache import warm
    from simpler_build.cache.paths import resolve_root

    root = out.root = cache.root if cache is not None else resolve_root(args.cache_dir)
    bars: list[Any] = []
    show_bar = not out.json and not out.quiet and not out.verbose

    def on_plan(count: int) -> Callable[[warm.WarmTask], None] | None:
        if not (show_bar and count >= PROGRESS_MIN_ENTRIES and sys.stderr.isatty()):
            return None
        from tqdm import tqdm

        bar = tqdm(total=count, unit="so", desc="warm", file=sys.stderr, leave=False)
        bars.append(bar)
        return lambda _task: bar.update()

    try:
        report, cache = warm.warm_root(root, args.sources, on_plan, cache)
    finally:
        for bar in bars:
            bar.close()
    cleanup = _cleanup_if_over(cache) if report.added and cache is not None else None
    if out.json:
        out.emit({**report.to_json(), "cleanup": cleanup})
        return 0
    if out.verbose:
        for label, items in (("added", report.added), ("present", report.present)):
            for i in items:
                out.item(f"{label:8} {i.fingerprint}  {i.arch}/{i.runtime}  {i.source}")
    added, present = report.counts()
    out.line(f"warm: {added} added, {present} already present (cache: {root})")
    _cleanup_line(out, cleanup)
    return 0


def _cleanup_if_over(cache: Any) -> dict[str, int] | None:
    """ccache's automatic cleanup: after a command added to the cache, `gc` the root
    when it is over max_size.  None when nothing had to be evicted (or no bound)."""
    from simpler_build.cache import parts

    bound = _configured_bound(cache)[0]
    if bound is None or parts.usage(cache.root).bytes <= bound:
        return None
    from simpler_build.cache.maintenance import DEFAULT_GRACE_SECONDS, gc_root

    report = gc_root(cache, bound, DEFAULT_GRACE_SECONDS)
    return {
        "max_bytes": bound,
        "evicted": len(report.evicted),
        "scons_evicted": len(report.scons_evicted),
        "root_bytes_after": report.root_bytes_after,
    }


def _cleanup_line(out: _Out, cleanup: dict[str, int] | None) -> None:
    if cleanup is not None:
        out.line(
            f"cleanup: over max_size {format_size(cleanup['max_bytes'])}: evicted "
            f"{cleanup['evicted']} entries and {cleanup['scons_evicted']} SCons entries; "
            f"root now {format_size(cleanup['root_bytes_after'])}"
        )


def _remotes(args: argparse.Namespace) -> list[Any]:
    """The remotes of --remote (all of them, space-separated too), else the environment."""
    from simpler_build.remote import open_remotes

    if args.remote is not None:
        return open_remotes(" ".join(args.remote), "--remote")
    return open_remotes()


_NO_REMOTE = "no remote storage configured (set SIMPLER_REMOTE_STORAGE or pass --remote URL)"


def _fetch(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    from simpler_build.cache.transfer import collect_manifests, pull, wanted_of

    remotes = _remotes(args)  # a bad URL is a usage error, reported before anything else
    manifests = collect_manifests(args.sources)
    wanted = [w for m in manifests for w in wanted_of(m)]
    report = pull(cache, wanted, remotes)
    problems = [_NO_REMOTE] if not remotes and report.missing else []
    problems += [
        f"{w.manifest}: {w.role} {w.fingerprint} ({w.beside.name}) is available nowhere "
        "(not in the local cache, not intact on any remote)"
        for w in report.missing
    ]
    cleanup = _cleanup_if_over(cache) if report.pulled else None
    if out.json:
        out.emit({**report.to_json(), "cleanup": cleanup})
    else:
        for w in report.pulled:
            out.item(f"pulled   {w.fingerprint}  {w.arch}/{w.runtime or '-'}  {w.role}")
    _problems(out, problems, 1)
    if not out.json:
        out.line(
            f"fetch: {len(report.pulled)} pulled ({format_size(report.bytes_pulled)}), "
            f"{len(report.present)} already cached, {len(report.rejected)} refused, "
            f"{len(report.missing)} missing (cache: {cache.root})"
        )
        _cleanup_line(out, cleanup)
    return 0 if report.complete else 1


def _problems(out: _Out, lines: list[str], code: int) -> None:
    """Errors that do not stop the command: one line each, or one JSON object with --json."""
    if not lines:
        return
    if out.json:
        import json

        json.dump(
            {
                "schema_version": SCHEMA_VERSION,
                "error": {"message": lines[0], "problems": lines, "exit_code": code},
            },
            sys.stderr,
        )
        sys.stderr.write("\n")
        return
    for text in lines:
        print(f"{PROG}: error: {text}", file=sys.stderr)


def _push(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    from simpler_build.cache.transfer import collect_manifests, push, wanted_of

    remotes = _remotes(args)
    manifests = collect_manifests(args.sources)
    if not remotes:
        raise UsageError(args._parser, _NO_REMOTE)
    report = push(cache, [w for m in manifests for w in wanted_of(m)], remotes)
    if out.json:
        out.emit(report.to_json())
    else:
        for url, w in report.pushed:
            out.item(f"pushed   {w.fingerprint}  {w.arch}/{w.runtime or '-'}  {w.role}  -> {url}")
        for url in report.read_only:
            out.line(f"push: {url} is read-only; nothing pushed to it")
        for url in report.failed:
            out.line(
                f"push: could not write to {url} (see the warning above); nothing lost locally"
            )
        if report.too_large:
            names = ", ".join(sorted({w.label() for _u, w in report.too_large}))
            out.line(f"push: not pushed, larger than the remote's max-size: {names}")
        out.line(
            f"push: {len(report.pushed)} pushed ({format_size(report.bytes_pushed)}), "
            f"{len(report.present)} already present"
        )
    problems = [
        f"{w.manifest}: {w.role} {w.fingerprint} has no intact local copy "
        "to push (build it, or fetch it first)"
        for w in report.unavailable
    ]
    _problems(out, problems, 1)
    return 1 if report.unavailable else 0


def _configured_bound(cache: Any) -> tuple[int | None, str]:
    from simpler_build.cache import config

    setting = config.settings(cache.root)["max_size"]
    return (setting.parsed or None), setting.origin


def stats_json(cache: Any) -> dict[str, Any]:
    """The `stats --json` object without its head (docs/json.md)."""
    from simpler_build.cache import parts

    s = cache.stats()
    usage = parts.usage(cache.root)
    bound, origin = _configured_bound(cache)
    body = s.to_json()
    for key in ("root", "max_bytes"):
        body.pop(key, None)
    return {
        **body,
        "max_bytes": bound,
        "max_bytes_origin": origin,
        "root_bytes": usage.bytes,
        "scons_entries": len(parts.scons_entries(cache.root)),
        "parts": usage.to_json(),
    }


def _stats(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    if args.zero:
        from simpler_build.cache.counters import Counters

        Counters(cache.layout.stats_file, cache._ensure_root).zero()
        if not out.json:
            out.line(f"stats: counters zeroed ({cache.root})")
            return 0
    s = stats_json(cache)
    if out.json:
        out.emit(s)
        return 0
    lookups = s["hits"] + s["misses"]
    rate = f"{100.0 * s['hits'] / lookups:.1f} %" if lookups else "-"
    bound = s["max_bytes"]
    parts = s["parts"]

    def part(name: str) -> str:
        return f"{format_size(parts[name]['bytes'])} in {parts[name]['files']} files"

    rows = [
        ("cache directory", str(cache.root)),
        ("entries", str(s["entries"])),
        ("size", f"{format_size(s['bytes'])} ({s['bytes']} bytes)"),
        ("root size", f"{format_size(s['root_bytes'])} ({s['root_bytes']} bytes)"),
        ("  store", part("store")),
        ("  store quar.", part("store_quarantine")),
        ("  scons", f"{part('scons')}, {s['scons_entries']} entries"),
        ("  scons quar.", part("scons_quarantine")),
        ("  other", part("other")),
        (
            "max size",
            (format_size(bound) if bound is not None else "unlimited")
            + f" ({s['max_bytes_origin']})",
        ),
        ("hits", str(s["hits"])),
        ("misses", str(s["misses"])),
        ("hit rate", rate),
        ("added", f"{s['added']} ({format_size(s['bytes_added'])})"),
        ("evictions", f"{s['evictions']} ({format_size(s['bytes_evicted'])})"),
        (
            "scons evictions",
            f"{s['scons_evictions']} ({format_size(s['bytes_scons_evicted'])})",
        ),
        ("cleanups", str(s["cleanups"])),
        ("corruptions", str(s["corruptions"])),
        ("quarantined", str(s["quarantined"])),
        ("remote hits", str(s["remote_hits"])),
        ("remote misses", str(s["remote_misses"])),
        ("remote errors", str(s["remote_errors"])),
        ("remote rejected", str(s["remote_rejected"])),
        ("pulled", format_size(s["bytes_pulled"])),
        ("pushed", format_size(s["bytes_pushed"])),
        ("stats updated", _when(s["stats_updated_timestamp"])),
        ("stats zeroed", _when(s["stats_zeroed_timestamp"])),
    ]
    for name, value in rows:
        out.always(f"{name:16} {value}")
    return 0


def _verify(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    report = cache.verify(repair=args.repair)
    if out.json:
        out.emit(report.to_json())
        return 0 if report.clean else 1
    for finding in report.findings:
        out.line(finding.line())
    for bad in report.corrupt:
        fix = ""
        if bad.quarantined_to is not None:
            fix = f" (quarantined to {bad.quarantined_to})"
        elif bad.repaired:
            fix = " (metadata rewritten)"
        out.line(f"corrupt: {bad.path}: {bad.problem}{fix}")
    gone = f", {len(report.gone)} evicted meanwhile" if report.gone else ""
    out.line(f"verify: {report.checked} checked, {len(report.corrupt)} corrupt{gone}")
    return 0 if report.clean else 1


def _gc(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    from simpler_build.cache.maintenance import DEFAULT_GRACE_SECONDS, gc_root

    bound = _configured_bound(cache)[0] if args.max_size is None else (args.max_size or None)
    report = gc_root(cache, bound, DEFAULT_GRACE_SECONDS)
    if out.json:
        out.emit(report.to_json())
        return 0
    for finding in report.findings:
        out.line(finding.line())
    for e in report.evicted:
        out.item(f"evicted  {e.fingerprint}  {e.size:>10}  {_when(e.last_used)}")
    for path in report.scons_evicted:
        out.item(f"evicted  {path}")
    evicted = sum(e.size for e in report.evicted)
    out.line(
        f"gc: removed {len(report.temp_removed) + report.scons_temp_removed} temp files, "
        f"{len(report.orphan_meta_removed)} orphan metadata, "
        f"{report.orphan_locks_removed} orphan locks, "
        f"{report.quarantine_removed + report.scons_quarantine_removed} old quarantined objects; "
        f"evicted {len(report.evicted)} entries ({format_size(evicted)}) and "
        f"{len(report.scons_evicted)} SCons entries ({format_size(report.bytes_scons_evicted)}); "
        f"root {format_size(report.root_bytes_before)} -> {format_size(report.root_bytes_after)}"
        f" (max {format_size(bound) if bound is not None else 'unlimited'})"
        + (
            f"; unusable: {len(report.removed_unknown)} removed, "
            f"{len(report.quarantined_unknown)} quarantined, {len(report.skipped)} skipped"
            if report.findings
            else ""
        )
    )
    return 0


def _ls(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    entries = cache.ls()
    if out.json:
        out.emit({"entries": [e.to_json() for e in entries]})
        return 0
    for e in entries:
        out.always(
            f"{e.fingerprint}  {e.size:>10}  {e.arch or '-':6} {e.runtime or '-':24} "
            f"{_when(e.last_used)}  {e.build_id or '-'}"
        )
    return 0


def _clear(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    if not args.yes:
        raise UsageError(args._parser, f"{cache.root}: refusing to clear without --yes")
    from simpler_build.cache.maintenance import clear_root

    report = clear_root(cache)
    if out.json:
        out.emit(report.to_json())
        return 0
    for finding in report.findings:
        out.line(finding.line())
    out.line(
        f"clear: removed {report.removed} entries and {report.scons_removed} SCons entries "
        f"from {cache.root}" + (f" ({len(report.skipped)} skipped)" if report.skipped else "")
    )
    return 0


def _config(cache: Any, args: argparse.Namespace, out: _Out) -> int:
    from simpler_build.cache import config

    if args.key is None:
        if args.unset or args.value is not None:
            raise UsageError(args._parser, "--unset needs a KEY")
    elif args.key not in config.KEYS:
        known = ", ".join(sorted(config.KEYS))
        raise UsageError(args._parser, f"unknown key {args.key!r} (known: {known})")
    if args.unset and args.value is not None:
        raise UsageError(args._parser, "give either --unset KEY or KEY VALUE, not both")
    changing = args.unset or args.value is not None
    if changing:
        config.set_value(cache.root, args.key, None if args.unset else args.value)
    current = config.settings(cache.root)
    shown = {args.key: current[args.key]} if args.key else current
    if changing:
        setting = current[args.key]
        if setting.origin == "environment" and not out.json:
            print(
                f"{PROG}: note: {setting.where} overrides {args.key} in "
                f"{config.config_path(cache.root)}",
                file=sys.stderr,
            )
    if out.json:
        out.emit(
            {
                "config_file": str(config.config_path(cache.root)),
                "settings": {
                    k: {
                        "value": s.value,
                        "bytes": s.parsed,
                        "origin": s.origin,
                        "where": s.where,
                    }
                    for k, s in shown.items()
                },
            }
        )
        return 0
    if changing:
        out.line(f"config: {args.key} = {current[args.key].value}")
        return 0
    if args.key:
        out.always(current[args.key].value)
        return 0
    for key, s in shown.items():
        where = f"{s.origin}: {s.where}" if s.where else s.origin
        out.always(f"({where}) {key} = {s.value}")
    return 0


_COMMANDS: dict[str, Callable[[Any, argparse.Namespace, _Out], int]] = {
    "warm": _warm,
    "fetch": _fetch,
    "push": _push,
    "stats": _stats,
    "verify": _verify,
    "gc": _gc,
    "ls": _ls,
    "clear": _clear,
    "config": _config,
}


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (`... | head -1`)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _fd, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def quiet_exit_on_closed_stdout() -> int:
    """After EPIPE on stdout: point it at /dev/null (so the exit flush cannot fail) and exit 0."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 0


def report_error(
    json_mode: bool, prog: str, message: str, code: int, *, kind: str, **extra: Any
) -> int:
    """One error: a line `<prog>: error: <message>`, or with --json an object on stderr."""
    if json_mode:
        import json

        obj = {"message": message, "kind": kind, "exit_code": code, **extra}
        err: IO[str] = sys.stderr
        json.dump({"schema_version": SCHEMA_VERSION, "error": obj}, err)
        err.write("\n")
    else:
        print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def usage_error(exc: UsageError, json_mode: bool) -> int:
    """The failing (sub)command's usage and the problem; exit 2."""
    if json_mode:
        return report_error(
            True, exc.parser.prog, exc.message, 2, kind="usage", usage=exc.parser.format_usage()
        )
    exc.parser.print_usage(sys.stderr)
    return report_error(False, exc.parser.prog, exc.message, 2, kind="usage")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """parse_args, except that stray arguments are reported by the innermost subcommand."""
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        inner = getattr(args, "_parser", parser)
        inner.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


#: The commands `fast_parse` answers, and whether each takes MANIFEST_OR_DIR arguments.
_FAST_COMMANDS = {"warm": True, "fetch": True, "stats": False}


class _SubparserOf:
    """The `_parser` of a fast-parsed namespace: the subcommand's real parser, built by
    `build` (the top-level `build_parser`) only if a usage error needs it."""

    def __init__(self, build: Callable[[], argparse.ArgumentParser], argv: list[str]) -> None:
        self._build = build
        self._argv = argv
        self._real: argparse.ArgumentParser | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_build", "_argv", "_real"):
            raise AttributeError(name)
        if self._real is None:
            self._real = self._build().parse_known_args(self._argv)[0]._parser
        return getattr(self._real, name)


def fast_parse(
    argv: list[str], build: Callable[[], argparse.ArgumentParser]
) -> SimpleNamespace | None:
    """What `build()`'s argparse tree (simpler_build.cli) makes of the common forms of
    `cache warm|fetch [PATH ...]` and `cache stats`, without importing argparse.

    A form is common when, after the command, every argument is a path (all of them
    together, as argparse takes them), --json, -v/--verbose, -q/--quiet (not both),
    -z/--zero (stats) or --cache-dir DIR / --cache-dir=DIR.  Anything else -- help,
    abbreviations, --remote, options before the command, a bad argument -- returns
    None and goes through argparse, so errors and help are argparse's own.
    tests/cache/test_cli_fast_parse.py checks the two agree.
    """
    if len(argv) < 2 or argv[0] != "cache" or argv[1] not in _FAST_COMMANDS:
        return None
    command, takes_sources = argv[1], _FAST_COMMANDS[argv[1]]
    values: dict[str, object] = {"verbose": 0, "quiet": False, "json": False, "cache_dir": None}
    sources: list[Path] = []
    sources_done = False
    i = 2
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            if not takes_sources or sources_done or "\0" in arg or not arg:
                return None
            sources.append(Path(arg))
            continue
        sources_done = bool(sources)
        if arg in ("-v", "--verbose"):
            values["verbose"] += 1  # type: ignore[operator]
        elif arg in ("-q", "--quiet"):
            values["quiet"] = True
        elif arg == "--json":
            values["json"] = True
        elif arg in ("-z", "--zero") and not takes_sources:
            values["zero"] = True
        elif arg == "--cache-dir" and i < len(argv) and not argv[i].startswith("-"):
            if "\0" in argv[i] or not argv[i]:
                return None
            values["cache_dir"] = Path(argv[i])
            i += 1
        elif arg.startswith("--cache-dir=") and arg[12:] and "\0" not in arg:
            values["cache_dir"] = Path(arg[12:])
        else:
            return None
    if values["verbose"] and values["quiet"]:
        return None  # argparse's "not allowed with" error
    ns = SimpleNamespace(
        verbose=values["verbose"],
        quiet=values["quiet"],
        area="cache",
        cache_dir=values["cache_dir"],
        remote=None,
        command=command,
        _parser=_SubparserOf(build, argv),
    )
    if takes_sources:
        ns.sources = sources or ["build"]
    else:
        ns.zero = bool(values.get("zero", False))
    ns.json = values["json"]
    return ns


def run(args: argparse.Namespace, json_mode: bool) -> int:
    """Run a parsed `cache` command; every error becomes one line (or one JSON object)."""
    out = _Out(args)
    verbosity = int(getattr(args, "verbose", 0) or 0)
    if verbosity > 1:  # -v is a line per item; beyond it, the simpler_build log on stderr
        from simpler_build.log import enable_stderr

        enable_stderr(verbosity - 1)
    try:
        if args.command == "warm":
            code = _warm(None, args, out)
        else:
            from simpler_build.cache.store import ArtifactCache

            cache = ArtifactCache(args.cache_dir)
            out.root = cache.root
            code = _COMMANDS[args.command](cache, args, out)
        sys.stdout.flush()  # here, so a closed pipe is seen below and not at exit
        return code
    except UsageError as exc:
        return usage_error(exc, json_mode)
    except CacheError as exc:
        from simpler_build.cache.config import ConfigError

        code, kind = (2, "config") if isinstance(exc, ConfigError) else (1, "cache")
        return report_error(
            json_mode, PROG, str(exc), code, kind=kind, path=str(exc.path), problem=exc.problem
        )
    except BrokenPipeError:
        if _stdout_closed():
            return quiet_exit_on_closed_stdout()
        return report_error(json_mode, PROG, "broken pipe", 1, kind="os")
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "cache"
        message = f"{where}: {exc.strerror or exc}"
        return report_error(json_mode, PROG, message, 1, kind="os", path=str(where))
    except KeyboardInterrupt:
        return 130
    except SimplerError as exc:
        # A bad remote URL (only a command that opened the remote module can raise one).
        remote_errors = sys.modules.get("simpler_build.remote.errors")
        if remote_errors is None or not isinstance(exc, remote_errors.RemoteConfigError):
            raise
        return report_error(json_mode, PROG, str(exc), 2, kind="config")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `simpler-build cache`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in argv
    try:
        args = parse(build_parser(), argv)
    except UsageError as exc:
        return usage_error(exc, json_mode)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    return run(args, json_mode)


if __name__ == "__main__":
    raise SystemExit(main())
