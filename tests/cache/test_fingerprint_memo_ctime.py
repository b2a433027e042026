"""The fingerprint memo is not fooled by a rewrite that restores size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

from simpler_build.cache.fingerprint import clear_memo, fingerprint_file


def test_in_place_rewrite_with_the_old_mtime_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "inner.so"
    path.write_bytes(b"a" * 4096)
    before = os.stat(path)
    clear_memo()
    assert fingerprint_file(path) == xxhash.xxh3_64_hexdigest(b"a" * 4096)
    with path.open("r+b") as f:  # same inode, same size
        f.write(b"b")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime as before
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert fingerprint_file(path) == xxhash.xxh3_64_hexdigest(b"b" + b"a" * 4095)
