"""XXH3-64 content fingerprints (docs/architecture.md: one definition, two languages).

The fingerprint of a file is XXH3-64 (seed 0) of its whole bytes as 16
lowercase hex digits -- the same value the C dispatcher computes with the
system xxHash library.  `fingerprint_file` memoises per process on
(path, device, inode, size, mtime_ns) so an unchanged file is read and hashed
once; a changed file has a different key and is hashed again.  The key also
holds ctime_ns, which no user call can set: a file rewritten in place and
given its old mtime back (`touch -d`, `os.utime`) still gets a new ctime, so
the memo is never fooled into returning the old fingerprint.

On a memo miss, an optional process-shared stat index (cache/index.py, set
with `use_index` by `warm`) may answer from the same stat key; a file that is
read is recorded there under git's racy rule.
"""

from __future__ import annotations

import os
from _thread import _local, allocate_lock  # `threading` costs a warm answered by the index 0.5 ms

import xxhash

from simpler_build.files import open_regular, open_regular_stat, reused_buffer

TYPE_CHECKING = False  # on the read path: no typing import
if TYPE_CHECKING:
    from simpler_build.cache.index import StatIndex

FINGERPRINT_HEX_DIGITS = 16
_CHUNK = 1 << 20
#: Below this, a read into a reused buffer beats a mapping (whose set-up and
#: teardown cost more than the copy): about 2x for a 365 KB inner SO.
_MMAP_MIN = 2 << 20
#: MAP_POPULATE (Linux) faults the whole file in with the mmap call itself, instead
#: of one page fault per 64 KiB while hashing: about 15 % faster for 4 MiB files.
#: (mmap is imported on the first large file: a warm answered by the stat index never
#: hashes, and loading the extension module costs a fraction of a millisecond.)

_MemoKey = tuple[str, int, int, int, int, int]
_memo: dict[_MemoKey, str] = {}
_memo_lock = allocate_lock()
_memo_stats = {"hits": 0, "misses": 0}
#: The persistent stat index consulted on a memo miss (None: hash every miss).
_index: StatIndex | None = None


def fingerprint_bytes(data: bytes | bytearray | memoryview) -> str:
    """XXH3-64 (seed 0) of `data`, as 16 lowercase hex digits."""
    return xxhash.xxh3_64_hexdigest(data)


def is_fingerprint(text: str) -> bool:
    """True when `text` has the shape of a fingerprint (16 lowercase hex digits).

    `str.strip` runs in C; a generator over the characters cost more than the
    rest of a manifest's checks when `cache warm` reads a thousand of them.
    """
    return len(text) == FINGERPRINT_HEX_DIGITS and not text.strip("0123456789abcdef")


_buffers: _local | None = None  # each thread's read buffer, made on first hash


def _hash_open_file(fd: int, size: int) -> str:
    """XXH3-64 of a regular file's descriptor at read speed.

    A large file is mapped and hashed in one call (no copy at all); a smaller
    one is read into a buffer reused by the thread.  Reading chunks into new
    bytes objects ran at about a quarter of raw read speed for 4 MiB files.
    """
    if size >= _MMAP_MIN:
        try:
            import mmap

            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            with mmap.mmap(fd, 0, flags=flags, prot=mmap.PROT_READ) as view:
                if len(view) == size:
                    return xxhash.xxh3_64_hexdigest(view)
        except (OSError, ValueError):  # a filesystem without mmap: read instead
            pass
        os.lseek(fd, 0, os.SEEK_SET)
    global _buffers
    if _buffers is None:
        _buffers = _local()  # threading.local, without loading threading
    buf = reused_buffer(_buffers, size + 1, _MMAP_MIN)
    window = memoryview(buf)
    hasher = xxhash.xxh3_64()
    while n := os.readv(fd, [buf]):  # until EOF: a file that grew is hashed whole
        hasher.update(window[:n])
    return hasher.hexdigest()


def fingerprint_file(path: str | os.PathLike[str]) -> str:
    """Fingerprint of the file at `path`, memoised while the file is unchanged.

    The key is taken from `fstat` of the descriptor actually read, so a file
    replaced between stat and read cannot leave a stale memo entry behind.
    """
    return fingerprint_stat(path)[0]


def fingerprint_stat(path: str | os.PathLike[str]) -> tuple[str, os.stat_result]:
    """`fingerprint_file`, and the stat of the file that fingerprint belongs to (warm
    keys its ELF check in the stat index by it)."""
    abspath = os.path.abspath(os.fspath(path))
    st = os.stat(abspath)
    key: _MemoKey = (abspath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _memo_lock:
        cached = _memo.get(key)
        if cached is not None:
            _memo_stats["hits"] += 1
            return cached, st
    index = _index
    if index is not None and (indexed := index.lookup(st)) is not None:
        with _memo_lock:
            _memo[key] = indexed
        return indexed, st
    fd, fst = open_regular_stat(abspath)  # a FIFO or device: NotRegularFile, never a hang
    try:
        digest = _hash_open_file(fd, fst.st_size)
        if index is not None:
            index.record(fst, os.fstat(fd), digest)
    finally:
        os.close(fd)
    read_key: _MemoKey = (
        abspath,
        fst.st_dev,
        fst.st_ino,
        fst.st_size,
        fst.st_mtime_ns,
        fst.st_ctime_ns,
    )
    with _memo_lock:
        _memo[read_key] = digest
        _memo_stats["misses"] += 1
    return digest, fst


def use_index(index: StatIndex | None) -> StatIndex | None:
    """Consult `index` (a cache.index.StatIndex, or None) on memo misses; returns the
    previous one so a caller can restore it."""
    global _index
    previous, _index = _index, index
    return previous


def digests_file(path: str | os.PathLike[str]) -> tuple[str, str, int]:
    """(XXH3-64 hex, SHA-256 hex, size) of one file, read once.

    The manifest writer records both: XXH3 names the object, SHA-256 is what a
    byte pulled from an untrusted remote must also match.
    """
    import hashlib

    xxh = xxhash.xxh3_64()
    sha = hashlib.sha256()
    size = 0
    with os.fdopen(open_regular(path), "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            xxh.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return xxh.hexdigest(), sha.hexdigest(), size


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of `data` (the remote tier's second check)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def memo_stats() -> dict[str, int]:
    """Hits and misses of the per-process memo (for tests and benchmarks)."""
    with _memo_lock:
        return dict(_memo_stats)


def clear_memo() -> None:
    """Forget every memoised fingerprint (tests and benchmarks only)."""
    with _memo_lock:
        _memo.clear()
        _memo_stats.update(hits=0, misses=0)


def inner_so_name(fingerprint: str) -> str:
    """File name of a preinstalled / cached inner SO: `simpler_inner_<fp>.so`."""
    return f"simpler_inner_{fingerprint}.so"


__all__ = [
    "FINGERPRINT_HEX_DIGITS",
    "clear_memo",
    "digests_file",
    "fingerprint_bytes",
    "fingerprint_file",
    "fingerprint_stat",
    "inner_so_name",
    "is_fingerprint",
    "memo_stats",
    "sha256_bytes",
    "use_index",
]
