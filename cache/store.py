"""ArtifactCache: the process-shared, content-addressed store of inner SOs.

Objects are immutable and named by their XXH3-64 fingerprint; every mutation
of an entry happens under that entry's flock (_flock.py), every file is
published by temp file + fsync + rename (atomic.py), and every read hashes the
bytes before handing out a path, so no process ever sees a partial or corrupt
object however many processes share the root.  The on-disk format is in
FORMAT.md; verify/gc/eviction live in maintenance.py (and its private modules).
"""

from __future__ import annotations

import json
import os
import stat
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import xxhash

from simpler_build.cache import atomic
from simpler_build.cache._entry import (
    CacheEntry,
    CacheStats,
    decode_meta,
    encode_meta,
    entry_from_meta,
)
from simpler_build.cache.counters import Counters
from simpler_build.cache.errors import (
    CacheError,
    CacheLockError,
    CacheRootError,
    FingerprintMismatch,
    InvalidFingerprint,
    SourceError,
    UnsafePathError,
    classify_os_error,
)
from simpler_build.cache.fingerprint import fingerprint_bytes, fingerprint_file, is_fingerprint
from simpler_build.cache.layout import CACHEDIR_TAG, Layout, parse_entry_name
from simpler_build.files import NotRegularFile, open_regular

TYPE_CHECKING = False  # typing costs 2 ms at start-up; annotations are strings here
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from simpler_build.cache.index import StatIndex
    from simpler_build.cache.maintenance import GcReport, VerifyReport

OBJECT_MODE = 0o444
META_MODE = 0o644
#: How long put/get wait for another process holding an entry lock.
LOCK_TIMEOUT = 300.0


def _field_bits(values: dict[str, Any]) -> int:
    """The bits of the metadata fields that `values` gives (the stat index's encoding)."""
    from simpler_build.cache.index import field_bits

    return field_bits(values)


def _check_fp(fingerprint: str) -> str:
    if not isinstance(fingerprint, str) or not is_fingerprint(fingerprint):
        raise InvalidFingerprint(str(fingerprint), "not a fingerprint (16 lowercase hex digits)")
    return fingerprint


def _check_bound(name: str, value: int | None) -> int | None:
    """A size bound as the API takes it: None (no bound) or an int of 0 or more bytes.

    A caller's mistake, so a builtin error, not a CacheError: a negative bound
    would evict every entry on each put, and a bool would be a one-byte bound.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be None or an int number of bytes, not {value!r}")
    if value is not None and value < 0:
        raise ValueError(f"{name} must be 0 or more bytes, not {value}")
    return value


class ArtifactCache:
    """Content-addressed cache of inner SOs under `root` (default: SIMPLER_CACHE_DIR
    or the platform user cache dir).  With `max_bytes`, each put that adds an
    object evicts least-recently-used entries down to the bound."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_bytes: int | None = None):
        from simpler_build.cache.paths import resolve_root

        self.root = resolve_root(root)
        self.max_bytes = _check_bound("max_bytes", max_bytes)
        self.layout = Layout(self.root)
        self._counters = Counters(self.layout.stats_file, self._ensure_root)
        self._ready = False
        self._index: StatIndex | None = None

    def __repr__(self) -> str:
        return f"ArtifactCache({str(self.root)!r}, max_bytes={self.max_bytes!r})"

    # -- root and locks ---------------------------------------------------------------

    def _ensure_root(self) -> None:
        """Create root, CACHEDIR.TAG and the v1 tree on first mutation (not on reads)."""
        if self._ready:
            return
        root = self.root
        if root.exists() and not root.is_dir():
            raise CacheRootError(root, "not a directory")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise CacheRootError(root, "not a directory (or a parent is a file)") from None
        except OSError as exc:
            raise classify_os_error(root, exc, "create cache root", self.root) from None
        lay = self.layout
        try:
            if not lay.tag.exists():
                atomic.publish_bytes(
                    lay.tag, lay.temp_name("tag", ".tag"), CACHEDIR_TAG.encode(), META_MODE
                )
            for d in (lay.base, lay.objects, lay.locks, lay.quarantine):
                if d.exists() and not d.is_dir():
                    raise CacheRootError(d, "part of the cache tree but not a directory")
                d.mkdir(exist_ok=True)
        except CacheError:
            raise
        except OSError as exc:
            raise classify_os_error(root, exc, "create cache tree", self.root) from None
        self._ready = True

    @contextmanager
    def _lock(self, fingerprint: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the entry's flock (blocking)."""
        with self._lock_path(self.layout.lock_path(fingerprint), timeout):
            yield

    @contextmanager
    def _lock_named(self, name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold a store-wide lock such as gc.lock (serialises gc, eviction, clear)."""
        with self._lock_path(self.layout.locks / name, timeout):
            yield

    @contextmanager
    def _lock_path(self, path: Path, timeout: float) -> Iterator[None]:
        """Hold flock on `path`, blocked in the kernel while another process holds it
        (_flock.py; imported here so the warm fast path never pays for it)."""
        from simpler_build.cache import _flock

        try:
            fd = _flock.acquire(path, timeout)
        except _flock.LockTimeout:
            raise CacheLockError(
                path, f"lock still held by another process after {timeout:g} s"
            ) from None
        except OSError as exc:
            raise classify_os_error(path, exc, "take lock", self.root) from None
        try:
            yield
        finally:
            _flock.release(fd)

    @contextmanager
    def _try_lock(self, path: Path) -> Iterator[bool]:
        """Non-blocking flock on `path`; yields whether it was taken (gc probes writers)."""
        from simpler_build.cache import _flock

        try:
            fd = _flock.acquire(path, 0)
        except (_flock.LockTimeout, OSError):
            yield False
            return
        try:
            yield True
        finally:
            _flock.release(fd)

    def _bump(self, **deltas: int) -> None:
        """Count in this process's tally (counters.py writes it at exit, after
        FLUSH_INTERVAL, or before a read): statistics never fail or slow a read."""
        self._counters.bump(**deltas)

    # -- entries and metadata ---------------------------------------------------------

    def _read_meta(self, fingerprint: str) -> tuple[dict[str, Any], os.stat_result] | None:
        """Parsed metadata and its stat, or None when missing or unreadable."""
        path = self.layout.meta_str(fingerprint)
        try:
            fd, st = atomic.open_nofollow_stat(path)
        except (OSError, UnsafePathError):
            return None
        try:
            raw = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        meta = decode_meta(raw)
        return (meta, st) if meta is not None else None

    def _entry(
        self,
        fingerprint: str,
        size: int,
        meta_st: tuple[dict[str, Any], os.stat_result] | None,
    ) -> CacheEntry:
        meta, st = meta_st if meta_st else ({}, None)
        return entry_from_meta(fingerprint, self.layout.object_path(fingerprint), size, meta, st)

    def _lstat_object(self, fingerprint: str) -> os.stat_result | None:
        """lstat of the published object; refuses a symlink or non-regular file."""
        path = self.layout.object_str(fingerprint)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            if self.root.exists() and not self.root.is_dir():
                raise CacheRootError(self.root, "not a directory") from None
            return None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(path, "is a symlink; refusing to follow it")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(path, "is not a regular file")
        return st

    def _present(self, fingerprint: str) -> CacheEntry | None:
        """The entry when its object and metadata are both published (no hashing)."""
        found = self._present_stats(fingerprint)
        return found[0] if found is not None else None

    def _present_stats(
        self, fingerprint: str
    ) -> tuple[CacheEntry, os.stat_result, os.stat_result] | None:
        """`_present`, with the stats of the object and the metadata file it read."""
        st = self._lstat_object(fingerprint)
        if st is None:
            return None
        meta_st = self._read_meta(fingerprint)
        if meta_st is None:
            return None
        return self._entry(fingerprint, st.st_size, meta_st), st, meta_st[1]

    def _stat_index(self) -> StatIndex:
        """This root's stat index (index.py), loaded once per ArtifactCache."""
        if self._index is None:
            from simpler_build.cache.index import StatIndex

            self._index = StatIndex(self.root)
        return self._index

    def _known_complete(self, fp: str, wanted: dict[str, str | None], index: StatIndex) -> bool:
        """Whether the stat index shows entry `fp` published with metadata holding every
        value in `wanted`, both files unchanged since (index.py `StatIndex.complete`)."""
        return index.complete(
            fp, _field_bits(wanted), self.layout.object_str(fp), self.layout.meta_str(fp)
        )

    def _write_meta(self, entry: CacheEntry) -> None:
        data = encode_meta(entry)
        final = self.layout.meta_path(entry.fingerprint)
        if os.path.islink(final):
            raise UnsafePathError(final, "is a symlink; refusing to replace it")
        atomic.publish_bytes(
            final, self.layout.temp_name(entry.fingerprint, ".json"), data, META_MODE
        )
        ns = int(entry.last_used * 1e9)
        os.utime(final, ns=(ns, ns), follow_symlinks=False)

    # -- public API -------------------------------------------------------------------

    def contains(self, fingerprint: str) -> bool:
        """Whether object and metadata are published.  Does not hash: see get/verify."""
        return self._present(_check_fp(fingerprint)) is not None

    def entry(self, fingerprint: str) -> CacheEntry | None:
        """Metadata of a published entry without verifying or touching it."""
        return self._present(_check_fp(fingerprint))

    def put(
        self,
        source: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        arch: str | None = None,
        runtime: str | None = None,
        build_id: str | None = None,
        fingerprint: str | None = None,
        role: str | None = None,
        sha256: str | None = None,
    ) -> CacheEntry:
        """Store a file's (or a buffer's) bytes; idempotent.

        Returns the entry; `entry.added` tells whether this call published it.
        A given `fingerprint` must match the bytes (FingerprintMismatch naming
        the file otherwise).  An existing entry is recognised by its published
        object and metadata without re-hashing the cached copy; missing
        arch/runtime/build_id/role/sha256 metadata is filled in, existing
        values are kept.  `sha256` is recorded as given (the manifest's), not
        recomputed: the fingerprint is what the store checks.
        """
        data: bytes | None = None
        src: Path | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            actual = fingerprint_bytes(data)
            label: str | Path = "<bytes>"
        else:
            src = Path(source)
            label = src
            try:
                actual = fingerprint_file(src)
            except FileNotFoundError:
                raise SourceError(src, "no such file") from None
            except NotRegularFile as exc:
                raise SourceError(src, exc.strerror) from None
            except OSError as exc:
                raise SourceError(src, f"cannot read: {exc.strerror or exc}") from None
        if fingerprint is not None and _check_fp(fingerprint) != actual:
            raise FingerprintMismatch(label, expected=fingerprint, actual=actual)
        fp = actual
        wanted = {
            "arch": arch,
            "runtime": runtime,
            "build_id": build_id,
            "role": role,
            "sha256": sha256,
        }

        existing = self._complete(fp, wanted)
        if existing is not None:
            return existing
        self._ensure_root()
        with self._lock(fp):
            existing = self._present(fp)
            if existing is not None:
                if self._missing_fields(existing, wanted):
                    existing = self._fill_meta(existing, wanted)
                return existing
            entry = self._publish(fp, data, src, wanted)
        if self.max_bytes is not None:
            from simpler_build.cache._evict import evict

            evict(self, self.max_bytes, protect={fp})
        return entry

    def _complete(
        self, fp: str, wanted: dict[str, str | None], index: StatIndex | None = None
    ) -> CacheEntry | None:
        """The published entry of `fp` when it already records every value in `wanted`
        (what makes a put a no-op; warm asks first and skips re-checking its source).
        With `index`, a complete entry is recorded there for `_known_complete`."""
        found = self._present_stats(fp)
        if found is None or self._missing_fields(found[0], wanted):
            return None
        existing, obj_st, meta_st = found
        if index is not None:
            index.record_present(fp, obj_st, meta_st, _field_bits(existing.as_dict()))
        return existing

    @staticmethod
    def _missing_fields(entry: CacheEntry, wanted: dict[str, str | None]) -> bool:
        return any(v is not None and getattr(entry, k) is None for k, v in wanted.items())

    def _fill_meta(self, entry: CacheEntry, wanted: dict[str, str | None]) -> CacheEntry:
        fills = {k: v for k, v in wanted.items() if v is not None and getattr(entry, k) is None}
        updated = entry.replace(**fills)
        try:
            self._write_meta(updated)
        except OSError as exc:
            raise classify_os_error(
                self.layout.meta_path(entry.fingerprint), exc, "write metadata", self.root
            ) from None
        return updated

    def _publish(
        self, fp: str, data: bytes | None, src: Path | None, wanted: dict[str, str | None]
    ) -> CacheEntry:
        """Write metadata, then the object (so a published object always has metadata)."""
        lay = self.layout
        final = lay.object_path(fp)
        now = time.time()
        try:
            lay.shard(fp).mkdir(exist_ok=True)
            if os.path.islink(final):
                raise UnsafePathError(final, "is a symlink; refusing to replace it")
            size = len(data) if data is not None else os.stat(src).st_size  # type: ignore[arg-type]
            entry = CacheEntry(
                fingerprint=fp,
                path=final,
                size=size,
                created=now,
                last_used=now,
                source=str(src) if src is not None else None,
                added=True,
                **wanted,
            )
            self._write_meta(entry)
            if data is not None:
                atomic.publish_bytes(final, lay.temp_name(fp, ".so"), data, OBJECT_MODE)
            else:
                written = self._copy_verified(src, final, fp)  # type: ignore[arg-type]
                if written != size:
                    entry = entry.replace(size=written)
                    self._write_meta(entry)
        except CacheError:
            self._drop_meta_if_orphan(fp)
            raise
        except OSError as exc:
            self._drop_meta_if_orphan(fp)
            raise classify_os_error(final, exc, "write object", self.root) from None
        self._bump(added=1, bytes_added=entry.size)
        return entry

    def _copy_verified(self, src: Path, final: Path, fp: str) -> int:
        """Stream `src` into the cache, hashing what is written, in one pass."""
        hasher = xxhash.xxh3_64()
        written = 0

        def fill(fd: int) -> None:
            nonlocal written
            try:
                sfd = open_regular(src)
            except OSError as exc:
                raise SourceError(src, f"cannot read: {exc.strerror or exc}") from None
            try:
                while chunk := os.read(sfd, atomic.CHUNK):
                    hasher.update(chunk)
                    atomic.write_all(fd, chunk)
                    written += len(chunk)
            finally:
                os.close(sfd)
            if hasher.hexdigest() != fp:
                raise FingerprintMismatch(
                    src, expected=fp, actual=hasher.hexdigest(), context="(changed while caching)"
                )

        atomic.publish(final, self.layout.temp_name(fp, ".so"), fill, OBJECT_MODE)
        return written

    def _drop_meta_if_orphan(self, fp: str) -> None:
        """After a failed object write, remove the metadata written just before it."""
        try:
            if not os.path.lexists(self.layout.object_path(fp)):
                os.unlink(self.layout.meta_path(fp))
        except OSError:
            pass

    def get(self, fingerprint: str) -> Path | None:
        """Path of a verified object, or None.

        The bytes are hashed before the path is returned; a mismatch moves the
        object to quarantine and counts as a miss and a corruption.  A hit
        bumps the metadata mtime (the LRU clock).  The path may be evicted by
        another process afterwards: open it promptly or copy it.
        """
        fp = _check_fp(fingerprint)
        path = self.layout.object_str(fp)  # strings on the hot path: pathlib is slow
        try:
            fd, st = atomic.open_nofollow_stat(path)
        except FileNotFoundError:
            self._bump(misses=1)
            return None
        except NotADirectoryError:
            if self.root.exists() and not self.root.is_dir():
                raise CacheRootError(self.root, "not a directory") from None
            self._bump(misses=1)
            return None
        try:
            actual = atomic.hash_fd(fd)
        finally:
            os.close(fd)
        if actual != fp:
            self._quarantine(fp, st, f"content hashes to {actual}")
            self._bump(misses=1, corruptions=1)
            return None
        now = time.time_ns()
        with suppress(OSError):
            os.utime(self.layout.meta_str(fp), ns=(now, now), follow_symlinks=False)
        self._bump(hits=1)
        return Path(path)

    def _quarantine(
        self,
        fp: str,
        seen: os.stat_result | None,
        problem: str,
        timeout: float = LOCK_TIMEOUT,
    ) -> Path | None:
        """Move a bad object (and its metadata) out of the store, under the entry lock.

        `seen` is the stat of the copy judged bad; if the name now points at a
        different inode, someone already replaced it and nothing is moved.  A
        quarantine/ that is a symlink is refused: nothing leaves the cache root.
        `timeout` 0 lets gc pass over an entry a live writer holds.
        """
        lay = self.layout
        obj = lay.object_path(fp)
        try:
            self._ensure_root()
            with self._lock(fp, timeout):
                try:
                    now = os.lstat(obj)
                except FileNotFoundError:
                    return None
                if seen is not None and (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
                    return None
                lay.quarantine.mkdir(exist_ok=True)
                if not stat.S_ISDIR(os.lstat(lay.quarantine).st_mode):
                    return None
                stem = f"{fp}-{time.time_ns()}-{os.getpid()}"
                dest = lay.quarantine / f"{stem}.so"
                os.rename(obj, dest)
                with suppress(FileNotFoundError):
                    os.rename(lay.meta_path(fp), lay.quarantine / f"{stem}.meta.json")
                reason = {"fingerprint": fp, "problem": problem, "original": str(obj)}
                (lay.quarantine / f"{stem}.reason.json").write_text(json.dumps(reason) + "\n")
                atomic.fsync_dir(obj.parent)
                return dest
        except (OSError, CacheError):
            return None

    def ls(self) -> list[CacheEntry]:
        """Every published object (sorted by fingerprint), without hashing."""
        out: list[CacheEntry] = []
        for fp, _kind in self._scan(kinds=("so",)):
            try:
                st = self._lstat_object(fp)
            except (UnsafePathError, OSError):  # not a usable object: verify/gc report it
                continue
            if st is not None:
                out.append(self._entry(fp, st.st_size, self._read_meta(fp)))
        return sorted(out, key=lambda e: e.fingerprint)

    def _scan(self, kinds: tuple[str, ...] = ("so", "json")) -> Iterator[tuple[str, str]]:
        """(fingerprint, kind) of every published name in the object tree.

        Never follows a symlink at objects/ or at a shard, and passes over a
        shard it cannot list: listing must not fail on one bad directory.
        """
        objects = self.layout.objects
        if self.root.exists() and not self.root.is_dir():
            raise CacheRootError(self.root, "not a directory")
        try:
            if not stat.S_ISDIR(os.lstat(objects).st_mode):
                return
            with os.scandir(objects) as it:
                shards = sorted(it, key=lambda d: d.name)
        except OSError:
            return
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                continue
            try:
                with os.scandir(shard.path) as it:
                    names = [item.name for item in it]
            except OSError:
                continue
            for name in names:
                parsed = parse_entry_name(name)
                if parsed and parsed[1] in kinds and parsed[0][:2] == shard.name:
                    yield parsed

    def stats(self) -> CacheStats:
        """Entry count and bytes (scanned) plus the shared counters."""
        entries = self.ls()
        try:
            counts = self._counters.read()
        except OSError as exc:
            raise classify_os_error(self.layout.stats_file, exc, "read statistics") from None
        try:
            quarantined = 0
            if stat.S_ISDIR(os.lstat(self.layout.quarantine).st_mode):  # never a symlink's
                with os.scandir(self.layout.quarantine) as it:
                    quarantined = sum(1 for p in it if p.name.endswith(".so"))
        except OSError:
            quarantined = 0
        return CacheStats(
            root=self.root,
            entries=len(entries),
            bytes=sum(e.size for e in entries),
            max_bytes=self.max_bytes,
            quarantined=quarantined,
            **counts,
        )

    def verify(self, fps: list[str] | None = None, repair: bool = False) -> VerifyReport:
        """Hash every object (or `fps`); with `repair`, quarantine the corrupt ones."""
        from simpler_build.cache._verify import verify

        if isinstance(fps, str):  # its characters would each be "missing"
            raise TypeError("fps is a list of fingerprints, not one string")

        return verify(self, fps, repair)

    def gc(self, max_bytes: int | None = None, grace_seconds: float | None = None) -> GcReport:
        """Sweep crash leftovers, then evict LRU entries down to `max_bytes`
        (default: the cache's own bound; no eviction when both are None)."""
        from simpler_build.cache._gc import DEFAULT_GRACE_SECONDS, gc

        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        bound = self.max_bytes if max_bytes is None else _check_bound("max_bytes", max_bytes)
        return gc(self, bound, grace)

    def clear(self) -> int:
        """Remove every entry (and the quarantine); returns the number of objects removed.

        Leaves counters, CACHEDIR.TAG and the sibling `scons/` and `sim/` trees alone.
        `maintenance.clear` returns the full report (what was skipped and why).
        """
        from simpler_build.cache._clear import clear

        return clear(self).removed


__all__ = ["ArtifactCache", "CacheEntry", "CacheStats"]
