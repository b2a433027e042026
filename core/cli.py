"""`simpler-build`: one argparse tree over every layer's commands.

Each subcommand's implementation is imported only when it runs, and nothing
here imports numpy or SCons: a CI runner that only warms or fetches starts
fast and needs neither (issue 9).  Bare `simpler-build` prints the help to
stderr and exits 2, as a usage error does.
"""

from __future__ import annotations

import sys

from simpler_build import __version__
from simpler_build.cache import cli as cache_cli

TYPE_CHECKING = False  # argparse is imported only when the full parser is built
if TYPE_CHECKING:
    import argparse

PROG = "simpler-build"
_EPILOG = """\
commands:
  cache warm [BUILD_DIR]   put the binaries a build produced into the cache
  cache fetch              pull them from the remote tier ($SIMPLER_REMOTE_STORAGE)
  cache stats | gc | ...   inspect and bound the cache (simpler-build cache -h)
  cache config [KEY [VAL]] settings such as max_size (5Gi by default; 0 = unlimited)
  build [NAME=VALUE ...]   build the binaries with SCons (simpler-build build -h)
  device gc                clean a simulated device's preinstall directory
  repro-check              build twice in different places and compare the outputs

Every command takes --json (docs/json.md). See README.md, docs/ci.md.
"""


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser: argparse.ArgumentParser = cache_cli.Parser(
        prog=PROG,
        description="Build, cache and run the simpler NPU task runtime's binaries.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    cache_cli.add_verbosity(parser, suppress=False)
    parser.set_defaults(_parser=parser)
    sub = parser.add_subparsers(
        dest="area", metavar="COMMAND", parser_class=cache_cli.Parser, required=True
    )
    cache = sub.add_parser(
        "cache",
        help="the artifact cache: warm, fetch, push, stats, verify, gc, ls, clear, config",
        description="Manage the artifact cache (cache/FORMAT.md).",
    )
    cache_cli.configure(cache)
    device = sub.add_parser(
        "device",
        help="the simulated device: gc its preinstall directory",
        description="Maintain the simulated devices' filesystems (docs/simulated-device.md).",
    )
    device.set_defaults(_parser=device)
    from simpler_build.device import configure as configure_device

    configure_device(device, cache_cli.Parser)
    build = sub.add_parser(
        "build",
        help="build the runtime binaries from this install's sources with SCons",
        add_help=False,
    )
    build.set_defaults(_parser=build)
    repro = sub.add_parser(
        "repro-check",
        help="check that two builds in different places are byte-identical",
        add_help=False,
    )
    repro.set_defaults(_parser=repro)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args_in
    # `cache warm` and friends in their usual forms skip argparse (cache/cli.py).
    fast = cache_cli.fast_parse(args_in, build_parser)
    if fast is not None:
        return cache_cli.run(fast, json_mode)  # type: ignore[arg-type]
    parser = build_parser()
    if not args_in:
        parser.print_help(sys.stderr)
        return 2
    try:
        args, extras = parser.parse_known_args(args_in)
        if args.area == "build":
            from simpler_build.build import main as build_main

            return build_main(extras)
        if args.area == "repro-check":
            from simpler_build.repro import main as repro_main

            return repro_main(extras)
        if extras:
            args._parser.error(f"unrecognized arguments: {' '.join(extras)}")
    except cache_cli.UsageError as exc:
        return cache_cli.usage_error(exc, json_mode)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    if args.area == "device":
        from simpler_build.device import run as run_device

        return run_device(args, json_mode)
    return cache_cli.run(args, json_mode)


if __name__ == "__main__":
    raise SystemExit(main())
