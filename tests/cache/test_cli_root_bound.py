"""The whole cache root is counted and bounded: the SCons CacheDir under it too (issue 12).

SCons entries are written with the real tool (site_scons/site_tools/simpler_cachedir.py),
so eviction is checked against the very protocol a build uses: its push lock, its
digest record, and the mtime SCons refreshes when it retrieves an entry.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from types import ModuleType

from cache_helpers import elf_header, run_env

from simpler_build.cache import ArtifactCache, parts
from simpler_build.cache.cli import main
from simpler_build.cache.maintenance import DEFAULT_GRACE_SECONDS, gc_root

REPO = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    name = "simpler_cachedir_under_test"
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(REPO / "site_scons"))
    path = REPO / "site_scons" / "site_tools" / "simpler_cachedir.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def push(root: Path, sig: str, data: bytes, tmp: Path) -> Path:
    """Push `data` as entry `sig` the way a build does (under the directory's lock)."""
    tool = _tool()
    directory = parts.scons_dir(root) / sig[:2].upper()
    directory.mkdir(parents=True, exist_ok=True)
    source = tmp / f"src-{sig}-{os.getpid()}"
    source.write_bytes(data)
    cachefile = directory / sig
    with tool._locked(str(directory)):
        tool.VerifiedCacheDir._write_entry(str(source), str(cachefile))
    source.unlink()
    return cachefile


def _age(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_names_match_the_scons_tool() -> None:
    tool = _tool()
    assert (tool.RECORD_SUFFIX, tool.LOCK_NAME, tool.QUARANTINE_DIR) == (
        parts.RECORD_SUFFIX,
        parts.LOCK_NAME,
        parts.QUARANTINE_DIR,
    )


def test_stats_counts_every_part(tmp_path: Path, cli) -> None:
    root = tmp_path / "c"
    cache = ArtifactCache(root)
    cache.put(elf_header() + b"s" * 10_000)
    push(root, "ab" * 16, b"x" * 30_000, tmp_path)
    push(root, "cd" * 16, b"y" * 20_000, tmp_path)
    q = parts.scons_dir(root) / "quarantine" / "dead-1-2"
    q.mkdir(parents=True)
    (q / "entry").write_bytes(b"z" * 5000)
    (root / "stranger").write_bytes(b"w" * 700)
    result = cli("stats", "--json", cache_dir=root)
    stats = json.loads(result.stdout)
    p = stats["parts"]
    assert stats["scons_entries"] == 2
    assert p["scons"]["bytes"] > 50_000 and p["scons"]["files"] >= 4  # entries + records
    assert p["scons_quarantine"] == {"files": 1, "bytes": 5000}
    assert p["store"]["bytes"] >= 10_000 + len(elf_header())
    assert p["other"]["bytes"] >= 700
    assert stats["root_bytes"] == sum(v["bytes"] for v in p.values())
    walked = sum((Path(d) / f).lstat().st_size for d, _, fs in os.walk(root) for f in fs)
    assert stats["root_bytes"] == walked


def test_gc_evicts_least_recently_used_across_store_and_scons(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = ArtifactCache(root)
    old_scons = push(root, "11" * 16, b"o" * 40_000, tmp_path)
    store_entry = cache.put(elf_header() + b"m" * 40_000)
    new_scons = push(root, "22" * 16, b"n" * 40_000, tmp_path)
    _age(old_scons, 3000)  # SCons refreshes an entry's mtime when a build retrieves it
    _age(new_scons, 10)
    _age(cache.layout.meta_path(store_entry.fingerprint), 1000)  # the store's last use

    bound = parts.usage(root).bytes - 30_000  # one eviction is enough
    report = gc_root(cache, bound, DEFAULT_GRACE_SECONDS)
    assert report.scons_evicted == [old_scons] and report.evicted == []
    assert not old_scons.exists() and not Path(f"{old_scons}{parts.RECORD_SUFFIX}").exists()
    assert report.root_bytes_after <= bound

    bound = parts.usage(root).bytes - 30_000  # next: the store entry, older than new_scons
    report = gc_root(cache, bound, DEFAULT_GRACE_SECONDS)
    assert [e.fingerprint for e in report.evicted] == [store_entry.fingerprint]
    assert report.scons_evicted == [] and new_scons.exists()
    stats = cache.stats()
    assert (stats.scons_evictions, stats.evictions, stats.cleanups) == (1, 1, 2)


def test_an_entry_being_pushed_is_not_evicted(tmp_path: Path) -> None:
    root = tmp_path / "c"
    entry = push(root, "33" * 16, b"p" * 10_000, tmp_path)
    fd = os.open(entry.parent / parts.LOCK_NAME, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a build mid-push into this directory
    try:
        report = gc_root(ArtifactCache(root), 1, DEFAULT_GRACE_SECONDS)
        assert report.scons_evicted == [] and entry.exists()
        assert [f.path for f in report.skipped] == [entry]
    finally:
        os.close(fd)
    report = gc_root(ArtifactCache(root), 1, DEFAULT_GRACE_SECONDS)
    assert report.scons_evicted == [entry] and not entry.exists()


def test_clear_covers_the_scons_cachedir_and_its_quarantine(tmp_path: Path, cli) -> None:
    root = tmp_path / "c"
    ArtifactCache(root).put(elf_header() + b"c" * 1000)
    entry = push(root, "44" * 16, b"q" * 1000, tmp_path)
    sc = parts.scons_dir(root)
    (sc / "config").write_text('{"prefix_len": 2}')
    (sc / "quarantine" / "x-1-2").mkdir(parents=True)
    result = cli("clear", "--yes", "--json", cache_dir=root)
    report = json.loads(result.stdout)
    assert (report["removed"], report["scons_removed"]) == (1, 1)
    assert not entry.exists() and list((sc / "quarantine").iterdir()) == []
    assert (sc / "config").exists(), "SCons keeps using the directory"
    assert parts.scons_entries(root) == []


def _pusher(root: str, tmp: str, n: int, seed: int) -> int:
    for i in range(n):
        sig = f"{(seed * 7919 + i) % 97:02x}" + f"{seed:02x}{i:028x}"
        push(Path(root), sig, bytes([seed, i % 256]) * 3000, Path(tmp))
    return n


def _reader(root: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """What a build retrieving entries sees: every entry verifies or is absent."""
    tool = _tool()
    verdicts: dict[str, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for entry in parts.scons_entries(Path(root)):
            v = tool.inspect_entry(str(entry.path)).status
            verdicts[v] = verdicts.get(v, 0) + 1
    out.put(verdicts)


def _collector(root: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    evicted = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        report = gc_root(ArtifactCache(Path(root)), 60_000, DEFAULT_GRACE_SECONDS)
        evicted += len(report.scons_evicted)
    out.put(evicted)


def test_eviction_next_to_live_pushes_and_reads(tmp_path: Path) -> None:
    """Several processes push (as builds do), read (as retrieval does) and gc at once:
    no reader ever sees an entry that fails its digest (which a build would quarantine).
    A reader that looked at the entry just before its removal and at its record just
    after sees "unrecorded": a miss for a build, which rebuilds and pushes again."""
    root = tmp_path / "c"
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    pushers = [
        ctx.Process(target=_pusher, args=(str(root), str(tmp_path), 150, s)) for s in range(2)
    ]
    readers = [ctx.Process(target=_reader, args=(str(root), 6.0, out)) for _ in range(2)]
    collector = ctx.Process(target=_collector, args=(str(root), 6.0, out))
    for p in [*pushers, *readers, collector]:
        p.start()
    results = [out.get(timeout=180) for _ in range(3)]
    for p in [*pushers, *readers, collector]:
        p.join(timeout=180)
        assert p.exitcode == 0
    verdicts = [r for r in results if isinstance(r, dict)]
    evicted = next(r for r in results if isinstance(r, int))
    assert evicted > 0, "the collector had something to evict"
    for v in verdicts:
        assert set(v) <= {"ok", "missing", "unrecorded"}, v
        assert v.get("ok", 0) > 0
    tool = _tool()
    for entry in parts.scons_entries(root):
        assert tool.inspect_entry(str(entry.path)).status == "ok"


def test_gc_cli_bounds_the_root(tmp_path: Path) -> None:
    root = tmp_path / "c"
    for i in range(5):
        _age(push(root, f"{i:02x}" * 16, bytes([i]) * 20_000, tmp_path), 100 * (5 - i))
    assert main(["--cache-dir", str(root), "config", "max_size", "50K"]) == 0
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "simpler_build", "cache", "gc"],
        env=run_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "SCons entries" in result.stdout
    assert parts.usage(root).bytes <= 50_000
    left = sorted(e.path.name for e in parts.scons_entries(root))
    assert left == [f"{i:02x}" * 16 for i in (3, 4)], "the most recently used stay"


def test_a_real_build_after_gc_evicted_its_scons_entries(
    project_copy: Path, tmp_path: Path
) -> None:
    """gc evicts a real build's CacheDir entries; the next clean build misses, rebuilds
    the same bytes and pushes fresh entries (nothing is quarantined, nothing fails)."""
    from tests.conftest import scons

    root = tmp_path / "cache"
    build_dir = tmp_path / "b"
    args = ("arch=a2a3", "runtime=host_build_graph", f"build_dir={build_dir}")
    env = {"SIMPLER_CACHE_DIR": str(root)}
    scons(*args, cwd=project_copy, env=env)
    inner = build_dir / "lib" / "a2a3" / "host_build_graph" / "libsimpler_inner_host_build_graph.so"
    first = inner.read_bytes()
    before = len(parts.scons_entries(root))
    assert before > 0
    report = gc_root(ArtifactCache(root), 1, DEFAULT_GRACE_SECONDS)
    assert len(report.scons_evicted) == before and parts.scons_entries(root) == []

    import shutil

    shutil.rmtree(build_dir)
    again = scons(*args, cwd=project_copy, env=env)
    assert "Retrieved" not in again.stdout and "quarantine" not in again.stderr
    assert inner.read_bytes() == first
    assert len(parts.scons_entries(root)) == before, "the rebuild pushed every entry again"
