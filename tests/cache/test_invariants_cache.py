"""Cache promises no other test pins: durability order, entry locks, memo key, copy-time hash.

Each test here exists because a deliberate bug in the promise it names passed
the rest of the suite; `tests/mutants.py` keeps those bugs and checks that
these tests still catch them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash
from cache_helpers import blob, run_env, temp_files

from simpler_build.cache import (
    ArtifactCache,
    CacheWriteError,
    FingerprintMismatch,
    atomic,
    clear_memo,
    fingerprint_bytes,
    fingerprint_file,
    memo_stats,
    store,
)
from simpler_build.cache.layout import TEMP_PREFIX, parse_entry_name

Event = tuple[str, ...]


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def io_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Event]]:
    """Every write, fsync and rename the store makes, in order, with the paths involved."""
    events: list[Event] = []
    real_write, real_fsync, real_replace = atomic._write_chunk, os.fsync, os.replace

    def write(fd: int, chunk: memoryview) -> None:
        if not events or events[-1] != ("write", _fd_path(fd)):
            events.append(("write", _fd_path(fd)))
        real_write(fd, chunk)

    def fsync(fd: int) -> None:
        kind = "fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file"
        events.append((kind, _fd_path(fd)))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str], **kw: object) -> None:
        events.append(("rename", os.fspath(src), os.fspath(dst)))
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "_write_chunk", write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    yield events


def _expected_publication(events: list[Event], final: Path) -> list[Event]:
    """write temp, fsync temp, rename temp over `final`, fsync the directory -- nothing else."""
    renames = [e for e in events if e[0] == "rename" and e[2] == str(final)]
    assert len(renames) == 1, f"{final} was not published by exactly one rename: {events}"
    temp = Path(renames[0][1])
    assert temp.parent == final.parent, "the temp file must live beside the final name"
    assert temp.name.startswith(TEMP_PREFIX), f"{temp} is not a temp file: written in place"
    return [
        ("write", str(temp)),
        ("fsync-file", str(temp)),
        ("rename", str(temp), str(final)),
        ("fsync-dir", str(final.parent)),
    ]


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_put_writes_fsyncs_renames_then_fsyncs_the_directory(
    source: str, cache: ArtifactCache, tmp_path: Path, io_events: list[Event]
) -> None:
    """architecture.md: temp file, fsync, rename, then fsync of the directory -- in order."""
    data = blob(11, 300_000)
    src = tmp_path / "inner.so"
    src.write_bytes(data)
    fp = cache.put(data if source == "bytes" else src, arch="a5").fingerprint
    shard = cache.layout.shard(fp)
    in_shard = [e for e in io_events if any(str(shard) in (p, str(Path(p).parent)) for p in e[1:])]
    meta, obj = cache.layout.meta_path(fp), cache.layout.object_path(fp)
    # Metadata first, so a published object always has its metadata.
    assert in_shard == _expected_publication(in_shard, meta) + _expected_publication(in_shard, obj)


def _lock_is_held(path: Path) -> bool:
    """Whether some open file description holds flock on `path` (probed from a fresh one)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_every_entry_file_is_published_under_its_entry_lock(
    cache: ArtifactCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[tuple[str, bool]] = []
    real = atomic.publish

    def spy(final: Path, temp_name: str, fill: object, mode: int) -> None:
        parsed = parse_entry_name(final.name)
        if parsed is not None:
            published.append((final.name, _lock_is_held(cache.layout.lock_path(parsed[0]))))
        real(final, temp_name, fill, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "publish", spy)
    src = tmp_path / "inner.so"
    src.write_bytes(blob(12, 50_000))
    cache.put(src)  # object and metadata from a file
    cache.put(blob(13, 50_000))  # ... from bytes
    cache.put(src, arch="a5")  # a metadata fill of an existing entry
    assert len(published) == 5
    assert all(held for _name, held in published), published


# -- the fingerprint memo --------------------------------------------------------------


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Same inode: the memo key must notice through size or mtime alone."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate(len(data))


def test_memo_hits_an_unchanged_file_and_follows_a_same_size_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    old, new = blob(20, 4096), blob(21, 4096)
    path.write_bytes(old)
    before = os.stat(path)
    clear_memo()
    assert fingerprint_file(path) == fingerprint_file(path) == xxhash.xxh3_64_hexdigest(old)
    assert memo_stats() == {"hits": 1, "misses": 1}, "an unchanged file is hashed once"

    _rewrite_in_place(path, new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    after = os.stat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert fingerprint_file(path) == xxhash.xxh3_64_hexdigest(new)


def test_memo_follows_a_new_size_under_the_old_mtime(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    old, new = blob(22, 4096), blob(23, 5000)
    path.write_bytes(old)
    before = os.stat(path)
    assert fingerprint_file(path) == xxhash.xxh3_64_hexdigest(old)

    _rewrite_in_place(path, new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert fingerprint_file(path) == xxhash.xxh3_64_hexdigest(new)


# -- the copy-time hash check ----------------------------------------------------------


@pytest.mark.parametrize("new_size", [200_000, 150_000], ids=["same-size", "shorter"])
def test_put_refuses_a_source_that_changes_after_it_was_fingerprinted(
    new_size: int, cache: ArtifactCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "inner.so"
    first, second = blob(30, 200_000), blob(31, new_size)
    src.write_bytes(first)
    real = store.fingerprint_file

    def fingerprint_then_rebuild(path: str | os.PathLike[str]) -> str:
        digest = real(path)
        Path(path).write_bytes(second)  # another build rewrites the file right now
        return digest

    monkeypatch.setattr(store, "fingerprint_file", fingerprint_then_rebuild)
    with pytest.raises(FingerprintMismatch, match="changed while caching") as info:
        cache.put(src, arch="a5")
    assert info.value.path == src
    monkeypatch.undo()

    fp = fingerprint_bytes(first)
    assert not os.path.lexists(cache.layout.object_path(fp))
    assert not os.path.lexists(cache.layout.meta_path(fp)), "no orphan metadata"
    assert temp_files(cache.root) == []
    assert cache.ls() == [] and cache.stats().added == 0
    entry = cache.put(src)  # the file as it is now caches normally
    assert entry.added and entry.fingerprint == fingerprint_bytes(second)


# -- maintenance racing a writer ---------------------------------------------------------

HALF_WRITTEN_PUT = r"""
import sys
from pathlib import Path
from simpler_build.cache import atomic
from simpler_build.cache.store import ArtifactCache

real = atomic._write_chunk
paused = False

def pause_after_first_object_chunk(fd, chunk):
    global paused
    real(fd, chunk)
    if not paused and len(chunk) == atomic.CHUNK:  # the object; its metadata is tiny
        paused = True
        print("paused", flush=True)
        sys.stdin.readline()

atomic._write_chunk = pause_after_first_object_chunk
entry = ArtifactCache(sys.argv[1]).put(Path(sys.argv[2]), arch="a5")
print("added" if entry.added else "present", flush=True)
"""


def test_gc_leaves_a_live_writer_alone_then_the_writer_finishes(tmp_path: Path) -> None:
    """A writer holds the entry lock with its metadata published and the object half
    written: gc keeps the metadata, the temp file and the lock file."""
    cache = ArtifactCache(tmp_path / "cache")
    src = tmp_path / "big.so"
    data = blob(40, 3 * atomic.CHUNK)
    src.write_bytes(data)
    fp = fingerprint_bytes(data)
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITTEN_PUT, str(cache.root), str(src)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=run_env(),
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "paused\n"  # handshake: the writer is mid-object
        meta, lock = cache.layout.meta_path(fp), cache.layout.lock_path(fp)
        partial = temp_files(cache.root)
        assert meta.exists() and len(partial) == 1 and _lock_is_held(lock)
        assert not cache.layout.object_path(fp).exists()

        report = cache.gc()
        assert report.orphan_meta_removed == [] and report.temp_removed == []
        assert meta.exists() and temp_files(cache.root) == partial
        assert lock.exists() and _lock_is_held(lock), "gc unlinked a held lock file"

        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "added\n"
        assert writer.wait(timeout=120) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert cache.get(fp) == cache.layout.object_path(fp)
    assert cache.verify().clean and temp_files(cache.root) == []


HEALER = r"""
import sys
from pathlib import Path
from simpler_build.cache.store import ArtifactCache

cache = ArtifactCache(sys.argv[1])
cache.verify(repair=True)  # quarantines the corrupt copy ...
entry = cache.put(Path(sys.argv[2]).read_bytes())  # ... and publishes a good one (new inode)
print("healed" if entry.added else "not healed", flush=True)
"""


def _flip_byte(path: Path) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_quarantine_leaves_an_object_replaced_after_it_was_examined(
    cache: ArtifactCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get hashes a corrupt copy; before it quarantines, another process repairs the entry.
    The good replacement must stay where it is."""
    data = blob(50, 100_000)
    good = tmp_path / "good.so"
    good.write_bytes(data)
    fp = cache.put(data).fingerprint
    obj = cache.layout.object_path(fp)
    _flip_byte(obj)
    real = atomic.hash_fd

    def hash_then_let_another_process_heal(fd: int) -> str:
        digest = real(fd)
        proc = subprocess.run(
            [sys.executable, "-c", HEALER, str(cache.root), str(good)],
            capture_output=True,
            text=True,
            env=run_env(),
            timeout=120,
        )
        assert proc.stdout == "healed\n", proc.stderr
        return digest

    monkeypatch.setattr(atomic, "hash_fd", hash_then_let_another_process_heal)
    assert cache.get(fp) is None, "the copy this get read was corrupt"
    monkeypatch.undo()
    assert obj.read_bytes() == data, "the repaired object was moved away"
    assert len(list(cache.layout.quarantine.glob("*.so"))) == 1  # only the healer's
    assert cache.get(fp) == obj


def test_a_failed_fsync_fails_the_put_and_leaves_nothing(
    cache: ArtifactCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsync result matters: EIO there means the bytes may not be on disk."""
    kept = cache.put(blob(60, 1000)).fingerprint

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", eio)
    with pytest.raises(CacheWriteError, match="Input/output error"):
        cache.put(blob(61, 1000))
    monkeypatch.undo()
    assert temp_files(cache.root) == []
    assert [e.fingerprint for e in cache.ls()] == [kept]
