"""ArtifactCache basics: layout, put/get/contains/ls/stats/clear, idempotency."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cache_helpers import blob

from simpler_build.cache import (
    ArtifactCache,
    FingerprintMismatch,
    InvalidFingerprint,
    SourceError,
    fingerprint_bytes,
)
from simpler_build.cache.layout import CACHEDIR_TAG_NAME


def test_layout_tag_object_metadata_and_lock(cache: ArtifactCache, cache_dir: Path) -> None:
    data = blob(1, 50_000)
    entry = cache.put(data, arch="a5", runtime="host_build_graph", build_id="abc123")
    fp = fingerprint_bytes(data)
    assert entry.fingerprint == fp and entry.added and entry.size == len(data)

    tag = (cache_dir / CACHEDIR_TAG_NAME).read_text()
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55")

    obj = cache_dir / "v1" / "objects" / fp[:2] / f"simpler_inner_{fp}.so"
    assert entry.path == obj
    assert obj.read_bytes() == data
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444

    meta = json.loads((obj.parent / f"simpler_inner_{fp}.json").read_text())
    for key in ("size", "arch", "runtime", "build_id", "created", "last_used", "fingerprint"):
        assert key in meta
    assert (meta["size"], meta["arch"], meta["runtime"], meta["build_id"]) == (
        len(data),
        "a5",
        "host_build_graph",
        "abc123",
    )
    assert (cache_dir / "v1" / "locks" / fp[:2] / f"{fp}.lock").exists()


def test_put_is_idempotent_and_reports_added(cache: ArtifactCache, tmp_path: Path) -> None:
    src = tmp_path / "inner.so"
    src.write_bytes(blob(2, 20_000))
    first = cache.put(src, arch="a2a3")
    second = cache.put(src, arch="a2a3")
    third = cache.put(src.read_bytes())
    assert first.added and not second.added and not third.added
    assert first.fingerprint == second.fingerprint == third.fingerprint
    assert [e.fingerprint for e in cache.ls()] == [first.fingerprint]
    assert cache.stats().added == 1


def test_put_fills_missing_metadata_but_keeps_existing(cache: ArtifactCache) -> None:
    data = blob(3, 1000)
    cache.put(data)
    entry = cache.put(data, arch="a5", runtime="rt", build_id="b1")
    assert (entry.arch, entry.runtime, entry.build_id) == ("a5", "rt", "b1")
    again = cache.put(data, arch="a2a3")
    assert again.arch == "a5"
    assert cache.ls()[0].arch == "a5"


def test_put_with_wrong_fingerprint_names_the_file(cache: ArtifactCache, tmp_path: Path) -> None:
    src = tmp_path / "inner.so"
    src.write_bytes(b"abc")
    with pytest.raises(FingerprintMismatch) as info:
        cache.put(src, fingerprint="0" * 16)
    assert str(src) in str(info.value) and "0" * 16 in str(info.value)
    assert cache.ls() == []
    with pytest.raises(InvalidFingerprint):
        cache.put(src, fingerprint="XYZ")


def test_put_missing_source(cache: ArtifactCache, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        cache.put(tmp_path / "nope.so")


def test_get_contains_and_counters(cache: ArtifactCache) -> None:
    data = blob(4, 10_000)
    fp = fingerprint_bytes(data)
    assert cache.get(fp) is None
    assert not cache.contains(fp)
    cache.put(data)
    path = cache.get(fp)
    assert path is not None and path.read_bytes() == data
    assert cache.contains(fp)
    s = cache.stats()
    assert (s.entries, s.bytes, s.hits, s.misses, s.corruptions) == (1, len(data), 1, 1, 0)
    with pytest.raises(InvalidFingerprint):
        cache.get("not-a-fingerprint")


def test_get_updates_last_used(cache: ArtifactCache) -> None:
    entry = cache.put(blob(5, 100))
    before = cache.ls()[0].last_used
    os.utime(cache.layout.meta_path(entry.fingerprint), (before - 100, before - 100))
    assert cache.ls()[0].last_used == pytest.approx(before - 100, abs=1e-3)
    cache.get(entry.fingerprint)
    assert cache.ls()[0].last_used >= before


def test_clear_leaves_scons_and_sim_trees(cache: ArtifactCache, cache_dir: Path) -> None:
    for i in range(3):
        cache.put(blob(10 + i, 1000))
    (cache_dir / "scons").mkdir()
    (cache_dir / "scons" / "keep").write_text("scons")
    (cache_dir / "sim").mkdir()
    (cache_dir / "sim" / "keep").write_text("sim")
    assert cache.clear() == 3
    assert cache.ls() == [] and cache.stats().entries == 0
    assert (cache_dir / "scons" / "keep").read_text() == "scons"
    assert (cache_dir / "sim" / "keep").read_text() == "sim"
    assert (cache_dir / CACHEDIR_TAG_NAME).exists()
    assert cache.put(blob(10, 1000)).added


def test_default_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMPLER_CACHE_DIR", str(tmp_path / "env-cache"))
    assert ArtifactCache().root == tmp_path / "env-cache"


def test_reads_do_not_create_the_root(tmp_path: Path) -> None:
    c = ArtifactCache(tmp_path / "absent")
    assert c.ls() == [] and c.stats().entries == 0
    assert c.verify().clean
    assert not (tmp_path / "absent" / "v1" / "objects").exists()
