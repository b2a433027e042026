"""The build publishes every binary into the artifact cache (and `cache=0` does not)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import MANIFEST_NAME, load_manifest
from tests.conftest import ARCHES, RUNTIMES, BuiltTree, scons


def test_build_puts_every_binary_into_the_cache(built_tree: BuiltTree):
    cache = ArtifactCache()
    for arch in ARCHES:
        for runtime in RUNTIMES:
            manifest = load_manifest(built_tree.manifest(arch, runtime))
            assert manifest.schema_version == 2
            for role, record in manifest.binaries.items():
                data = record.path.read_bytes()
                assert record.sha256 == hashlib.sha256(data).hexdigest()
                assert record.size == len(data)
                cached = cache.get(record.fingerprint)
                assert cached is not None, f"{arch}/{runtime} {role} not cached"
                assert cached.read_bytes() == data
                entry = cache.entry(record.fingerprint)
                assert entry is not None
                assert (entry.build_id, entry.role, entry.sha256) == (
                    record.build_id,
                    role,
                    record.sha256,
                )


def test_cache_0_builds_without_publishing(project_copy: Path, tmp_path: Path):
    root = tmp_path / "cache"
    env = {"SIMPLER_CACHE_DIR": str(root)}
    scons("arch=a2a3", "cache=0", f"build_dir={tmp_path / 'b'}", cwd=project_copy, env=env)
    manifest = load_manifest(tmp_path / "b" / "lib" / "a2a3" / "host_build_graph")
    assert not ArtifactCache(root).contains(manifest.inner_so.fingerprint)
    scons("arch=a2a3", f"build_dir={tmp_path / 'b'}", cwd=project_copy, env=env)
    assert ArtifactCache(root).contains(manifest.inner_so.fingerprint)


def test_unusable_cache_fails_clearly_and_keeps_the_build(project_copy: Path, tmp_path: Path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / "v1").write_text("not a directory")
    build_dir = tmp_path / "b"
    proc = scons(
        "arch=a2a3",
        "runtime=host_build_graph",
        f"build_dir={build_dir}",
        cwd=project_copy,
        env={"SIMPLER_CACHE_DIR": str(root)},
        check=False,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "artifact cache" in line]
    assert len(errors) == 1 and str(root / "v1") in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert (build_dir / "lib" / "a2a3" / "host_build_graph" / MANIFEST_NAME).exists()


def test_concurrent_builds_share_one_cache(project_copy: Path, tmp_path: Path):
    """Three builds of separate checkouts at once, on one cache root (both caches)."""
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(tmp_path / "cache")}
    checkouts = [project_copy]
    for i in range(2):
        checkouts.append(tmp_path / f"checkout{i}")
        shutil.copytree(project_copy, checkouts[-1])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "SCons", "-Q", "-j2", "arch=all"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for checkout in checkouts
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
    manifests = [
        load_manifest(c / "build" / "lib" / arch / runtime)
        for c in checkouts
        for arch in ARCHES
        for runtime in RUNTIMES
    ]
    cache = ArtifactCache(tmp_path / "cache")
    assert cache.verify().clean
    for manifest in manifests:
        cached = cache.get(manifest.inner_so.fingerprint)
        assert cached is not None
        assert cached.read_bytes() == manifest.inner_so.path.read_bytes()
    assert len({m.inner_so.fingerprint for m in manifests}) == len(ARCHES) * len(RUNTIMES)
    # Every binary of every manifest is cached, and nothing else.  (The AICore
    # ELFs of separate checkouts differ until their debug info is path-free.)
    named = {r.fingerprint for m in manifests for r in m.binaries.values()}
    assert {e.fingerprint for e in cache.ls()} == named
