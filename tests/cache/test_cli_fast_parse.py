"""`cache_cli.fast_parse` (warm, fetch and stats without argparse) agrees with argparse.

Whatever argument list it accepts, the namespace it builds must be the one
`simpler_build.cli.build_parser()` builds, value for value; whatever it does
not accept goes to argparse.  Hypothesis draws argument lists from the tokens
these commands take (and some they do not), so the common forms, the odd
orders argparse treats specially and the malformed ones are all compared.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build.cache import cli as cache_cli
from simpler_build.cli import build_parser

COMMON = [
    ["cache", "warm"],
    ["cache", "warm", "build"],
    ["cache", "warm", "a", "b", "--json"],
    ["cache", "warm", "--json", "-v", "a", "b"],
    ["cache", "warm", "-q", "--cache-dir", "/tmp/c", "build"],
    ["cache", "warm", "--cache-dir=/tmp/c", "-v", "-v"],
    ["cache", "fetch", "build/a5", "--json"],
    ["cache", "stats"],
    ["cache", "stats", "--json", "-z"],
    ["cache", "stats", "--zero", "-q", "--cache-dir", "c"],
]
#: Tokens of these commands, tokens argparse treats specially, and malformed ones.
TOKENS = [
    "warm",
    "fetch",
    "stats",
    "verify",
    "build",
    "a/b",
    "--json",
    "-v",
    "--verbose",
    "-q",
    "--quiet",
    "-z",
    "--zero",
    "--cache-dir",
    "--cache-dir=x",
    "--cache-dir=",
    "--cache-d",
    "--remote",
    "redis://h",
    "-vv",
    "-h",
    "--",
    "-",
    "",
    "a\0b",
    "-1",
]


def _argparse(argv: list[str]) -> dict[str, object] | None:
    """argparse's namespace (without `_parser`), or None when it refuses `argv`."""
    try:
        args, extras = build_parser().parse_known_args(argv)
    except (cache_cli.UsageError, SystemExit):
        return None
    if extras:
        return None
    values = dict(vars(args))
    values.pop("_parser")
    return values


def _fast(argv: list[str]) -> dict[str, object] | None:
    ns = cache_cli.fast_parse(list(argv), build_parser)
    if ns is None:
        return None
    values = dict(vars(ns))
    values.pop("_parser")
    return values


def test_common_forms_are_fast_and_equal_to_argparse() -> None:
    for argv in COMMON:
        fast = _fast(argv)
        assert fast is not None, argv
        assert fast == _argparse(argv), argv


def test_default_sources_and_paths() -> None:
    assert _fast(["cache", "warm"])["sources"] == ["build"]  # type: ignore[index]
    assert _fast(["cache", "fetch", "x", "y"])["sources"] == [Path("x"), Path("y")]  # type: ignore[index]


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["cache"]),
    st.sampled_from(["warm", "fetch", "stats", "verify"]),
    st.lists(st.sampled_from(TOKENS), max_size=6),
)
def test_anything_fast_parse_accepts_argparse_parses_the_same(
    area: str, command: str, rest: list[str]
) -> None:
    argv = [area, command, *rest]
    fast = _fast(argv)
    if fast is not None:
        assert fast == _argparse(argv), argv


def test_a_usage_error_of_a_fast_parsed_command_names_that_subcommand() -> None:
    """`_parser` stands for the subcommand's own parser, built only when used."""
    ns = cache_cli.fast_parse(["cache", "warm", "x"], build_parser)
    assert ns is not None
    assert ns._parser.prog == "simpler-build cache warm"
    assert "MANIFEST_OR_BUILD_DIR" in ns._parser.format_usage()


def test_forms_argparse_must_judge_are_not_fast() -> None:
    for argv in (
        ["cache", "warm", "a", "--json", "b"],  # argparse: "unrecognized arguments: b"
        ["cache", "warm", "-v", "-q"],  # mutually exclusive
        ["cache", "warm", "--cache-d", "x"],  # abbreviation
        ["cache", "warm", "-h"],
        ["cache", "stats", "x"],
        ["cache", "warm", ""],
        ["-v", "cache", "warm"],
        ["cache", "--cache-dir", "x", "warm"],
        ["cache", "verify"],
    ):
        assert _fast(argv) is None, argv
