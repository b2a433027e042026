"""The cheap paths keep their promises: batched counters stay exact across real
processes, lock waits block in flock and never keep an abandoned lock, and the
persistent stat index never answers with a stale fingerprint.

Speed is measured by bench/cache_bench.py, never asserted here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xxhash
from cache_helpers import elf_header, run_env

from simpler_build.cache import ArtifactCache, _flock
from simpler_build.cache.counters import flush_all
from simpler_build.cache.fingerprint import clear_memo, fingerprint_file, use_index
from simpler_build.cache.index import INDEX_NAME, RACY_NS, StatIndex

PROCS = 8
GETS = 25

_GETS_CHILD = r"""
import sys
from simpler_build.cache.store import ArtifactCache
cache = ArtifactCache(sys.argv[1])
for _ in range(int(sys.argv[3])):
    assert cache.get(sys.argv[2]) is not None
    assert cache.get("0" * 16) is None
"""


def _filled(tmp_path: Path) -> tuple[ArtifactCache, str]:
    cache = ArtifactCache(tmp_path / "c")
    return cache, cache.put(elf_header() + b"counted" * 100).fingerprint


# -- counters ---------------------------------------------------------------------------


def test_counters_are_exact_across_processes_that_exit_normally(tmp_path: Path) -> None:
    cache, fp = _filled(tmp_path)
    procs = [
        subprocess.Popen([sys.executable, "-c", _GETS_CHILD, str(cache.root), fp, str(GETS)])
        for _ in range(PROCS)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * PROCS
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (PROCS * GETS, PROCS * GETS)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_multiprocessing_children_flush_and_a_fork_does_not_double_count(
    tmp_path: Path, method: str
) -> None:
    cache, fp = _filled(tmp_path)
    assert cache.get(fp) is not None  # unwritten in this process when the children fork
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=cache.get, args=(fp,)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * PROCS
    assert cache.stats().hits == PROCS + 1


def test_stats_in_the_same_process_sees_its_own_gets(tmp_path: Path) -> None:
    cache, fp = _filled(tmp_path)
    for _ in range(3):
        cache.get(fp)
    cache.get("f" * 16)
    other = ArtifactCache(cache.root)  # another instance on the same root, same process
    assert (other.stats().hits, other.stats().misses) == (3, 1)
    assert cache.stats().added == 1


def test_a_miss_on_a_missing_root_is_written_at_flush(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "new")
    assert cache.get("1" * 16) is None
    assert not cache.root.exists()  # nothing written on the read path itself
    flush_all()
    assert cache.stats().misses == 1


# -- locks ------------------------------------------------------------------------------

_HOLDER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""

_TAKER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("taken", flush=True)
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 0


def test_a_waiter_gets_the_lock_when_a_c_style_holder_releases(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "ab" / "entry.lock"
    path.parent.mkdir(parents=True)
    holder = _hold(path)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(_flock.acquire(path, 120)))
    waiter.start()
    with pytest.raises(_flock.LockTimeout):
        _flock.acquire(path, 0)  # busy: a try-lock does not wait
    _let_go(holder)
    waiter.join(timeout=120)
    assert len(got) == 1
    _flock.release(got[0])


def test_an_abandoned_wait_never_keeps_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "entry.lock"
    holder = _hold(path)
    with pytest.raises(_flock.LockTimeout):
        _flock.acquire(path, 0.05)  # gives up; its helper is still blocked in flock
    _let_go(holder)
    # The helper wins the flock after the holder lets go and must drop it at once.
    taker = subprocess.run(
        [sys.executable, "-c", _TAKER, str(path)], capture_output=True, text=True, timeout=60
    )
    assert taker.stdout == "taken\n"


def test_store_lock_timeout_is_a_cache_lock_error(tmp_path: Path) -> None:
    from simpler_build.cache.errors import CacheLockError

    cache, fp = _filled(tmp_path)
    holder = _hold(cache.layout.lock_path(fp))
    try:
        with pytest.raises(CacheLockError, match="still held"), cache._lock(fp, timeout=0.05):
            pass
        with cache._try_lock(cache.layout.lock_path(fp)) as free:
            assert not free
    finally:
        _let_go(holder)
    with cache._try_lock(cache.layout.lock_path(fp)) as free:
        assert free


def _waiting_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path` (or its unlinked inode)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target in (str(path), f"{path} (deleted)")
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_waiter_that_wins_an_unlinked_lock_file_takes_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "entry.lock"
    held = _flock.acquire(path, 0)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(_flock.acquire(path, 120)))
    waiter.start()
    for _ in range(2000):  # until the waiter has opened the current inode
        if _waiting_on(path) >= 2:
            break
        time.sleep(0.005)
    os.unlink(path)  # what gc does while holding the lock
    _flock.release(held)
    waiter.join(timeout=120)
    assert len(got) == 1
    fd = got[0]
    assert os.fstat(fd).st_nlink == 1
    assert os.path.samestat(os.fstat(fd), os.lstat(path))
    _flock.release(fd)


# -- the stat index ---------------------------------------------------------------------


def _index(root: Path, now: int) -> StatIndex:
    return StatIndex(root, clock=lambda: now)


def _fp_with(index: StatIndex | None, path: Path) -> str:
    clear_memo()
    previous = use_index(index)
    try:
        return fingerprint_file(path)
    finally:
        use_index(previous)
        if index is not None:
            index.flush()


def test_racy_entries_are_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    path.write_bytes(b"fresh" * 1000)
    st = os.stat(path)
    just_after = max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS - 1
    racy = _index(tmp_path, just_after)
    assert _fp_with(racy, path) == xxhash.xxh3_64_hexdigest(b"fresh" * 1000)
    assert racy.stats["recorded"] == 0 and not (tmp_path / INDEX_NAME).exists()
    settled = _index(tmp_path, just_after + 1)
    _fp_with(settled, path)
    assert settled.stats["recorded"] == 1
    later = _index(tmp_path, just_after + 1)
    assert later.lookup(os.stat(path)) == xxhash.xxh3_64_hexdigest(b"fresh" * 1000)


_INDEX_CHILD = r"""
import sys
from simpler_build.cache import fingerprint
from simpler_build.cache.index import StatIndex
index = StatIndex(sys.argv[1])
fingerprint.use_index(index)
print(fingerprint.fingerprint_file(sys.argv[2]), index.stats["hits"], fingerprint.memo_stats())
"""


def test_a_new_process_trusts_the_index_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    path.write_bytes(b"x" * 5000)
    st = os.stat(path)
    _fp_with(_index(tmp_path, st.st_ctime_ns + 10 * RACY_NS), path)
    out = subprocess.run(
        [sys.executable, "-c", _INDEX_CHILD, str(tmp_path), str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=run_env(),
    ).stdout.split(" ", 2)
    assert out[:2] == [xxhash.xxh3_64_hexdigest(b"x" * 5000), "1"]
    assert "'misses': 0" in out[2]  # answered by the index: the file was not read


def test_in_place_rewrite_with_the_old_mtime_is_never_answered_from_the_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inner.so"
    path.write_bytes(b"a" * 4096)
    before = os.stat(path)
    far = before.st_ctime_ns + 1000 * RACY_NS  # trust everything: only the key protects
    _fp_with(_index(tmp_path, far), path)
    for _ in range(1000):  # rewrite (same inode and size) until the ctime clock has moved
        with path.open("r+b") as f:
            f.write(b"b")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if os.stat(path).st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    fresh = _index(tmp_path, far)
    assert _fp_with(fresh, path) == xxhash.xxh3_64_hexdigest(b"b" + b"a" * 4095)
    assert fresh.stats["hits"] == 0


def test_torn_or_forged_lines_cost_a_rehash_never_a_wrong_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    path.write_bytes(b"real" * 1000)
    st = os.stat(path)
    key = f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"
    wrong = "0123456789abcdef"
    good_check_other_payload = xxhash.xxh3_64_hexdigest(f"{key} {'f' * 16}".encode())
    (tmp_path / INDEX_NAME).write_text(
        f"{key} {wrong} {good_check_other_payload}\n"  # check of a different line
        f"{key} {wrong} 0000000000000000\n"  # bad check
        f"{key} {wrong} {xxhash.xxh3_64_hexdigest(f'{key} {wrong}'.encode())[:9]}"  # torn
    )
    index = _index(tmp_path, st.st_ctime_ns + 10 * RACY_NS)
    assert _fp_with(index, path) == xxhash.xxh3_64_hexdigest(b"real" * 1000)
    assert index.stats["hits"] == 0


def test_warm_records_in_the_index_and_the_cache_tree_stays_clean(tmp_path: Path) -> None:
    from cache_helpers import make_build

    from simpler_build.cache.warm import plan

    build = tmp_path / "build"
    make_build(build, size=2000)
    cache = ArtifactCache(tmp_path / "c")
    cache.put(elf_header())  # the root exists, so the index may be written
    index_path = cache.root / INDEX_NAME
    tasks = plan([build], cache)
    assert len(tasks) == 12
    # Whatever was old enough to record names the fingerprint the manifest checked.
    known = {os.stat(t.source).st_ino: t.fingerprint for t in tasks}
    lines = index_path.read_text().splitlines() if index_path.exists() else []
    assert all(known[int(line.split()[1])] == line.split()[5] for line in lines)
    assert cache.gc().findings == []  # the index is the root's, not a stray name in v1/
