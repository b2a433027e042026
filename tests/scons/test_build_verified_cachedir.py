"""SCons's CacheDir is verified: a digest recorded at push, checked at retrieval.

Plain SCons copies a CacheDir entry into the build tree without reading it,
so one damaged entry became a binary that computes wrong results, and the
manifest signed off on it.  Here entries of a real build's CacheDir are
damaged, the build tree is removed, and the rebuild must come out byte for
byte equal to the clean build, with the bad entry quarantined.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import xxhash

from simpler_build.cache.paths import scons_cache_dir
from simpler_build.manifest import load_manifest
from tests.conftest import scons

ONE = ("arch=a2a3", "runtime=host_build_graph")
RUNTIME_DIR = Path("lib", "a2a3", "host_build_graph")
INNER_SO = RUNTIME_DIR / "libsimpler_inner_host_build_graph.so"
RECORD_SUFFIX = ".simpler-digest"


def entry_holding(cachedir: Path, data: bytes) -> Path:
    """The CacheDir entry whose bytes are `data` (entries are named by build signature)."""
    found = [
        p
        for p in cachedir.glob("[0-9A-F][0-9A-F]/*")
        if p.is_file() and not p.name.startswith(".") and "." not in p.name
        if p.read_bytes() == data
    ]
    assert len(found) == 1, found
    return found[0]


def _flip(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x01
    entry.write_bytes(bytes(data))


def _truncate(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:-100])


def _unrecorded_and_flipped(entry: Path) -> None:
    """An entry pushed by plain SCons (no digest record) is not trusted, even unchanged."""
    (entry.parent / (entry.name + RECORD_SUFFIX)).unlink(missing_ok=True)
    _flip(entry)


@pytest.mark.parametrize(
    ("damage", "quarantined"),
    [(_flip, True), (_truncate, True), (_unrecorded_and_flipped, False)],
    ids=["flipped-byte", "truncated", "no-digest-record"],
)
def test_damaged_cachedir_entry_is_never_retrieved(
    project_copy: Path, tmp_path: Path, damage: object, quarantined: bool
) -> None:
    root = tmp_path / "cache"
    cachedir = scons_cache_dir(root)
    build_dir = tmp_path / "b"
    args = (*ONE, f"build_dir={build_dir}")
    env = {"SIMPLER_CACHE_DIR": str(root)}

    clean = scons(*args, cwd=project_copy, env=env)  # empty cache: a clean build
    assert "Retrieved" not in clean.stdout
    good = (build_dir / INNER_SO).read_bytes()
    entry = entry_holding(cachedir, good)
    record_path = entry.parent / (entry.name + RECORD_SUFFIX)
    record = {"format": 1, "size": len(good), "xxh3_64": xxhash.xxh3_64_hexdigest(good)}
    damage(entry)  # type: ignore[operator]

    shutil.rmtree(build_dir)  # a clean checkout, built from the cache
    warm = scons(*args, cwd=project_copy, env=env)
    so = build_dir / INNER_SO
    assert so.read_bytes() == good
    assert f"Retrieved `{so}' from cache" not in warm.stdout
    assert "Retrieved" in warm.stdout, "the undamaged entries are still used"
    assert load_manifest(build_dir / RUNTIME_DIR).inner_so.fingerprint == (
        xxhash.xxh3_64_hexdigest(good)
    )
    # The rebuilt SO was pushed again, with its digest record.
    assert entry.read_bytes() == good
    assert json.loads(record_path.read_text()) == record

    moved = sorted((cachedir / "quarantine").glob(f"{entry.name}-*"))
    warnings = [line for line in warm.stderr.splitlines() if str(entry) in line]
    if quarantined:
        assert len(moved) == 1 and len(warnings) == 1, warm.stderr
        assert str(moved[0]) in warnings[0] and str(so) in warnings[0]
        assert (moved[0] / "entry").read_bytes() != good
        assert "recorded at push" in (moved[0] / "reason").read_text()
    else:
        assert moved == [] and warnings == [], "an unrecorded entry is a miss, not a fault"
