"""The build publishes every inner SO into the artifact cache (and `cache=0` does not)."""

from __future__ import annotations

from pathlib import Path

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import load_manifest
from tests.conftest import ARCHES, RUNTIMES, BuiltTree, scons


def test_build_puts_every_inner_so_into_the_cache(built_tree: BuiltTree):
    cache = ArtifactCache()
    for arch in ARCHES:
        for runtime in RUNTIMES:
            manifest = load_manifest(built_tree.manifest(arch, runtime))
            cached = cache.get(manifest.inner_so.fingerprint)
            assert cached is not None, f"{arch}/{runtime} inner SO not cached"
            assert cached.read_bytes() == manifest.inner_so.path.read_bytes()
            entry = cache.entry(manifest.inner_so.fingerprint)
            assert entry is not None
            assert entry.build_id == manifest.inner_so.build_id


def test_cache_0_builds_without_publishing(project_copy: Path, tmp_path: Path):
    root = tmp_path / "cache"
    env = {"SIMPLER_CACHE_DIR": str(root)}
    scons("arch=a2a3", "cache=0", f"build_dir={tmp_path / 'b'}", cwd=project_copy, env=env)
    manifest = load_manifest(tmp_path / "b" / "lib" / "a2a3" / "host_build_graph")
    assert not ArtifactCache(root).contains(manifest.inner_so.fingerprint)
    scons("arch=a2a3", f"build_dir={tmp_path / 'b'}", cwd=project_copy, env=env)
    assert ArtifactCache(root).contains(manifest.inner_so.fingerprint)
