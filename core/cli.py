"""`simpler-build` command line: dispatches to each layer's own CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        from simpler_build import __version__

        print(f"simpler-build {__version__}")
        return 0
    if not args or args[0] in {"-h", "--help"}:
        print(
            "usage: simpler-build cache {warm,fetch,push,stats,verify,gc,ls,clear} ...\n"
            "       simpler-build build [NAME=VALUE ...] [--build-dir DIR] [-j N]\n"
            "       simpler-build repro-check [--arch A] [--mode M] [--source DIR] [--json]\n"
            "       simpler-build --version"
        )
        return 0 if args else 2
    if args[0] == "cache":
        from simpler_build.cache.cli import main as cache_main

        return cache_main(args[1:])
    if args[0] == "build":
        from simpler_build.build import main as build_main

        return build_main(args[1:])
    if args[0] == "repro-check":
        from simpler_build.repro import main as repro_main

        return repro_main(args[1:])
    print(
        f"simpler-build: unknown command {args[0]!r} (expected: cache, build, repro-check)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
