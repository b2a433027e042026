"""SIMPLER_REMOTE_STORAGE / --remote: what parses, and one clear line for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build.remote import RemoteConfigError, parse_remote_storage, parse_url
from simpler_build.remote.config import DEFAULT_MAX_SIZE
from tests.conftest import REPO, scons
from tests.remote.remote_helpers import cli, machine_env


def test_standalone_cluster_db_and_attributes() -> None:
    one, two, three = parse_remote_storage(
        "redis://127.0.0.1:6380/2 redis+cluster://10.0.0.1:7000|read-only "
        "redis://u:pw@h|connect-timeout=0.25|timeout=3|max-size=2M",
        environ={},
    )
    assert (one.host, one.port, one.db, one.cluster, one.read_only) == (
        "127.0.0.1",
        6380,
        2,
        False,
        False,
    )
    assert one.max_size == DEFAULT_MAX_SIZE
    assert (two.cluster, two.read_only, str(two)) == (
        True,
        True,
        "redis+cluster://10.0.0.1:7000|read-only",
    )
    assert (three.username, three.password, three.port) == ("u", "pw", 6379)
    assert (three.connect_timeout, three.timeout, three.max_size) == (0.25, 3.0, 2_000_000)
    assert "pw" not in three.url  # never printed in warnings
    assert parse_remote_storage("", environ={}) == [] and parse_remote_storage(None) == []


def test_credentials_are_percent_decoded_and_never_shown() -> None:
    """As in any URL (and redis-py's from_url): `%40` is "@", `%3A` ":", `%2F` "/". A
    password never appears in a spec's url, its repr or a message, which reach CI logs."""
    spec = parse_url("redis://ci%2Dbot:p%40ss%3Aw%2Frd@h:1/2")
    assert (spec.username, spec.password, spec.url) == ("ci-bot", "p@ss:w/rd", "redis://h:1/2")
    assert "p@ss" not in repr(spec) and "p%40ss" not in repr(spec)
    assert parse_url("redis://[::1]:7000").url == "redis://[::1]:7000"  # not "redis://::1:7000"
    for text, problem in (
        ("redis://u:p@ss@h:1", "'redis://u:***@h:1' is not a URL: an '@' in a user or password"),
        ("http://u:secret@h:1", "'http://u:***@h:1': unsupported scheme 'http'"),
        ("redis://u:secret@h:99999", "'redis://u:***@h:99999': port 99999 is out of range"),
        ("redis://u:secret@h:1|bogus", "'redis://u:***@h:1': unknown attribute 'bogus'"),
    ):
        with pytest.raises(RemoteConfigError) as info:
            parse_url(text, "--remote")
        assert problem in str(info.value), str(info.value)
        assert "secret" not in str(info.value) and "ss@h" not in str(info.value)


def test_environment_gives_the_defaults() -> None:
    env = {"SIMPLER_REMOTE_TIMEOUT": "2.5", "SIMPLER_REMOTE_MAX_SIZE": "10K"}
    (spec,) = parse_remote_storage("redis://h:1", environ=env)
    assert (spec.timeout, spec.max_size) == (2.5, 10_000)
    with pytest.raises(RemoteConfigError, match=r"^SIMPLER_REMOTE_TIMEOUT: "):
        parse_remote_storage("redis://h:1", environ={"SIMPLER_REMOTE_TIMEOUT": "soon"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://h:1", "unsupported scheme 'http'"),
        ("h:6379", "is not a URL"),
        ("redis://h:6379\n", "is not a URL"),  # `$` would have let the newline through
        ("redis://h:\u0666\u0663", "is not a URL"),  # Arabic-Indic digits: int() takes them
        ("redis://a\tb:1", "is not a URL"),
        ("redis://h:99999", "port 99999 is out of range"),
        ("redis+cluster://h:7000/3", "only database 0"),
        ("redis://h:1|readonly", "unknown attribute 'readonly'"),
        ("redis://h:1|timeout=-1", "not a number of seconds"),
        ("redis://h:1|max-size=lots", "not a size"),
    ],
)
def test_bad_urls_name_the_setting_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(RemoteConfigError) as info:
        parse_url(text, "--remote")
    assert str(info.value).startswith("--remote: ") and problem in str(info.value)
    assert "\n" not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_is_one_clear_line(text: str) -> None:
    try:
        specs = parse_remote_storage(text, environ={})
    except RemoteConfigError as exc:
        assert str(exc).startswith("SIMPLER_REMOTE_STORAGE: ") and "\n" not in str(exc)
        return
    for spec in specs:
        assert 0 < spec.port < 65536 and spec.host


def test_cli_bad_remote_is_one_line_exit_2(tmp_path: Path) -> None:
    env = machine_env(tmp_path, remote="redis://h:1|bogus")
    result = cli("fetch", str(tmp_path), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("simpler-build cache: error: SIMPLER_REMOTE_STORAGE: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = cli("push", "--remote", "ftp://x", str(tmp_path), env=env)
    assert result.returncode == 2 and "--remote: 'ftp://x': unsupported scheme" in result.stderr


def test_scons_refuses_a_bad_remote_before_compiling(tmp_path: Path) -> None:
    proc = scons(
        "arch=a5",
        f"build_dir={tmp_path / 'b'}",
        cwd=REPO,
        env={"SIMPLER_REMOTE_STORAGE": "redis://h:1 memcached://m:2"},
        check=False,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        "scons: *** SIMPLER_REMOTE_STORAGE: 'memcached://m:2': unsupported scheme "
        "'memcached' (known: redis://, redis+cluster://)"
    )
    assert not (tmp_path / "b" / "lib").exists()
