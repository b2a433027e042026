"""Size bound with least-recently-used eviction."""

from __future__ import annotations

import os
from pathlib import Path

from cache_helpers import blob

from simpler_build.cache import ArtifactCache

SIZE = 100_000


def _age_all(cache: ArtifactCache, fps: list[str]) -> None:
    """Give entries distinct, increasing last-used times in `fps` order."""
    base = 1_700_000_000
    for i, fp in enumerate(fps):
        os.utime(cache.layout.meta_path(fp), (base + i, base + i))


def test_gc_evicts_least_recently_used_down_to_the_bound(cache: ArtifactCache) -> None:
    fps = [cache.put(blob(i, SIZE)).fingerprint for i in range(4)]
    _age_all(cache, fps)
    assert cache.get(fps[0]) is not None  # A becomes the most recently used
    report = cache.gc(max_bytes=int(2.5 * SIZE))
    assert [e.fingerprint for e in report.evicted] == [fps[1], fps[2]]
    assert sorted(e.fingerprint for e in cache.ls()) == sorted([fps[0], fps[3]])
    assert report.bytes_after == 2 * SIZE <= 2.5 * SIZE
    s = cache.stats()
    assert (s.evictions, s.bytes_evicted, s.bytes) == (2, 2 * SIZE, 2 * SIZE)
    assert not cache.layout.object_path(fps[1]).exists()
    assert not cache.layout.meta_path(fps[1]).exists()


def test_gc_under_the_bound_evicts_nothing(cache: ArtifactCache) -> None:
    for i in range(3):
        cache.put(blob(i, SIZE))
    assert cache.gc(max_bytes=10 * SIZE).evicted == []
    assert cache.gc().evicted == []  # no bound at all
    assert len(cache.ls()) == 3


def test_bounded_cache_evicts_on_put_and_keeps_the_new_object(cache_dir: Path) -> None:
    cache = ArtifactCache(cache_dir, max_bytes=int(3.5 * SIZE))
    fps = [cache.put(blob(i, SIZE)).fingerprint for i in range(3)]
    assert cache.stats().evictions == 0
    _age_all(cache, fps)
    cache.get(fps[0])
    fps.append(cache.put(blob(3, SIZE)).fingerprint)
    assert {e.fingerprint for e in cache.ls()} == {fps[0], fps[2], fps[3]}
    assert cache.stats().bytes <= 3.5 * SIZE
    # A single object bigger than the bound still stays (it was just asked for).
    big = cache.put(blob(9, 4 * SIZE)).fingerprint
    assert [e.fingerprint for e in cache.ls()] == [big]


def test_eviction_skips_an_entry_whose_lock_is_held(cache: ArtifactCache) -> None:
    fps = [cache.put(blob(i, SIZE)).fingerprint for i in range(3)]
    _age_all(cache, fps)
    with cache._lock(fps[0]):
        report = cache.gc(max_bytes=2 * SIZE)
    assert [e.fingerprint for e in report.evicted] == [fps[1]]
    assert cache.contains(fps[0])
