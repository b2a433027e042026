"""A flipped byte in a published object is never served; verify finds and repairs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cache_helpers import blob

from simpler_build.cache import ArtifactCache


def _flip_byte(path: Path, offset: int = 1234) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _two_entries(cache: ArtifactCache) -> tuple[str, str]:
    bad = cache.put(blob(1, 100_000), arch="a5").fingerprint
    good = cache.put(blob(2, 100_000), arch="a5").fingerprint
    _flip_byte(cache.layout.object_path(bad))
    return bad, good


def test_get_quarantines_a_corrupt_object(cache: ArtifactCache) -> None:
    bad, good = _two_entries(cache)
    assert cache.get(bad) is None
    assert not cache.layout.object_path(bad).exists()
    quarantined = list(cache.layout.quarantine.glob(f"{bad}-*.so"))
    assert len(quarantined) == 1
    reason = json.loads(next(cache.layout.quarantine.glob(f"{bad}-*.reason.json")).read_text())
    assert "content hashes to" in reason["problem"]
    stats = cache.stats()
    assert (stats.misses, stats.corruptions, stats.hits, stats.quarantined) == (1, 1, 0, 1)
    assert cache.get(good) is not None
    # The next put of the right bytes heals the entry.
    assert cache.put(blob(1, 100_000)).added
    assert cache.get(bad) is not None


def test_verify_reports_and_repair_quarantines(cache: ArtifactCache) -> None:
    bad, good = _two_entries(cache)
    report = cache.verify()
    assert report.checked == 2 and report.ok == [good]
    assert [c.fingerprint for c in report.corrupt] == [bad]
    assert "content hashes to" in report.corrupt[0].problem
    assert cache.layout.object_path(bad).exists(), "verify without repair changes nothing"

    repaired = cache.verify(repair=True)
    assert repaired.corrupt[0].quarantined_to is not None
    assert repaired.corrupt[0].quarantined_to.parent == cache.layout.quarantine
    assert not cache.layout.object_path(bad).exists()
    assert cache.verify().clean
    assert cache.stats().corruptions == 1


def test_verify_repairs_bad_metadata_without_dropping_the_object(cache: ArtifactCache) -> None:
    fp = cache.put(blob(3, 5000), arch="a2a3").fingerprint
    cache.layout.meta_path(fp).write_text("{not json")
    report = cache.verify(repair=True)
    assert [c.fingerprint for c in report.corrupt] == [fp] and report.corrupt[0].repaired
    assert cache.verify().clean
    assert cache.get(fp) is not None


def test_cli_verify_exit_codes(cache: ArtifactCache, cache_dir: Path, cli) -> None:
    bad, _good = _two_entries(cache)
    result = cli("verify", cache_dir=cache_dir)
    assert result.returncode == 1
    assert bad in result.stdout and "corrupt" in result.stdout

    result = cli("--cache-dir", str(cache_dir), "verify", "--repair")
    assert result.returncode == 1, "corruption found is reported even when repaired"
    assert "quarantined to" in result.stdout
    assert list(cache.layout.quarantine.glob(f"{bad}-*.so"))

    result = cli("verify", "--cache-dir", str(cache_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 checked, 0 corrupt" in result.stdout
