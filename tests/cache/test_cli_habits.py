"""The command line's habits (issue 12): help and usage per subcommand, -q/-v, --json
everywhere with errors as JSON, a closed pipe is not an error, stats --zero, lean imports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cache_helpers import make_build, make_manifest_set, run_env

from simpler_build.cache import ArtifactCache
from simpler_build.cache.counters import flush_all

SUBCOMMANDS = ("warm", "fetch", "push", "stats", "verify", "gc", "ls", "clear", "config")


def top(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "simpler_build", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_bare_command_prints_help_to_stderr_and_exits_2(tmp_path: Path) -> None:
    result = top(env=run_env(tmp_path / "c"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: simpler-build ")
    for needed in ("cache warm", "cache fetch", "--version", "-q, --quiet", "docs/json.md"):
        assert needed in result.stderr


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help_usage_and_documented_json(sub: str) -> None:
    result = top("cache", sub, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: simpler-build cache {sub} ")
    flat = " ".join(result.stdout.split())
    assert "--json print" in flat and "errors as JSON on stderr" in flat
    assert "-q, --quiet" in flat and "-v, --verbose" in flat
    # A bad argument shows this subcommand's usage, not the top level's.
    bad = top("cache", sub, "--no-such-option")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith(f"usage: simpler-build cache {sub} ")
    assert bad.stderr.endswith(
        f"simpler-build cache {sub}: error: unrecognized arguments: --no-such-option\n"
    )


@pytest.mark.parametrize(
    ("args", "kind", "code"),
    [
        (("cache", "gc", "--max-size", "10X", "--json"), "usage", 2),
        (("cache", "warm", "--json", "nowhere"), "cache", 1),
        (("cache", "clear", "--json"), "usage", 2),
        (("cache", "push", "--json", "--remote", "redis://h:1|nope"), "config", 2),
    ],
)
def test_json_errors_are_json_on_stderr(
    tmp_path: Path, args: tuple[str, ...], kind: str, code: int
) -> None:
    result = top(*args, cwd=tmp_path, env=run_env(tmp_path / "c"))
    assert result.returncode == code and result.stdout == ""
    (line,) = result.stderr.splitlines()
    error = json.loads(line)
    assert error["schema_version"] == 1
    assert error["error"]["kind"] == kind and error["error"]["exit_code"] == code
    assert error["error"]["message"]


def test_quiet_and_verbose(tmp_path: Path) -> None:
    make_build(tmp_path / "build", size=2000)
    env = run_env(tmp_path / "c")
    quiet = top("-q", "cache", "warm", cwd=tmp_path, env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    for where in (("-v", "cache", "warm"), ("cache", "-v", "warm"), ("cache", "warm", "-v")):
        verbose = top(*where, cwd=tmp_path, env=env)
        assert verbose.returncode == 0 and len(verbose.stdout.splitlines()) == 13, where
    plain = top("cache", "gc", cwd=tmp_path, env=env)
    assert len(plain.stdout.splitlines()) == 1 and plain.stdout.startswith("gc: ")
    assert top("cache", "gc", "-q", cwd=tmp_path, env=env).stdout == ""
    assert top("cache", "-q", "-v", "gc", cwd=tmp_path, env=env).returncode == 2


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`warm -v | head -1` on output far bigger than a pipe's buffer: exit 0, no message."""
    _manifests, blobs = make_manifest_set(tmp_path / "many", 600, 64)
    env = run_env(tmp_path / "c")
    cmd = f"{sys.executable} -m simpler_build cache warm -v many | head -1"
    for _ in range(2):  # adding, then all present
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.startswith(("added ", "present "))
    # The warm finished all the same.
    assert len(ArtifactCache(tmp_path / "c").ls()) == len(blobs)


def test_stats_zero_and_timestamps(tmp_path: Path) -> None:
    make_build(tmp_path / "build", size=2000)
    root = tmp_path / "c"
    env = run_env(root)
    assert top("cache", "warm", cwd=tmp_path, env=env).returncode == 0
    cache = ArtifactCache(root)
    fp = cache.ls()[0].fingerprint
    cache.get(fp)
    flush_all()
    before = json.loads(top("cache", "stats", "--json", env=env).stdout)
    assert before["hits"] == 1 and before["added"] == 8
    assert before["stats_updated_timestamp"] >= int(time.time()) - 60
    assert before["stats_zeroed_timestamp"] == 0
    zeroed = top("cache", "stats", "--zero", env=env)
    assert zeroed.returncode == 0 and zeroed.stdout == f"stats: counters zeroed ({root})\n"
    after = json.loads(top("cache", "stats", "--json", env=env).stdout)
    assert after["hits"] == after["added"] == after["misses"] == 0
    assert after["stats_zeroed_timestamp"] >= before["stats_updated_timestamp"]
    assert after["entries"] == before["entries"], "zeroing counts, not contents"
    text = top("cache", "stats", env=env).stdout
    assert "stats zeroed" in text and "cleanups" in text and "scons" in text


def test_cli_is_lean(tmp_path: Path) -> None:
    """warm and stats import neither numpy nor SCons nor another command's implementation."""
    make_build(tmp_path / "build", size=1000)
    code = (
        "import sys\n"
        "from simpler_build.cli import main\n"
        "assert main(['cache', 'warm', 'build']) == 0\n"
        "assert main(['cache', 'stats', '--json']) == 0\n"
        "heavy = {'numpy', 'SCons', 'tqdm', 'redis', 'simpler_build.repro',\n"
        "         'simpler_build.cache.transfer', 'simpler_build.runtime'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=run_env(tmp_path / "c"),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stderr.splitlines()[-1] == "[]"
