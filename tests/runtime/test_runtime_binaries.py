"""RuntimeBinaries: a valid manifest loads; every kind of bad input is a clear ValueError."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import xxhash

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import ManifestError
from simpler_build.runtime import BinaryError, RuntimeBinaries


@pytest.mark.parametrize("arch", ["a2a3", "a5"])
def test_manifest_loads_with_fingerprints(runtime_lib: Path, arch: str) -> None:
    bins = RuntimeBinaries.from_manifest(runtime_lib / arch / "host_build_graph", arch=arch)
    assert (bins.arch, bins.runtime) == (arch, "host_build_graph")
    for role in ("dispatcher", "inner_so", "aicore"):
        assert bins.fingerprints[role] == xxhash.xxh3_64_hexdigest(bins.path(role).read_bytes())


def _copy_tree(runtime_lib: Path, tmp_path: Path, arch: str = "a5") -> Path:
    """A private copy of one arch's build output, for tests that damage it."""
    dest = tmp_path / "lib" / arch
    shutil.copytree(runtime_lib / arch, dest)
    return dest / "host_build_graph" / "runtime_binaries.json"


def test_wrong_arch_names_the_manifest(runtime_lib: Path) -> None:
    path = runtime_lib / "a5" / "host_build_graph" / "runtime_binaries.json"
    with pytest.raises(ManifestError, match="for arch 'a5', not the requested 'a2a3'") as info:
        RuntimeBinaries.from_manifest(path, arch="a2a3")
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such manifest"):
        RuntimeBinaries.from_manifest(tmp_path / "nowhere" / "runtime_binaries.json")


def _empty_cache(tmp_path: Path) -> dict:
    """from_manifest options that leave nothing to fall back on: the file beside is all."""
    return {"cache": ArtifactCache(tmp_path / "empty-cache"), "remotes": []}


def _rerecord(manifest: Path, role: str) -> None:
    """Make the manifest vouch for whatever bytes are beside it now (a lying manifest)."""
    data = json.loads(manifest.read_text())
    entry = data["binaries"][role]
    blob = (manifest.parent / entry["path"]).read_bytes()
    entry.update(
        fingerprint=xxhash.xxh3_64_hexdigest(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
    )
    manifest.write_text(json.dumps(data))


def test_missing_binary_available_nowhere(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    aicore = manifest.parent / "aicore_kernels.elf"
    aicore.unlink()
    with pytest.raises(BinaryError, match=r"aicore [0-9a-f]{16} .* is available nowhere") as info:
        RuntimeBinaries.from_manifest(manifest, **_empty_cache(tmp_path))
    assert info.value.path == manifest
    message = str(info.value)
    assert "\n" not in message and "scons arch=a5" in message
    assert f"simpler-build cache fetch {manifest}" in message


def test_missing_binary_comes_from_the_cache(runtime_lib: Path, tmp_path: Path) -> None:
    """The session build published every binary: a manifest alone is enough."""
    manifest = _copy_tree(runtime_lib, tmp_path)
    for name in ("aicore_kernels.elf", "libsimpler_inner_host_build_graph.so"):
        (manifest.parent / name).unlink()
    shutil.rmtree(manifest.parents[1] / "dispatcher")
    cache = ArtifactCache()
    hits = cache.stats().hits
    bins = RuntimeBinaries.from_manifest(manifest, remotes=[])
    for role in ("dispatcher", "inner_so", "aicore"):
        assert bins.path(role).is_relative_to(cache.root)
        assert xxhash.xxh3_64_hexdigest(bins.path(role).read_bytes()) == bins.fingerprints[role]
    assert cache.stats().hits == hits + 3


def test_non_elf_binary(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    inner = manifest.parent / "libsimpler_inner_host_build_graph.so"
    inner.write_text("#!/bin/sh\necho not an elf\n")
    _rerecord(manifest, "inner_so")
    with pytest.raises(BinaryError, match="not an ELF file") as info:
        RuntimeBinaries.from_manifest(manifest, **_empty_cache(tmp_path))
    assert str(inner) in str(info.value)


def test_truncated_elf(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    inner = manifest.parent / "libsimpler_inner_host_build_graph.so"
    inner.write_bytes(inner.read_bytes()[:20])
    _rerecord(manifest, "inner_so")
    with pytest.raises(BinaryError, match="truncated or malformed ELF"):
        RuntimeBinaries.from_manifest(manifest, **_empty_cache(tmp_path))


def test_empty_inner_so(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    inner = manifest.parent / "libsimpler_inner_host_build_graph.so"
    inner.write_bytes(b"")
    _rerecord(manifest, "inner_so")
    with pytest.raises(BinaryError, match="inner_so is an empty file") as info:
        RuntimeBinaries.from_manifest(manifest, **_empty_cache(tmp_path))
    assert info.value.path == inner


def test_damaged_binary_beside_the_manifest_is_never_used(
    runtime_lib: Path, tmp_path: Path
) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    inner = manifest.parent / "libsimpler_inner_host_build_graph.so"
    with inner.open("ab") as f:
        f.write(b"\0")  # still a valid ELF, different bytes
    with pytest.raises(BinaryError, match=r"inner_so [0-9a-f]{16} .* is available nowhere"):
        RuntimeBinaries.from_manifest(manifest, **_empty_cache(tmp_path))
    # With the cache that holds the built bytes, those are used instead.
    bins = RuntimeBinaries.from_manifest(manifest, remotes=[])
    assert bins.inner_so != inner and bins.inner_so.read_bytes() != inner.read_bytes()
    assert xxhash.xxh3_64_hexdigest(bins.inner_so.read_bytes()) == bins.inner_fingerprint


def test_unknown_arch_in_manifest(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = _copy_tree(runtime_lib, tmp_path)
    data = json.loads(manifest.read_text())
    data["arch"] = "a9"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="unknown arch 'a9'"):
        RuntimeBinaries.from_manifest(manifest)


def test_from_paths_validates(runtime_lib: Path, tmp_path: Path) -> None:
    d = runtime_lib / "a2a3"
    rt = d / "host_build_graph"
    bins = RuntimeBinaries.from_paths(
        "a2a3",
        "host_build_graph",
        d / "dispatcher" / "libsimpler_aicpu_dispatcher.so",
        rt / "libsimpler_inner_host_build_graph.so",
        rt / "aicore_kernels.elf",
    )
    assert bins.manifest is None
    text = tmp_path / "x.so"
    text.write_text("hello")
    with pytest.raises(BinaryError, match="dispatcher is not an ELF"):
        RuntimeBinaries.from_paths("a2a3", "host_build_graph", text, bins.inner_so, bins.aicore)
    with pytest.raises(ValueError, match="unknown arch"):
        RuntimeBinaries.from_paths("a4", "x", bins.dispatcher, bins.inner_so, bins.aicore)


def test_from_paths_refuses_a_fifo_without_blocking(runtime_lib: Path, tmp_path: Path) -> None:
    """A FIFO handed to from_paths is named, never opened for a blocking read."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "inner.so"
    os.mkfifo(fifo)
    d = runtime_lib / "a2a3"
    code = (
        "import sys\n"
        "from simpler_build.runtime import BinaryError, RuntimeBinaries\n"
        "try:\n"
        "    RuntimeBinaries.from_paths('a2a3', 'host_build_graph', *sys.argv[1:])\n"
        "except BinaryError as exc:\n"
        "    print(exc)\n"
    )
    args = [
        str(d / "dispatcher" / "libsimpler_aicpu_dispatcher.so"),
        str(fifo),
        str(d / "host_build_graph" / "aicore_kernels.elf"),
    ]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == f"{fifo}: inner_so is a FIFO, not a regular file", out.stderr
