"""A writer SIGKILLed in the middle of a large object leaves nothing partial behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cache_helpers import PAUSED_WRITER, run_env, temp_files

from simpler_build.cache import ArtifactCache, fingerprint_bytes

BIG = 64 << 20


def test_sigkill_mid_write_then_gc_then_put(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache = ArtifactCache(cache_dir)
    survivor = cache.put(b"an entry that must survive" * 100, arch="a5")

    src = tmp_path / "big.so"
    data = os.urandom(1 << 20) * (BIG >> 20)
    src.write_bytes(data)
    fp = fingerprint_bytes(data)
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, str(cache_dir), str(src), str(ready_w)],
        env=run_env(),
        stdin=subprocess.PIPE,
        pass_fds=(ready_w,),
    )
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"!", "the writer died before reaching mid-write"
        # Mid-write: the final name does not exist, readers miss, a temp file exists.
        assert not cache.layout.object_path(fp).exists()
        assert cache.get(fp) is None
        assert not cache.contains(fp)
        assert temp_files(cache_dir)
    finally:
        os.close(ready_r)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    obj = cache.layout.object_path(fp)
    assert not obj.exists(), "a killed writer must not leave an object at the final name"
    leftovers = temp_files(cache_dir)
    assert leftovers and all(p.stat().st_size < BIG for p in leftovers)

    report = cache.gc()
    assert sorted(report.temp_removed) == sorted(leftovers)
    assert temp_files(cache_dir) == []
    # The metadata written before the object is an orphan and goes too.
    assert report.orphan_meta_removed == [cache.layout.meta_path(fp)]
    assert not cache.layout.lock_path(fp).exists()

    entry = cache.put(src, arch="a5", runtime="slow")
    assert entry.added
    assert cache.get(fp) == obj
    assert obj.stat().st_size == BIG
    assert cache.get(survivor.fingerprint) is not None
    assert cache.verify().clean


def test_gc_keeps_temp_files_of_a_live_writer(cache: ArtifactCache) -> None:
    """A temp file whose entry lock is held belongs to a live writer: gc leaves it."""
    fp = cache.put(b"x").fingerprint
    shard = cache.layout.shard(fp)
    live = shard / cache.layout.temp_name(fp, ".so")
    live.write_bytes(b"partial")
    with cache._lock(fp):
        # gc probes the lock from its own descriptor: held -> keep the file.
        assert cache.gc().temp_removed == []
    assert live.exists()
    assert cache.gc().temp_removed == [live]


def test_gc_removes_unrecognised_temp_files_only_after_grace(cache: ArtifactCache) -> None:
    fp = cache.put(b"y").fingerprint
    odd = cache.layout.shard(fp) / ".tmp-something-else"
    odd.write_bytes(b"?")
    assert cache.gc().temp_removed == []
    old = odd.stat().st_mtime - 7200
    os.utime(odd, (old, old))
    assert cache.gc().temp_removed == [odd]


_HOLD_TEMP = """
import sys, time
from simpler_build.cache.atomic import open_locked_temp
fd = open_locked_temp(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def _writer_of(path: Path) -> subprocess.Popen[str]:
    """A real process that created `path` as a root temp file and holds its lock."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_TEMP, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    old = time.time() - 5  # past the one second that covers create-then-lock
    os.utime(path, (old, old))
    return proc


def test_gc_sweeps_a_killed_writers_root_temp_file_at_once_and_keeps_a_live_ones(
    tmp_path: Path,
) -> None:
    cache = ArtifactCache(tmp_path / "c")
    cache.put(b"an entry")  # creates the tree
    dead, live = tmp_path / "c" / ".tmp-tag-1-aaaa.tag", tmp_path / "c" / ".tmp-tag-2-bbbb.tag"
    killed, running = _writer_of(dead), _writer_of(live)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        report = cache.gc()  # the default grace: an hour
        assert dead in report.temp_removed and not dead.exists()
        assert live.exists() and live not in report.temp_removed
    finally:
        running.kill()
        running.wait(timeout=30)
    assert cache.gc().temp_removed == [live]
