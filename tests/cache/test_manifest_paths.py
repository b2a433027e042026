"""Manifest paths checked without realpath on the common path, and found without rglob.

`load_manifest` lstats the components below the tree and resolves symlinks
only when it meets one; these tests make sure every way out through a
symlink is still refused, and that `find_manifests` (os.walk) finds exactly
what `Path.rglob` found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cache_helpers import elf_header, write_manifest

from simpler_build.manifest import MANIFEST_NAME, ManifestError, find_manifests, load_manifest


def _edit(manifest: Path, role: str, rel: str) -> None:
    data = json.loads(manifest.read_text())
    data["binaries"][role]["path"] = rel
    manifest.write_text(json.dumps(data))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(manifest, a directory outside its tree holding a file named like the dispatcher)."""
    manifest, _ = write_manifest(tmp_path / "lib" / "a5" / "rt", "a5", "rt", elf_header())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "libsimpler_aicpu_dispatcher.so").write_bytes(elf_header() + b"secret")
    return manifest, outside


def test_a_symlinked_directory_below_the_tree_that_leaves_it_is_refused(
    tree: tuple[Path, Path],
) -> None:
    manifest, outside = tree
    (manifest.parent.parent / "dispatcher").symlink_to(outside, target_is_directory=True)
    _edit(manifest, "dispatcher", "../dispatcher/libsimpler_aicpu_dispatcher.so")
    with pytest.raises(ManifestError, match=r"leaves .* through a symlink"):
        load_manifest(manifest)


def test_the_runtime_directory_itself_a_symlink_out_is_refused(
    tmp_path: Path, tree: tuple[Path, Path]
) -> None:
    manifest, _outside = tree
    moved = tmp_path / "elsewhere"
    manifest.parent.rename(moved)
    manifest.parent.symlink_to(moved, target_is_directory=True)
    with pytest.raises(ManifestError, match=r"leaves .* through a symlink"):
        load_manifest(manifest)


def test_symlinks_that_stay_inside_and_missing_files_load(tree: tuple[Path, Path]) -> None:
    manifest, _ = tree
    arch_dir = manifest.parent.parent
    (arch_dir / "shared").mkdir()
    (arch_dir / "shared" / "d.so").write_bytes(elf_header())
    (arch_dir / "link").symlink_to(arch_dir / "shared", target_is_directory=True)
    _edit(manifest, "dispatcher", "../link/d.so")
    assert load_manifest(manifest).dispatcher.path == arch_dir / "link" / "d.so"
    _edit(manifest, "dispatcher", "../not-built-yet/d.so")  # reported later, by its reader
    assert load_manifest(manifest).dispatcher.path == arch_dir / "not-built-yet" / "d.so"


def test_find_manifests_matches_rglob(tmp_path: Path) -> None:
    build = tmp_path / "build"
    for arch in ("a2a3", "a5"):
        for rt in ("a", "a-b", "b", ".hidden"):
            write_manifest(build / "lib" / arch / rt, arch, rt, elf_header())
    (build / "lib" / "a5" / "odd" / MANIFEST_NAME).mkdir(parents=True)  # a directory by the name
    (tmp_path / "linked").mkdir()
    write_manifest(tmp_path / "linked" / "rt", "a5", "rt", elf_header())
    (build / "lib" / "via-link").symlink_to(tmp_path / "linked", target_is_directory=True)
    found = find_manifests(build)
    assert found == sorted(build.rglob(MANIFEST_NAME))
    assert len(found) == 9  # 8 manifests and the directory; nothing through the symlink
    assert find_manifests(found[0]) == [found[0]]
    assert find_manifests(tmp_path / "missing") == []
