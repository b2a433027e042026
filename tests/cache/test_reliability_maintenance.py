"""One bad entry never stops maintenance (issue 8, class 4).

gc, `verify --repair` and clear must finish whatever the tree holds: each item
they cannot use is skipped, removed or quarantined and reported, the size
bound is enforced, symlinks are never followed and nothing outside the cache
root changes.  `verify` during another process's eviction reports what was
evicted as gone, never as corrupt.

The first tests reproduce the cases of the issue (each failed on the tree
before the fix); the table adds variants; a hypothesis property builds random
damaged trees.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import xxhash
from cache_helpers import blob
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simpler_build.cache import ArtifactCache, _tree, _verify, maintenance
from simpler_build.cache.cli import main
from simpler_build.cache.layout import TEMP_PREFIX

SIZE = 5_000
OLD = 1_000_000_000  # an mtime far older than any grace period


# -- fixtures and helpers ---------------------------------------------------------------


@dataclass
class World:
    """A cache root with 4 entries, sibling trees and an outside directory to guard."""

    cache: ArtifactCache
    fps: list[str]  # least recently used first
    blobs: dict[str, bytes]
    outside: Path

    @property
    def root(self) -> Path:
        return self.cache.root


def _populate(cache: ArtifactCache, count: int, sizes: list[int] | None = None) -> list[str]:
    fps = []
    for i in range(count):
        size = sizes[i] if sizes else SIZE
        fps.append(cache.put(blob(7000 + i, size), arch="a5", runtime=f"rt{i}").fingerprint)
    for i, fp in enumerate(fps):  # distinct last-used times, in list order
        os.utime(cache.layout.meta_path(fp), (1_700_000_000 + i, 1_700_000_000 + i))
    return fps


def _outside_tree(base: Path, sample: bytes, sample_fp: str) -> Path:
    """Files a symlink in the cache may point at: none of them may ever change."""
    out = base / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "file").write_bytes(b"precious bytes")
    (out / "dir" / "inner").write_bytes(b"more precious bytes")
    # Looks like a store, so a followed symlink would find "entries" to delete.
    fake = out / "fake" / sample_fp[:2]
    fake.mkdir(parents=True)
    (fake / f"simpler_inner_{sample_fp}.so").write_bytes(sample)
    (fake / f"simpler_inner_{sample_fp}.json").write_text("{}")
    return out


def _siblings(root: Path) -> None:
    for name in ("scons", "sim"):
        (root / name).mkdir(exist_ok=True)
        (root / name / "keep").write_text(name)
    (root / "stranger").write_text("not the store's")


def _snapshot(*dirs: Path) -> dict[str, tuple]:
    """Type, mode, size and content hash of everything under `dirs` (symlinks not followed)."""
    seen: dict[str, tuple] = {}
    for top in dirs:
        if not os.path.lexists(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st_ = os.lstat(path)
                digest = ""
                if stat.S_ISREG(st_.st_mode):
                    digest = xxhash.xxh3_64_hexdigest(path.read_bytes())
                elif stat.S_ISLNK(st_.st_mode):
                    digest = os.readlink(path)
                seen[str(path)] = (stat.S_IFMT(st_.st_mode), st_.st_mode, st_.st_size, digest)
    return seen


def _guarded(world: World) -> dict[str, tuple]:
    root = world.root
    snap = _snapshot(world.outside, root / "scons", root / "sim")
    snap["stranger"] = ((root / "stranger").read_text(),)
    return snap


@pytest.fixture
def world(tmp_path: Path) -> World:
    cache = ArtifactCache(tmp_path / "cache")
    fps = _populate(cache, 4)
    blobs = {fp: cache.layout.object_path(fp).read_bytes() for fp in fps}
    outside = _outside_tree(tmp_path, blobs[fps[0]], fps[0])
    _siblings(cache.root)
    return World(cache, fps, blobs, outside)


def _cli(world: World, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["--cache-dir", str(world.root), *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out + out.err


def _finding_lines(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if line.startswith(("skipped: ", "removed: ", "quarantined: "))
    ]


def _object_names(cache: ArtifactCache) -> list[Path]:
    return sorted(cache.layout.objects.glob("*/simpler_inner_*"))


def _assert_healed(world: World) -> None:
    """After clear, the store works again for every original entry."""
    cache = ArtifactCache(world.root)
    for fp, data in world.blobs.items():
        assert cache.put(data).fingerprint == fp
        path = cache.get(fp)
        assert path is not None and path.read_bytes() == data
    assert cache.verify().clean


# -- the reproduced cases ----------------------------------------------------------------


def _run_issue_sequence(world: World, capsys: pytest.CaptureFixture[str]) -> str:
    """`verify --repair`, `gc --max-size 1`, `clear --yes`, as in the issue; all must finish."""
    before = _guarded(world)
    rc, out_verify = _cli(world, "verify", "--repair", capsys=capsys)
    assert rc in (0, 1), out_verify
    rc, out = _cli(world, "verify", capsys=capsys)
    assert rc == 0, f"verify after --repair is not clean:\n{out}"
    rc, out_gc = _cli(world, "gc", "--max-size", "1", capsys=capsys)
    assert rc == 0, out_gc
    assert world.cache.ls() == [], "the size bound was not enforced"
    rc, out_clear = _cli(world, "clear", "--yes", capsys=capsys)
    assert rc == 0, out_clear
    assert _object_names(world.cache) == []
    assert _guarded(world) == before
    _assert_healed(world)
    return out_verify + out_gc + out_clear


def test_directory_at_a_metadata_name(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    meta = world.cache.layout.meta_path(world.fps[0])
    meta.unlink()
    meta.mkdir()
    (meta / "inside").write_text("x")
    out = _run_issue_sequence(world, capsys)
    assert any(str(meta) in line for line in _finding_lines(out)), out


def test_directory_with_a_temp_name(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    fp = world.fps[1]
    temp = world.cache.layout.shard(fp) / f"{TEMP_PREFIX}{fp}-1-abc.so"
    temp.mkdir()
    (temp / "inside").write_text("x")
    _run_issue_sequence(world, capsys)
    assert not os.path.lexists(temp)


def test_quarantine_is_a_regular_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    q = world.cache.layout.quarantine
    shutil.rmtree(q)
    q.write_text("not a directory")
    out = _run_issue_sequence(world, capsys)
    assert f"removed: {q}: is a regular file, not a directory" in out
    assert q.is_dir() and not q.is_symlink()


def test_lock_shard_is_a_regular_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """gc used to skip the entry forever (its lock could never be taken); clear failed."""
    lock_shard = world.cache.layout.lock_path(world.fps[0]).parent
    shutil.rmtree(lock_shard)
    lock_shard.write_text("x")
    rc, out = _cli(world, "gc", "--max-size", str(3 * SIZE), capsys=capsys)
    assert rc == 0, out
    assert f"quarantined: {lock_shard}: is a regular file, not a directory" in out
    assert world.fps[0] not in {e.fingerprint for e in world.cache.ls()}, "LRU entry not evicted"
    lock_shard = world.cache.layout.lock_path(world.fps[1]).parent
    shutil.rmtree(lock_shard)
    lock_shard.write_text("x")
    _run_issue_sequence(world, capsys)


# -- variants -----------------------------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    """A bound UNIX socket (by a relative name: the full path is too long for sun_path)."""
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(cwd)


def _replace(path: Path, make: Callable[[Path], None]) -> Path:
    if os.path.lexists(path):
        _tree._remove_any(path)
    make(path)
    return path


def _mkdir_with_file(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("x")


_O_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _write(path: Path, data: bytes, *, truncate_to: int | None = None) -> None:
    """Write a file the way damage does: never through a symlink, never blocking on a FIFO."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _O_SAFE, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(path)  # not a file: this damage does not apply
        os.ftruncate(fd, 0 if truncate_to is None else truncate_to)
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | _O_SAFE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(path)
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


def _garbage(path: Path) -> None:
    _write(path, b"\x00garbage")


def _old(path: Path) -> Path:
    os.utime(path, (OLD, OLD), follow_symlinks=False)  # never the target's times
    return path


Damage = Callable[[World], Path]
VARIANTS: dict[str, tuple[Damage, str]] = {}


def variant(expect: str) -> Callable[[Damage], Damage]:
    """Register a damage; `expect` is what gc must do about the damaged path:
    "line" (a finding line names it), "gone" (nothing left at it), "" (just finish)."""

    def register(fn: Damage) -> Damage:
        VARIANTS[fn.__name__] = (fn, expect)
        return fn

    return register


@variant("gone")
def orphan_metadata_directory(w: World) -> Path:
    w.cache.layout.object_path(w.fps[0]).unlink()
    return _replace(w.cache.layout.meta_path(w.fps[0]), _mkdir_with_file)


@variant("line")
def metadata_symlink_outside(w: World) -> Path:
    return _replace(w.cache.layout.meta_path(w.fps[0]), lambda p: p.symlink_to(w.outside / "file"))


@variant("line")
def metadata_fifo(w: World) -> Path:
    return _replace(w.cache.layout.meta_path(w.fps[2]), _fifo)


@variant("")
def metadata_huge_numbers(w: World) -> Path:
    meta = w.cache.layout.meta_path(w.fps[0])
    meta.write_text('{"created": 1' + "0" * 400 + ', "size": -1e999, "fingerprint": [[[]]]}')
    return meta


@variant("gone")
def temp_fifo(w: World) -> Path:
    fp = w.fps[1]
    return _replace(w.cache.layout.shard(fp) / f"{TEMP_PREFIX}{fp}-9-x.json", _fifo)


@variant("gone")
def temp_symlink_outside(w: World) -> Path:
    fp = w.fps[1]
    path = w.cache.layout.shard(fp) / f"{TEMP_PREFIX}{fp}-9-x.so"
    return _replace(path, lambda p: p.symlink_to(w.outside / "file"))


@variant("gone")
def old_unknown_temp_directory_in_v1(w: World) -> Path:
    path = w.cache.layout.base / f"{TEMP_PREFIX}someone-else"
    _mkdir_with_file(path)
    return _old(path)


@variant("line")
def old_temp_directory_in_the_shared_root(w: World) -> Path:
    path = w.root / f"{TEMP_PREFIX}another-layer"
    _mkdir_with_file(path)
    return _old(path)


@variant("line")
def quarantine_symlink_outside(w: World) -> Path:
    q = w.cache.layout.quarantine
    shutil.rmtree(q)
    q.symlink_to(w.outside / "dir")
    # A corrupt object, so repair wants to quarantine something: never into outside/.
    obj = w.cache.layout.object_path(w.fps[3])
    obj.chmod(0o644)
    obj.write_bytes(b"corrupt")
    return q


@variant("line")
def quarantine_fifo(w: World) -> Path:
    q = w.cache.layout.quarantine
    shutil.rmtree(q)
    os.mkfifo(q)
    return q


@variant("line")
def lock_name_is_a_directory(w: World) -> Path:
    return _replace(w.cache.layout.lock_path(w.fps[0]), _mkdir_with_file)


@variant("line")
def lock_name_is_a_symlink_outside(w: World) -> Path:
    return _replace(w.cache.layout.lock_path(w.fps[0]), lambda p: p.symlink_to(w.outside / "file"))


@variant("line")
def lock_shard_symlink_outside(w: World) -> Path:
    return _replace(
        w.cache.layout.lock_path(w.fps[0]).parent, lambda p: p.symlink_to(w.outside / "dir")
    )


@variant("line")
def gc_lock_is_a_directory(w: World) -> Path:
    return _replace(w.cache.layout.gc_lock, _mkdir_with_file)


@variant("line")
def locks_is_a_regular_file(w: World) -> Path:
    return _replace(w.cache.layout.locks, _garbage)


@variant("line")
def objects_is_a_regular_file(w: World) -> Path:
    return _replace(w.cache.layout.objects, _garbage)


@variant("line")
def objects_symlink_outside(w: World) -> Path:
    return _replace(w.cache.layout.objects, lambda p: p.symlink_to(w.outside / "fake"))


@variant("line")
def shard_is_a_regular_file(w: World) -> Path:
    return _replace(w.cache.layout.shard(w.fps[2]), _garbage)


@variant("line")
def shard_symlink_outside(w: World) -> Path:
    # outside/fake/<xx> holds a copy of fps[0]'s object: gc must not evict or delete it.
    fake_shard = w.outside / "fake" / w.fps[0][:2]
    return _replace(w.cache.layout.shard(w.fps[0]), lambda p: p.symlink_to(fake_shard))


@variant("line")
def object_is_a_directory(w: World) -> Path:
    return _replace(w.cache.layout.object_path(w.fps[3]), _mkdir_with_file)


@variant("line")
def object_is_a_fifo(w: World) -> Path:
    return _replace(w.cache.layout.object_path(w.fps[3]), _fifo)


@variant("line")
def object_is_a_socket(w: World) -> Path:
    return _replace(w.cache.layout.object_path(w.fps[3]), _socket)


@variant("line")
def object_symlink_to_identical_bytes_outside(w: World) -> Path:
    (w.outside / "same.so").write_bytes(w.blobs[w.fps[3]])
    target = w.outside / "same.so"
    return _replace(w.cache.layout.object_path(w.fps[3]), lambda p: p.symlink_to(target))


@variant("line")
def stats_is_a_directory(w: World) -> Path:
    return _replace(w.cache.layout.stats_file, _mkdir_with_file)


@variant("line")
def stats_symlink_outside(w: World) -> Path:
    return _replace(w.cache.layout.stats_file, lambda p: p.symlink_to(w.outside / "file"))


@variant("line")
def young_unknown_directory_in_v1(w: World) -> Path:
    path = w.cache.layout.base / "lost+found"
    _mkdir_with_file(path)
    return path


@variant("gone")
def old_unknown_file_in_v1(w: World) -> Path:
    path = w.cache.layout.base / "README.txt"
    path.write_text("another tool was here")
    return _old(path)


@variant("gone")
def old_editor_backup_in_a_shard(w: World) -> Path:
    path = w.cache.layout.object_path(w.fps[1]).with_name(
        w.cache.layout.object_path(w.fps[1]).name + "~"
    )
    path.write_bytes(b"backup")
    return _old(path)


@variant("gone")
def old_rsync_leftover_in_a_shard(w: World) -> Path:
    path = w.cache.layout.shard(w.fps[1]) / f".simpler_inner_{w.fps[1]}.so.Xy12Ab"
    path.write_bytes(b"partial")
    return _old(path)


@variant("gone")
def old_object_in_the_wrong_shard(w: World) -> Path:
    fp = w.fps[1]
    other = "00" if fp[:2] != "00" else "01"
    shard = w.cache.layout.objects / other
    shard.mkdir(exist_ok=True)
    path = shard / f"simpler_inner_{fp}.so"
    path.write_bytes(w.blobs[fp])
    return _old(path)


@variant("line")
def young_uppercase_name_in_a_shard(w: World) -> Path:
    fp = w.fps[1]
    path = w.cache.layout.shard(fp) / f"simpler_inner_{fp.upper()}.so"
    path.write_bytes(b"x")
    return path


@variant("line")
def unknown_directory_in_objects(w: World) -> Path:
    path = w.cache.layout.objects / "zz"
    _mkdir_with_file(path)
    return path


@variant("gone")
def old_unknown_fifo_in_a_lock_shard(w: World) -> Path:
    path = w.cache.layout.lock_path(w.fps[0]).parent / "stray"
    os.mkfifo(path)
    return _old(path)


@variant("gone")
def old_directory_in_quarantine(w: World) -> Path:
    path = w.cache.layout.quarantine / "someone-dropped-a-tree"
    _mkdir_with_file(path)
    (path / "link").symlink_to(w.outside / "file")
    return _old(path)


@variant("line")
def v1_is_a_regular_file(w: World) -> Path:
    return _replace(w.cache.layout.base, _garbage)


@variant("line")
def v1_symlink_outside(w: World) -> Path:
    return _replace(w.cache.layout.base, lambda p: p.symlink_to(w.outside / "fake"))


def _kind_at(path: Path) -> str:
    try:
        return stat.filemode(os.lstat(path).st_mode)[0]
    except FileNotFoundError:
        return "absent"


@pytest.mark.parametrize("first", ["gc", "verify", "clear"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_maintenance_finishes_on_a_damaged_tree(
    world: World, capsys: pytest.CaptureFixture[str], name: str, first: str
) -> None:
    """Whichever command meets the damage first finishes, says what it did, and leaves a
    store that the others can maintain and that works again after clear."""
    damage, expect = VARIANTS[name]
    path = damage(world)
    before = _guarded(world)
    bound = 2 * SIZE
    commands = {
        "gc": [("gc", "--max-size", str(bound)), ("verify", "--repair"), ("clear", "--yes")],
        "verify": [("verify", "--repair"), ("gc", "--max-size", str(bound)), ("clear", "--yes")],
        "clear": [("clear", "--yes"), ("verify", "--repair"), ("gc", "--max-size", str(bound))],
    }[first]
    for args in commands:
        rc, out = _cli(world, *args, capsys=capsys)
        assert rc in ((0, 1) if args[0] == "verify" else (0,)), f"{args}: {out}"
        if args[0] == "gc":
            assert sum(e.size for e in world.cache.ls()) <= bound, out
        if args[0] == "verify":
            rc, again = _cli(world, "verify", capsys=capsys)
            assert rc == 0, f"not clean after verify --repair:\n{again}"
        if args[0] == first == "gc" and expect == "line":
            assert any(str(path) in line for line in _finding_lines(out)), out
        if args[0] == first == "gc" and expect == "gone":
            assert not os.path.lexists(path), out
    assert _guarded(world) == before, "something outside the cache root changed"
    if name == "old_temp_directory_in_the_shared_root":
        assert path.is_dir(), "the shared root's directories are not the store's"
    rc, out = _cli(world, "clear", "--yes", capsys=capsys)
    assert rc == 0, out
    _assert_healed(world)


def test_gc_json_lists_what_it_skipped_removed_and_quarantined(world: World, cli) -> None:
    lock_shard = world.cache.layout.lock_path(world.fps[0]).parent
    shutil.rmtree(lock_shard)
    lock_shard.write_text("x")
    temp_dir = world.cache.layout.shard(world.fps[1]) / f"{TEMP_PREFIX}{world.fps[1]}-1-a.so"
    temp_dir.mkdir()
    gc_lock_dir = world.cache.layout.gc_lock
    gc_lock_dir.unlink(missing_ok=True)
    gc_lock_dir.mkdir()
    young = world.cache.layout.base / "notes"
    young.write_text("?")
    result = cli("gc", "--max-size", "1", "--json", cache_dir=world.root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [q["path"] for q in report["quarantined_unknown"]] == [str(lock_shard)]
    assert report["quarantined_unknown"][0]["moved_to"].startswith(
        str(world.cache.layout.quarantine)
    )
    assert [r["path"] for r in report["removed_unknown"]] == [str(gc_lock_dir)]
    assert [s["path"] for s in report["skipped"]] == [str(young)]
    assert "grace period" in report["skipped"][0]["reason"]
    assert str(temp_dir) in report["temp_removed"]
    assert report["bytes_after"] == 0 and len(report["evicted"]) == 4

    result = cli("clear", "--yes", "--json", cache_dir=world.root)
    report = json.loads(result.stdout)
    assert report["removed"] == 0
    assert [r["path"] for r in report["removed_unknown"]] == [str(young)]


def test_an_entry_whose_lock_is_held_is_skipped_and_reported(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stuck holder (a stopped process, a hung writer) costs one entry, not the run."""
    held = world.fps[0]
    with world.cache._lock(held):
        report = world.cache.gc(max_bytes=1)
        assert [e.fingerprint for e in world.cache.ls()] == [held]
        assert [f.path for f in report.skipped] == [world.cache.layout.object_path(held)]
        clear_report = maintenance.clear(world.cache)
        assert clear_report.removed == 0  # everything else was already evicted
        assert [f.path for f in clear_report.skipped] == [world.cache.layout.object_path(held)]
        assert "lock" in clear_report.skipped[0].reason
    assert world.cache.clear() == 1


def test_a_shard_that_cannot_be_listed_is_reported_and_the_rest_evicted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EACCES on a directory (root ignores modes, so the error is injected)."""
    bad_shard = str(world.cache.layout.shard(world.fps[3]))
    real = os.scandir

    def scandir(path: str | os.PathLike[str] | int = ".") -> object:
        if not isinstance(path, int) and os.fspath(path) == bad_shard:
            raise PermissionError(13, "Permission denied", bad_shard)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = world.cache.gc(max_bytes=1)
    assert f"{bad_shard}: cannot list: Permission denied" in [f.line()[9:] for f in report.skipped]
    assert len(report.evicted) == 3
    assert world.cache.verify(repair=True).clean
    assert world.cache.clear() == 0  # the unlisted shard's entry is invisible, not fatal


def test_gc_quarantines_a_wrong_type_object_even_when_nothing_is_evicted(world: World) -> None:
    obj = world.cache.layout.object_path(world.fps[2])
    _replace(obj, _mkdir_with_file)
    report = world.cache.gc()
    [moved] = report.quarantined_unknown
    assert moved.path == obj and moved.moved_to is not None and moved.moved_to.is_dir()
    assert not os.path.lexists(world.cache.layout.meta_path(world.fps[2]))
    assert world.cache.put(world.blobs[world.fps[2]]).added
    assert world.cache.verify().clean


def test_a_name_with_a_final_newline_is_not_the_entry_it_spells(world: World) -> None:
    """`simpler_inner_<fp>.so\\n` is a stranger, not entry <fp>: the name patterns end in
    `\\Z`, where `$` matched before the newline and gc quarantined the real object for the
    stranger's wrong type."""
    fp = world.fps[2]
    shard = world.cache.layout.shard(fp)
    strangers = [shard / f"simpler_inner_{fp}.so\n", shard / f"simpler_inner_{fp}.json\n"]
    for stranger in strangers:
        _mkdir_with_file(stranger)
        os.utime(stranger, (OLD, OLD))
    assert sorted(e.fingerprint for e in world.cache.ls()) == sorted(world.fps)
    report = world.cache.gc()
    assert report.quarantined_unknown == []
    path = world.cache.get(fp)
    assert path is not None and path.read_bytes() == world.blobs[fp]
    assert world.cache.verify().clean


# -- verify while another process evicts ----------------------------------------------------


def _evict_now(cache: ArtifactCache, fp: str) -> None:
    """What an evictor does to one entry: object first, then metadata."""
    cache.layout.object_path(fp).unlink()
    cache.layout.meta_path(fp).unlink()


@pytest.mark.parametrize("repair", [False, True])
def test_verify_reports_an_entry_evicted_during_its_check_as_gone(
    world: World, monkeypatch: pytest.MonkeyPatch, repair: bool
) -> None:
    """The object is hashed, then evicted before its metadata is read: not corrupt."""
    victim = world.fps[1]
    cache = world.cache
    real = cache._read_meta

    def read_meta(fp: str) -> object:
        if fp == victim and cache.layout.object_path(fp).exists():
            _evict_now(cache, fp)
        return real(fp)

    monkeypatch.setattr(cache, "_read_meta", read_meta)
    report = cache.verify(repair=repair)
    assert report.corrupt == [], [c.problem for c in report.corrupt]
    assert report.gone == [victim]
    assert sorted(report.ok) == sorted(set(world.fps) - {victim})
    assert not cache.layout.meta_path(victim).exists(), "repair wrote metadata for an evicted entry"


def test_verify_reports_an_entry_evicted_after_the_listing_as_gone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = world.fps[2]
    real = _verify._all_object_names

    def listing(cache: ArtifactCache) -> list[str]:
        names = real(cache)
        _evict_now(cache, victim)
        return names

    monkeypatch.setattr(_verify, "_all_object_names", listing)
    report = world.cache.verify(repair=True)
    assert report.clean and report.gone == [victim] and report.checked == 3


def _evictor(cache_dir: str, ready: object, cycles: int) -> None:
    from cache_helpers import blob as make_blob

    from simpler_build.cache import ArtifactCache as Cache

    cache = Cache(cache_dir)
    ready.set()  # type: ignore[attr-defined]
    for i in range(cycles):
        for k in range(3):
            cache.put(make_blob(100 + (3 * i + k) % 7, 20_000))
        cache.gc(max_bytes=20_000)


def test_verify_concurrent_with_a_real_evictor_never_reports_corruption(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_evictor, args=(str(cache.root), ready, 100))
    proc.start()
    try:
        assert ready.wait(60)
        rounds = gone = 0
        while proc.is_alive() or rounds == 0:
            report = cache.verify(repair=rounds % 2 == 1)
            assert report.corrupt == [], [c.problem for c in report.corrupt]
            rounds += 1
            gone += len(report.gone)
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert cache.verify().clean and rounds > 0


# -- random damaged trees (hypothesis) -------------------------------------------------------

_STRAY_PLACES = ("shard", "objects", "v1", "locks", "lock_shard", "quarantine", "root")
_STRAY_KINDS = ("file", "dir", "symlink", "fifo", "temp_file", "temp_dir")
_ENTRY_DAMAGE = (
    "obj_delete",
    "obj_dir",
    "obj_fifo",
    "obj_symlink",
    "obj_dangling_symlink",
    "obj_garbage",
    "obj_truncate",
    "meta_delete",
    "meta_dir",
    "meta_garbage",
    "meta_symlink",
    "meta_fifo",
    "meta_huge",
    "meta_wrong_size",
    "lock_dir",
    "lock_symlink",
    "lock_fifo",
    "lock_shard_file",
    "lock_shard_symlink",
    "temp_of_entry",
    "misplaced_copy",
    "shard_file",
    "shard_symlink",
)
_TREE_DAMAGE = (
    "objects_file",
    "objects_symlink",
    "locks_file",
    "quarantine_file",
    "quarantine_symlink",
    "gc_lock_dir",
    "gc_lock_symlink",
    "stats_dir",
    "stats_fifo",
    "stats_symlink",
    "v1_file",
)


def _entry_damage(world: World, what: str, fp: str) -> Path:
    lay = world.cache.layout
    obj, meta, lock = lay.object_path(fp), lay.meta_path(fp), lay.lock_path(fp)
    out = world.outside
    kind, _, how = what.partition("_")
    target = {"obj": obj, "meta": meta, "lock": lock}.get(kind)
    if what == "obj_delete" or what == "meta_delete":
        target.unlink()  # type: ignore[union-attr]
        return target  # type: ignore[return-value]
    if what in ("obj_garbage", "meta_garbage"):
        _write(target, os.urandom(64))  # type: ignore[arg-type]
        return target  # type: ignore[return-value]
    if what == "obj_truncate":
        _write(obj, b"", truncate_to=10)
        return obj
    if what == "meta_huge":
        _write(meta, ('{"created": 1' + "0" * 400 + ', "fingerprint": "' + fp + '"}').encode())
        return meta
    if what == "meta_wrong_size":
        data = json.loads(_read(meta))
        _write(meta, json.dumps({**data, "size": 1}).encode())
        return meta
    if what == "lock_shard_file":
        return _replace(lock.parent, _garbage)
    if what == "lock_shard_symlink":
        return _replace(lock.parent, lambda p: p.symlink_to(out / "dir"))
    if what == "shard_file":
        return _replace(obj.parent, _garbage)
    if what == "shard_symlink":
        return _replace(obj.parent, lambda p: p.symlink_to(out / "fake" / fp[:2]))
    if what == "temp_of_entry":
        path = obj.parent / f"{TEMP_PREFIX}{fp}-4242-zz.so"
        _write(path, b"half")
        return path
    if what == "misplaced_copy":
        other = lay.objects / ("00" if fp[:2] != "00" else "01")
        other.mkdir(exist_ok=True)
        path = other / obj.name
        _write(path, world.blobs[fp])
        return path
    makers: dict[str, Callable[[Path], None]] = {
        "dir": _mkdir_with_file,
        "fifo": _fifo,
        "symlink": lambda p: p.symlink_to(out / "file"),
        "dangling_symlink": lambda p: p.symlink_to(out / "nowhere"),
    }
    return _replace(target, makers[how])  # type: ignore[arg-type]


def _tree_damage(world: World, what: str) -> Path:
    lay = world.cache.layout
    out = world.outside
    name, _, how = what.partition("_")
    if name == "gc":
        name, how = "gc_lock", what.removeprefix("gc_lock_")
    target = {
        "objects": lay.objects,
        "locks": lay.locks,
        "quarantine": lay.quarantine,
        "gc_lock": lay.gc_lock,
        "stats": lay.stats_file,
        "v1": lay.base,
    }[name]
    makers: dict[str, Callable[[Path], None]] = {
        "file": _garbage,
        "dir": _mkdir_with_file,
        "fifo": _fifo,
        "symlink": lambda p: p.symlink_to(out / ("fake" if name == "objects" else "dir")),
    }
    return _replace(target, makers[how])


def _stray(world: World, place: str, kind: str, fp: str, serial: int) -> Path:
    lay = world.cache.layout
    where = {
        "shard": lay.shard(fp),
        "objects": lay.objects,
        "v1": lay.base,
        "locks": lay.locks,
        "lock_shard": lay.lock_path(fp).parent,
        "quarantine": lay.quarantine,
        "root": world.root,
    }[place]
    name = f"{TEMP_PREFIX}stray{serial}" if kind.startswith("temp") else f"stray{serial}"
    path = where / name
    makers: dict[str, Callable[[Path], None]] = {
        "file": _garbage,
        "temp_file": _garbage,
        "dir": _mkdir_with_file,
        "temp_dir": _mkdir_with_file,
        "symlink": lambda p: p.symlink_to(world.outside / "dir"),
        "fifo": _fifo,
    }
    makers[kind](path)
    return path


_damage = st.one_of(
    st.tuples(st.just("entry"), st.sampled_from(_ENTRY_DAMAGE), st.integers(0, 5)),
    st.tuples(st.just("tree"), st.sampled_from(_TREE_DAMAGE), st.just(0)),
    st.tuples(
        st.just("stray"),
        st.tuples(st.sampled_from(_STRAY_PLACES), st.sampled_from(_STRAY_KINDS)),
        st.integers(0, 5),
    ),
)
_plan = st.lists(st.tuples(_damage, st.booleans()), min_size=1, max_size=8)
_SIZES = [1000, 1500, 2200, 3000, 4100, 5600]


def _apply(world: World, plan: list) -> None:
    for serial, ((family, what, index), make_old) in enumerate(plan):
        fp = world.fps[index % len(world.fps)]
        # A later damage may find an earlier one in its way: that is just another tree.
        with contextlib.suppress(OSError, ValueError):
            if family == "entry":
                path = _entry_damage(world, what, fp)
            elif family == "tree":
                path = _tree_damage(world, what)
            else:
                path = _stray(world, what[0], what[1], fp, serial)
            if make_old:
                _old(path)


def _good_bytes(cache: ArtifactCache, blobs: dict[str, bytes]) -> int:
    total = 0
    for entry in cache.ls():
        with contextlib.suppress(OSError):
            if _read(cache.layout.object_path(entry.fingerprint)) == blobs.get(entry.fingerprint):
                total += entry.size
    return total


def test_random_damaged_trees_never_stop_maintenance(capsys: pytest.CaptureFixture[str]) -> None:
    """gc(max_bytes=N), then verify --repair, then clear never raise on a random damaged
    tree; gc enforces N, a second verify is clean, nothing outside the root changes, and
    after clear the store works again."""
    cases = 0

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(plan=_plan, bound_slots=st.integers(0, 6), grace=st.sampled_from([0.0, None]))
    def run(plan: list, bound_slots: int, grace: float | None) -> None:
        nonlocal cases
        cases += 1
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            cache = ArtifactCache(base / "cache")
            fps = _populate(cache, len(_SIZES), _SIZES)
            blobs = {fp: cache.layout.object_path(fp).read_bytes() for fp in fps}
            world = World(cache, fps, blobs, _outside_tree(base, blobs[fps[0]], fps[0]))
            _siblings(cache.root)
            _apply(world, plan)
            before = _guarded(world)  # after: a damage may itself write through a symlink

            bound = sum(_SIZES[:bound_slots]) + 7
            cache = ArtifactCache(world.root)
            report = cache.gc(max_bytes=bound, grace_seconds=grace)
            assert sum(e.size for e in cache.ls()) <= bound, report.to_json()
            assert _good_bytes(cache, blobs) <= bound
            assert report.bytes_after <= bound

            cache.verify(repair=True)
            again = cache.verify()
            assert again.clean, [c.to_json() for c in again.corrupt]

            cache.clear()
            assert cache.ls() == []
            assert _guarded(world) == before, "something outside the cache root changed"
            _assert_healed(world)
            final = cache.gc(grace_seconds=0)
            inside = [f for f in final.findings if cache.layout.base in f.path.parents]
            assert inside == [], "the store is not healed after clear"
            assert _guarded(world) == before

    run()
    with capsys.disabled():
        print(f"\n[maintenance property] {cases} generated damaged cache trees, 0 failures")
