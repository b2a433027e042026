"""`warm` (API and CLI) and the rest of the `simpler-build cache` command line."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import (
    binaries_of,
    elf_header,
    make_build,
    make_manifest_set,
    run_env,
    write_manifest,
)

from simpler_build.cache import ArtifactCache, FingerprintMismatch, SourceError, parts
from simpler_build.cache.cli import main, parse_size
from simpler_build.cache.counters import flush_all
from simpler_build.cache.warm import warm
from simpler_build.remote.config import parse_remote_storage


@pytest.fixture
def build(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    return tmp_path / "build", make_build(tmp_path / "build", size=50_000)


def test_warm_adds_then_reports_present(cache: ArtifactCache, build) -> None:
    build_dir, blobs = build
    first = warm(cache, [build_dir])
    # 4 manifests x 3 binaries; the dispatcher and AICore ELF of an arch are shared.
    assert sorted(i.fingerprint for i in first.added) == sorted(blobs)
    assert len(first.present) == 12 - len(blobs)
    assert {i.role for i in first.present} == {"dispatcher", "aicore"}
    second = warm(cache, [build_dir])
    assert second.added == [] and len(second.present) == 12
    entries = {e.fingerprint: e for e in cache.ls()}
    assert {e.arch for e in entries.values()} == {"a2a3", "a5"}
    item = next(i for i in first.added if i.role == "inner_so")
    assert entries[item.fingerprint].runtime == item.runtime
    assert entries[item.fingerprint].build_id is not None


def test_warm_checks_everything_before_putting(cache: ArtifactCache, build) -> None:
    build_dir, _ = build
    bad_so = build_dir / "a5" / "host_build_graph" / "libsimpler_inner_host_build_graph.so"
    bad_so.write_bytes(b"rebuilt without updating the manifest")
    with pytest.raises(FingerprintMismatch) as info:
        warm(cache, [build_dir])
    assert str(bad_so) in str(info.value) and "runtime_binaries.json" in str(info.value)
    assert cache.ls() == [], "bad input must leave the cache unchanged"

    bad_so.unlink()
    with pytest.raises(SourceError, match="missing"):
        warm(cache, [build_dir])


def test_warm_bad_sources(cache: ArtifactCache, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such manifest or build directory"):
        warm(cache, [tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no runtime_binaries\.json"):
        warm(cache, [tmp_path / "empty"])
    broken = tmp_path / "runtime_binaries.json"
    broken.write_text("{ nope")
    with pytest.raises(SourceError, match="not valid JSON") as info:
        warm(cache, [broken])
    assert info.value.path == broken


def test_cli_warm_default_build_dir_and_json(tmp_path: Path, build, cli) -> None:
    cache_dir = tmp_path / "c"
    first = cli("warm", cache_dir=cache_dir, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # A summary by default (ccache's habit); a line per binary only with -v.
    assert first.stdout == f"warm: 8 added, 4 already present (cache: {cache_dir})\n"
    verbose = cli("warm", "-v", cache_dir=cache_dir, cwd=tmp_path)
    lines = verbose.stdout.splitlines()
    assert len(lines) == 13 and all(line.startswith("present  ") for line in lines[:12])
    assert verbose.stdout.endswith(f"0 added, 12 already present (cache: {cache_dir})\n")
    quiet = cli("-q", "warm", cache_dir=cache_dir, cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    second = cli("--cache-dir", str(cache_dir), "warm", "--json", "build", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["schema_version"] == 1 and report["cache_root"] == str(cache_dir)
    assert report["added"] == [] and len(report["present"]) == 12
    assert {i["arch"] for i in report["present"]} == {"a2a3", "a5"}


def test_cli_warm_errors_one_line_exit_1(tmp_path: Path, build, cli) -> None:
    build_dir, _ = build
    manifest = build_dir / "a5" / "host_build_graph" / "runtime_binaries.json"
    so = manifest.parent / "libsimpler_inner_host_build_graph.so"
    cache_dir = tmp_path / "c"

    so.write_bytes(b"different bytes")
    result = cli("warm", str(build_dir), cache_dir=cache_dir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"simpler-build cache: error: {so}: fingerprint ")
    assert result.stderr.count("\n") == 1

    so.unlink()
    result = cli("warm", str(manifest), cache_dir=cache_dir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"simpler-build cache: error: {so}: missing")

    manifest.write_text("[1, 2")
    result = cli("warm", str(manifest), cache_dir=cache_dir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"simpler-build cache: error: {manifest}: not valid JSON")


def test_cli_stats_ls_gc_clear(tmp_path: Path, build, cli) -> None:
    build_dir, blobs = build
    cache_dir = tmp_path / "c"
    assert main(["--cache-dir", str(cache_dir), "warm", str(build_dir)]) == 0
    cache = ArtifactCache(cache_dir)
    cache.get(next(iter(blobs)))
    flush_all()  # this process's counts are written at exit; another process reads them now

    stats = json.loads(cli("stats", "--json", cache_dir=cache_dir).stdout)
    assert (stats["entries"], stats["hits"], stats["added"]) == (8, 1, 8)
    assert stats["bytes"] == sum(len(b) for b in blobs.values())
    text = cli("stats", cache_dir=cache_dir).stdout
    assert "entries" in text and "hit rate" in text

    listing = json.loads(cli("ls", "--json", cache_dir=cache_dir).stdout)["entries"]
    assert sorted(e["fingerprint"] for e in listing) == sorted(blobs)
    assert len(cli("ls", cache_dir=cache_dir).stdout.splitlines()) == 8

    result = cli("gc", "--max-size", "120K", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    evicted = int(re.search(r"evicted (\d+) entries", result.stdout).group(1))
    left = cache.ls()
    assert evicted >= 2 and len(left) == 8 - evicted
    # The bound covers every byte under the root (metadata, counters, tag...), K = 1000.
    assert sum(e.size for e in left) < 120_000
    assert parts.usage(cache_dir).bytes <= 120_000

    result = cli("clear", cache_dir=cache_dir)
    assert result.returncode == 2 and "--yes" in result.stderr
    assert len(cache.ls()) == len(left)
    result = cli("clear", "--yes", cache_dir=cache_dir)
    assert result.returncode == 0 and f"removed {len(left)} entries" in result.stdout
    assert "usage: simpler-build cache clear" not in result.stderr
    assert cache.ls() == []


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--max-size", "10X"]) == 2
    err = capsys.readouterr().err
    assert "invalid size '10X'" in err and err.startswith("usage: simpler-build cache gc ")
    assert main(["frobnicate"]) == 2
    assert main([]) == 2
    capsys.readouterr()
    # A stray argument is reported by the subcommand it was given to, with its usage.
    assert main(["stats", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: simpler-build cache stats ")
    assert err.endswith("simpler-build cache stats: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("123", 123),
        ("500K", 500_000),
        ("500Ki", 500 << 10),
        ("10M", 10_000_000),
        ("10MiB", 10 << 20),
        ("1G", 10**9),
        ("1GB", 10**9),
        ("1.5gib", 3 << 29),
        ("2T", 2 * 10**12),
        ("2Ti", 2 << 40),
        ("0", 0),
    ],
)
def test_parse_size_has_ccache_suffixes(text: str, size: int) -> None:
    """K/M/G/T are decimal and Ki/Mi/Gi/Ti binary, as in ccache; one parser for the cache
    CLI and the remote tier's max-size."""
    assert parse_size(text) == size
    (spec,) = parse_remote_storage(f"redis://h:1|max-size={text}", environ={})
    assert spec.max_size == size


@pytest.mark.parametrize("text", ["", "K", "10X", "1.2.3G", "-1", "10 Kilo", "1Gii"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        parse_size(text)


def test_warm_on_a_warm_cache_adds_nothing(tmp_path: Path) -> None:
    """End to end, as CI runs it: 4 manifests (both arches), already cached.

    Its speed is measured by bench/cache_bench.py, never asserted here.
    """
    make_build(tmp_path / "build", size=365_000)
    cache_dir = tmp_path / "c"
    exe = shutil.which("simpler-build")
    cmd = [exe] if exe else [sys.executable, "-m", "simpler_build.cli"]
    cmd += ["cache", "warm", "build"]
    env = run_env(cache_dir)
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    for _ in range(2):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
        assert b"0 added, 12 already present" in out.stdout


def test_warm_fast_path_imports_neither_tqdm_nor_filelock(tmp_path: Path) -> None:
    make_build(tmp_path / "build", size=1000)
    code = (
        "import sys\n"
        "from simpler_build.cache.cli import main\n"
        "assert main(['warm', 'build']) == 0\n"
        "lock = {'simpler_build.cache._flock'} & set(sys.modules) and ['lock'] or []\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tqdm', 'filelock'}) + lock)\n"
    )

    def loaded() -> str:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=run_env(tmp_path / "c"),
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.splitlines()[-1]

    assert loaded() == "['lock']"  # adding takes entry locks (cache/_flock.py, not filelock)
    assert loaded() == "[]"  # already warm: no lock, no progress bar


def test_warm_many_manifests_deduplicates(cache: ArtifactCache, tmp_path: Path) -> None:
    same = elf_header() + b"shared inner so" * 1000
    m1, fp = write_manifest(tmp_path / "x", "a5", "rt", same)
    m2, _ = write_manifest(tmp_path / "y", "a5", "rt", same)
    report = warm(cache, [m1, m2, m1])
    assert fp in binaries_of(m1) and binaries_of(m1) == binaries_of(m2)
    assert sorted(i.fingerprint for i in report.added) == sorted(binaries_of(m1))
    assert {i.manifest for i in report.added} == {m1}
    assert sorted(i.fingerprint for i in report.present) == sorted(binaries_of(m2))
    assert {i.manifest for i in report.present} == {m2}


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_only_on_a_tty_with_many_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tty: bool
) -> None:
    make_manifest_set(tmp_path / "many", 16, 1000)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert main(["--cache-dir", str(tmp_path / "c"), "warm", str(tmp_path / "many")]) == 0
    err = capsys.readouterr().err
    assert ("/48 [" in err) is tty  # 16 manifests x 3 binaries
