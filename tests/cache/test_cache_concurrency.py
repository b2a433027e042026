"""Many real processes (spawn) warming and reading one cache at the same time."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from cache_helpers import (
    get_loop_worker,
    make_manifest_set,
    run_processes,
    temp_files,
    warm_worker,
)

from simpler_build.cache import ArtifactCache

WRITERS = 16
READERS = 4
BLOBS = 8
SIZE = 300_000


def test_16_writers_and_readers_share_an_empty_cache(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    manifests, blobs = make_manifest_set(tmp_path / "build", BLOBS, SIZE)
    sources = [str(p) for p in manifests]
    expected = {fp: len(data) for fp, data in blobs.items()}

    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WRITERS + READERS)
    writers_done = ctx.Value("i", 0)
    calls = [(get_loop_worker, (str(cache_dir), expected, start, writers_done, WRITERS))]
    calls *= READERS
    # Writers copy in slow 64 KB chunks: a torn publish would be seen by the readers.
    calls += [(warm_worker, (str(cache_dir), sources, start, 0.002, writers_done))] * WRITERS
    results = run_processes(calls)
    seen, added = results[:READERS], results[READERS:]

    # Every object was published exactly once, by exactly one process.
    assert sum(added) == len(blobs)  # BLOBS inner SOs + a dispatcher and an AICore per arch
    cache = ArtifactCache(cache_dir)
    entries = cache.ls()
    assert sorted(e.fingerprint for e in entries) == sorted(blobs)
    for entry in entries:
        assert entry.path.read_bytes() == blobs[entry.fingerprint]
    objects = list((cache_dir / "v1" / "objects").rglob("simpler_inner_*.so"))
    assert len(objects) == len(blobs)
    report = cache.verify()
    assert report.clean and report.checked == len(blobs)
    assert temp_files(cache_dir) == []

    # Readers saw either nothing or complete bytes, never a partial object, and each
    # kept reading until it had been served every object.
    assert all(s["bad"] == 0 for s in seen), seen
    assert all(s["served"] == len(blobs) for s in seen), seen
    stats = cache.stats()
    assert stats.corruptions == 0 and stats.quarantined == 0
    # Counters are exact under concurrent processes.
    calls = sum(s["calls"] for s in seen)
    assert stats.hits + stats.misses == calls
    assert stats.hits == sum(s["complete"] for s in seen)
    assert stats.added == len(blobs)
