"""`simpler-build cache config`: a persistent file in the cache root, env overrides,
ccache's max_size semantics (0 = unlimited, 5 GiB default), one-line errors."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
from cache_helpers import make_build, run_env

from simpler_build.cache import ArtifactCache
from simpler_build.cache import config as cfg
from simpler_build.cache.cli import main


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_is_ccaches_5_gib(tmp_path: Path, cli) -> None:
    setting = cfg.settings(tmp_path / "c", environ={})["max_size"]
    assert (setting.value, setting.origin, setting.parsed) == ("5Gi", "default", 5 << 30)
    assert cfg.max_size(tmp_path / "c", environ={}) == 5 << 30
    listed = cli("config", cache_dir=tmp_path / "c")
    assert listed.returncode == 0 and listed.stdout == "(default) max_size = 5Gi\n"
    assert not (tmp_path / "c").exists(), "reading the config creates nothing"


def test_set_persists_env_overrides_and_origins_are_listed(tmp_path: Path, cli) -> None:
    root = tmp_path / "c"
    assert cli("config", "max_size", "10G", cache_dir=root).stdout == "config: max_size = 10G\n"
    assert (root / cfg.CONFIG_NAME).read_text() == "max_size = 10G\n"
    assert cli("config", "max_size", cache_dir=root).stdout == "10G\n"
    listed = cli("config", cache_dir=root).stdout
    assert listed == f"(file: {root / cfg.CONFIG_NAME}) max_size = 10G\n"
    report = _json(cli("config", "--json", cache_dir=root))
    assert report["settings"]["max_size"] == {
        "value": "10G",
        "bytes": 10**10,
        "origin": "file",
        "where": str(root / cfg.CONFIG_NAME),
    }
    env = {"SIMPLER_CACHE_MAX_SIZE": "1Mi"}
    assert cfg.settings(root, env)["max_size"].origin == "environment"
    assert cfg.max_size(root, env) == 1 << 20
    # Stats show the bound and where it came from.
    stats = _json(cli("stats", "--json", cache_dir=root))
    assert (stats["max_bytes"], stats["max_bytes_origin"]) == (10**10, "file")
    assert cli("config", "--unset", "max_size", cache_dir=root).returncode == 0
    assert (root / cfg.CONFIG_NAME).read_text() == ""
    assert cfg.settings(root, {})["max_size"].origin == "default"


def test_comments_and_other_lines_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / cfg.CONFIG_NAME).write_text("# team-wide bound\nmax_size = 1G  # CI disk\n\n")
    assert cfg.settings(root, {})["max_size"].parsed == 10**9
    cfg.set_value(root, "max_size", "2Gi")
    assert (root / cfg.CONFIG_NAME).read_text() == "# team-wide bound\nmax_size = 2Gi\n\n"
    assert [p.name for p in root.iterdir()] == [cfg.CONFIG_NAME], "no temp file left behind"


def test_zero_means_unlimited(tmp_path: Path, cli) -> None:
    make_build(tmp_path / "build", size=50_000)
    root = tmp_path / "c"
    assert main(["--cache-dir", str(root), "warm", str(tmp_path / "build")]) == 0
    before = len(ArtifactCache(root).ls())
    assert cli("config", "max_size", "0", cache_dir=root).returncode == 0
    assert cfg.max_size(root, {}) is None
    report = _json(cli("gc", "--json", cache_dir=root))
    assert report["max_bytes"] is None and report["evicted"] == []
    report = _json(cli("gc", "--max-size", "0", "--json", cache_dir=root))
    assert report["evicted"] == [] and len(ArtifactCache(root).ls()) == before
    # The configured bound is what gc enforces without --max-size.
    assert cli("config", "max_size", "100K", cache_dir=root).returncode == 0
    report = _json(cli("gc", "--json", cache_dir=root))
    assert report["max_bytes"] == 100_000 and report["root_bytes_after"] <= 100_000
    assert report["evicted"] and len(ArtifactCache(root).ls()) == before - len(report["evicted"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("max_size 10G\n", "line 1: expected 'key = value', got 'max_size 10G'"),
        ("# ok\nmax_sise = 1G\n", "line 2: unknown key 'max_sise' (known: max_size)"),
        ("max_size = ten\n", "line 1: max_size: invalid size 'ten'"),
        ("max_size = \u0661G\n", "line 1: max_size: invalid size '\u0661G'"),
        (b"max_size = \xff\n", "not UTF-8 text"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    tmp_path: Path, cli, content: str | bytes, problem: str
) -> None:
    root = tmp_path / "c"
    root.mkdir()
    path = root / cfg.CONFIG_NAME
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    for args in (("config",), ("gc",), ("stats",), ("config", "max_size", "1G")):
        result = cli(*args, cache_dir=root)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"simpler-build cache: error: {path}: {problem}"), args
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert path.read_bytes() == (content.encode() if isinstance(content, str) else content)


def test_bad_keys_values_and_environment_are_one_line(tmp_path: Path, cli) -> None:
    root = tmp_path / "c"
    result = cli("config", "max_size", "lots", cache_dir=root)
    assert result.returncode == 2
    assert result.stderr == (
        f"simpler-build cache: error: {root / cfg.CONFIG_NAME}: max_size: invalid size 'lots' "
        "(bytes, or a number with K/M/G/T = 1000^n or Ki/Mi/Gi/Ti = 1024^n)\n"
    )
    result = cli("config", "maxsize", "1G", cache_dir=root)
    assert result.returncode == 2 and result.stderr.startswith("usage: simpler-build cache config")
    assert "unknown key 'maxsize' (known: max_size)" in result.stderr
    assert not root.exists()
    env = {**run_env(root), "SIMPLER_CACHE_MAX_SIZE": "huge"}
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "simpler_build", "cache", "gc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    prefix = "simpler-build cache: error: SIMPLER_CACHE_MAX_SIZE: invalid size"
    assert proc.stderr.startswith(prefix)


def _writer(root: str, values: list[str], rounds: int) -> None:
    for i in range(rounds):
        cfg.set_value(Path(root), "max_size", values[i % len(values)])


def _reader(root: str, rounds: int, seen: mp.Queue) -> None:  # type: ignore[type-arg]
    got = set()
    for _ in range(rounds):
        got.add(cfg.settings(Path(root), {})["max_size"].value)  # ConfigError would fail it
    seen.put(sorted(got))


def test_concurrent_writers_and_readers_never_see_a_torn_file(tmp_path: Path) -> None:
    """Atomic replace: readers in other processes see one whole file or another, never a
    mix, and no temp file is left once the writers are done."""
    root = tmp_path / "c"
    cfg.set_value(root, "max_size", "1G")
    ctx = mp.get_context("spawn")
    seen = ctx.Queue()
    writers = [
        ctx.Process(target=_writer, args=(str(root), ["2Gi", "3000M"], 300)),
        ctx.Process(target=_writer, args=(str(root), ["4T", "5Ki"], 300)),
    ]
    readers = [ctx.Process(target=_reader, args=(str(root), 1500, seen)) for _ in range(2)]
    for p in writers + readers:
        p.start()
    results = [seen.get(timeout=120) for _ in readers]
    for p in writers + readers:
        p.join(timeout=120)
        assert p.exitcode == 0
    for got in results:
        assert set(got) <= {"1G", "2Gi", "3000M", "4T", "5Ki"}
    assert sorted(os.listdir(root)) == [cfg.CONFIG_NAME]
    assert cfg.settings(root, {})["max_size"].value in {"2Gi", "3000M", "4T", "5Ki"}


def test_warm_cleans_up_automatically_when_over_max_size(tmp_path: Path, cli) -> None:
    """ccache's habit: adding past max_size triggers a cleanup; a warm that adds nothing
    leaves the tree alone."""
    make_build(tmp_path / "build", size=50_000)
    root = tmp_path / "c"
    assert cli("config", "max_size", "150K", cache_dir=root).returncode == 0
    result = cli("warm", "--json", str(tmp_path / "build"), cache_dir=root)
    report = _json(result)
    cleanup = report["cleanup"]
    assert cleanup["max_bytes"] == 150_000 and cleanup["evicted"] > 0
    from simpler_build.cache import parts

    assert parts.usage(root).bytes <= 150_000 == cleanup["max_bytes"]
    assert cleanup["root_bytes_after"] <= 150_000  # counters are written at exit, after it
    again = cli("warm", str(tmp_path / "build"), cache_dir=root)
    assert "cleanup: over max_size" in again.stdout  # it re-added what was evicted
    assert cli("config", "max_size", "0", cache_dir=root).returncode == 0
    assert _json(cli("warm", "--json", str(tmp_path / "build"), cache_dir=root))["cleanup"] is None


def test_a_root_that_is_a_file_is_one_line(tmp_path: Path, cli) -> None:
    root = tmp_path / "c"
    root.write_text("not a directory")
    result = cli("config", "max_size", "1G", cache_dir=root)
    assert result.returncode == 2
    assert result.stderr == (
        f"simpler-build cache: error: {root / cfg.CONFIG_NAME}: cannot write it: "
        f"the cache root {root} is not a directory\n"
    )


def test_a_writer_that_dies_before_the_rename_leaves_the_old_file(tmp_path: Path, cli) -> None:
    """A process killed between writing the temp file and renaming it: the config still
    reads as before, and gc removes the leftover once it is older than the grace period."""
    import subprocess
    import sys

    root = tmp_path / "c"
    cfg.set_value(root, "max_size", "1G")
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from simpler_build.cache import config\n"
        "os.replace = lambda *a: os._exit(9)  # dies right before the rename\n"
        "config.set_value(Path(sys.argv[1]), 'max_size', '7T')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(root)], timeout=60)
    assert proc.returncode == 9
    assert cfg.settings(root, {})["max_size"].value == "1G"
    (leftover,) = [p for p in root.iterdir() if p.name != cfg.CONFIG_NAME]
    assert leftover.name.startswith(".tmp-") and "7T" in leftover.read_text()
    old = time.time() - 7200  # older than gc's grace period (1 h)
    os.utime(leftover, (old, old))
    report = _json(cli("gc", "--json", cache_dir=root))
    assert report["temp_removed"] == [str(leftover)] and not leftover.exists()
