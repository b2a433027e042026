"""Unusable roots, failed writes and symlinks: clear errors, nothing existing lost."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from cache_helpers import blob, make_build, temp_files

from simpler_build.cache import (
    ArtifactCache,
    CacheRootError,
    CacheWriteError,
    UnsafePathError,
    atomic,
    fingerprint_bytes,
)


def test_root_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a dir")
    cache = ArtifactCache(root)
    with pytest.raises(CacheRootError) as info:
        cache.put(b"data")
    assert str(root) in str(info.value) and "not a directory" in str(info.value)
    with pytest.raises(CacheRootError, match="not a directory"):
        cache.get(fingerprint_bytes(b"data"))
    with pytest.raises(CacheRootError, match="not a directory"):
        cache.ls()
    assert root.read_text() == "not a dir"


def test_root_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    root = tmp_path / "file" / "cache"
    with pytest.raises(CacheRootError) as info:
        ArtifactCache(root).put(b"data")
    assert str(root) in str(info.value)


def test_unwritable_new_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path, mode=0o777):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "mkdir", denied)
    root = tmp_path / "new"
    with pytest.raises(CacheRootError) as info:
        ArtifactCache(root).put(b"data")
    assert str(root) in str(info.value) and "not writable" in str(info.value)


def _existing(cache: ArtifactCache) -> list[str]:
    return [cache.put(blob(i, 50_000)).fingerprint for i in range(3)]


def test_unwritable_existing_root_keeps_entries(
    cache: ArtifactCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    fps = _existing(cache)

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "_open_temp", denied)
    with pytest.raises(CacheRootError) as info:
        cache.put(blob(99, 50_000))
    message = str(info.value)
    assert message.startswith(f"{cache.root}: ") and "not writable" in message
    monkeypatch.undo()
    assert cache.verify().ok == sorted(fps)
    assert temp_files(cache.root) == []


def test_enospc_mid_write_leaves_no_temp_and_keeps_entries(
    cache: ArtifactCache, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fps = _existing(cache)
    real = atomic._write_chunk
    calls = {"n": 0}

    def full(fd, chunk):
        calls["n"] += 1
        if len(chunk) > 10_000:  # the object, not its metadata
            real(fd, chunk[: len(chunk) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, chunk)

    monkeypatch.setattr(atomic, "_write_chunk", full)
    src = tmp_path / "new.so"
    src.write_bytes(blob(42, 3_000_000))
    new_fp = fingerprint_bytes(src.read_bytes())
    with pytest.raises(CacheWriteError) as info:
        cache.put(src, arch="a5")
    message = str(info.value)
    assert str(cache.layout.object_path(new_fp)) in message
    assert "No space left on device" in message
    assert calls["n"] >= 2
    assert temp_files(cache.root) == []
    assert not cache.layout.object_path(new_fp).exists()
    assert not cache.layout.meta_path(new_fp).exists(), "no orphan metadata"
    monkeypatch.undo()
    report = cache.verify()
    assert report.clean and report.ok == sorted(fps)
    assert cache.put(src).added


def test_symlinked_object_path_is_refused(cache: ArtifactCache, tmp_path: Path) -> None:
    data = blob(7, 10_000)
    fp = fingerprint_bytes(data)
    target = tmp_path / "elsewhere.so"
    target.write_bytes(data)  # even the right bytes: a symlink is never followed
    obj = cache.layout.object_path(fp)
    cache.put(b"make the tree")
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.symlink_to(target)

    with pytest.raises(UnsafePathError) as info:
        cache.get(fp)
    assert str(obj) in str(info.value) and "symlink" in str(info.value)
    with pytest.raises(UnsafePathError, match="symlink"):
        cache.put(data)
    report = cache.verify()
    assert [c.fingerprint for c in report.corrupt] == [fp]
    assert "symlink" in report.corrupt[0].problem
    assert target.read_bytes() == data

    cache.verify(repair=True)
    assert not os.path.lexists(obj)
    assert target.read_bytes() == data, "repair moves the link, never its target"
    assert cache.put(data).added


def test_cli_root_errors(tmp_path: Path, cli) -> None:
    root = tmp_path / "file"
    root.write_text("x")
    result = cli("--cache-dir", str(root), "stats")
    assert result.returncode == 1
    assert result.stderr == f"simpler-build cache: error: {root}: not a directory\n"

    build = tmp_path / "build"
    make_build(build, size=1000)
    result = cli("--cache-dir", str(root / "sub"), "warm", str(build))
    assert result.returncode == 1
    assert result.stderr.startswith(f"simpler-build cache: error: {root / 'sub'}: ")
    assert result.stderr.count("\n") == 1


def test_a_bound_or_fingerprint_list_of_the_wrong_kind_is_the_callers_error(
    tmp_path: Path,
) -> None:
    """Builtin errors, raised before anything is touched: a negative bound evicted every
    entry on each put, a bool was a one-byte bound, and verify took a string's characters
    for fingerprints."""
    root = tmp_path / "c"
    with pytest.raises(ValueError, match=r"^max_bytes must be 0 or more bytes, not -1$"):
        ArtifactCache(root, max_bytes=-1)
    with pytest.raises(TypeError, match=r"^max_bytes must be None or an int number of bytes"):
        ArtifactCache(root, max_bytes=True)
    cache = ArtifactCache(root, max_bytes=0)  # 0 keeps only what was just put
    fp = cache.put(b"kept").fingerprint
    with pytest.raises(ValueError, match=r"^max_bytes must be 0 or more bytes, not -5$"):
        cache.gc(max_bytes=-5)
    with pytest.raises(TypeError, match=r"^fps is a list of fingerprints, not one string$"):
        cache.verify(fps=fp)  # type: ignore[arg-type]
    assert [e.fingerprint for e in cache.ls()] == [fp] and cache.verify().clean
