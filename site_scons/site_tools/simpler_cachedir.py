"""SCons tool: a CacheDir that records a digest at push and checks it at retrieval.

SCons's own CacheDir copies an entry into the build tree without looking at
it, so a damaged entry becomes a binary that computes wrong results (and the
manifest would sign off on it).  `VerifiedCacheDir`, installed as
`CACHEDIR_CLASS` by this tool (SCons's hook for a custom cache class), adds:

* **push** -- under a per-directory `flock`, the target is copied to a temp
  file in the cache while its XXH3-64 is computed; the digest record
  `<entry>.simpler-digest` (JSON: size, xxh3_64) is written by temp file +
  rename, then the entry is renamed into place.  A reader therefore never
  sees an entry that is newer than its record.
* **retrieve** -- the entry is hashed against its record before it is copied,
  and the copy in the build tree is hashed again after (the entry may change
  in between).  An entry that does not match, or is not a regular file, is
  moved to `<cachedir>/quarantine/<sig>-<ns>-<pid>/` with its record and a
  `reason` file, one warning names it, and the target is rebuilt; the
  rebuild pushes a fresh entry.
* **entries without a record** (pushed by plain SCons or an older version of
  this tool) are not trusted: retrieval treats them as a miss, and the
  rebuilt target replaces them, record and all.

Nothing here fails a build: a cache that cannot be read or written is a
miss or a warning, as in SCons.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import SCons.Action
import SCons.CacheDir
import SCons.Warnings
import xxhash
from simpler_integrity import NotRegularFile, kind_of, open_regular

RECORD_SUFFIX = ".simpler-digest"
RECORD_FORMAT = 1
LOCK_NAME = ".simpler-lock"
QUARANTINE_DIR = "quarantine"
_CHUNK = 1 << 20
_MAX_RECORD_BYTES = 4096


@dataclass(frozen=True)
class Digest:
    size: int
    xxh3_64: str


@dataclass(frozen=True)
class Verdict:
    """What an entry is: "ok", "missing", "unrecorded" (not trusted) or "bad" (quarantine)."""

    status: str
    digest: Digest | None = None
    reason: str = ""


def _digest_fd(fd: int) -> Digest:
    hasher = xxhash.xxh3_64()
    size = 0
    while chunk := os.read(fd, _CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return Digest(size, hasher.hexdigest())


def digest_file(path: str) -> Digest:
    """Size and XXH3-64 of a regular file (never blocks on a FIFO, never follows a link)."""
    fd = open_regular(path)
    try:
        return _digest_fd(fd)
    finally:
        os.close(fd)


def read_record(path: str) -> Digest | None:
    """The digest record at `path`, or None when there is none or it is unreadable."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        raw = os.read(fd, _MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) > _MAX_RECORD_BYTES:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        return None
    size, xxh = data.get("size"), data.get("xxh3_64")
    if type(size) is not int or size < 0 or not isinstance(xxh, str) or len(xxh) != 16:
        return None
    return Digest(size, xxh)


def _record_text(digest: Digest) -> str:
    return json.dumps({"format": RECORD_FORMAT, "size": digest.size, "xxh3_64": digest.xxh3_64})


def inspect_entry(cachefile: str) -> Verdict:
    """Check a CacheDir entry against its digest record."""
    try:
        st = os.lstat(cachefile)
    except FileNotFoundError:
        return Verdict("missing")
    except OSError as exc:
        return Verdict("bad", reason=f"cannot stat it ({exc.strerror})")
    if not stat.S_ISREG(st.st_mode):
        return Verdict("bad", reason=f"it is {kind_of(st.st_mode)}, not a regular file")
    recorded = read_record(cachefile + RECORD_SUFFIX)
    if recorded is None:
        return Verdict("unrecorded", reason="no digest was recorded when it was pushed")
    try:
        actual = digest_file(cachefile)
    except FileNotFoundError:
        return Verdict("missing")
    except NotRegularFile as exc:
        return Verdict("bad", reason=f"it {exc.strerror}")
    except OSError as exc:
        return Verdict("bad", recorded, f"cannot read it ({exc.strerror})")
    if actual != recorded:
        return Verdict(
            "bad",
            recorded,
            f"xxh3 {actual.xxh3_64} ({actual.size} bytes) on disk, "
            f"{recorded.xxh3_64} ({recorded.size} bytes) recorded at push",
        )
    return Verdict("ok", recorded)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """Exclusive flock of `directory`'s lock file (a fresh descriptor, so threads exclude too)."""
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class VerifiedCacheDir(SCons.CacheDir.CacheDir):
    """SCons's CacheDir with a digest recorded at push and checked at retrieval."""

    def retrieve(self, node: Any) -> bool:
        if not self.is_enabled():
            return False
        if not SCons.Action.execute_actions:  # -n: nothing is copied, nothing to check
            return super().retrieve(node)
        _cachedir, cachefile = self.cachepath(node)
        verdict = inspect_entry(cachefile)
        if verdict.status == "missing":
            return super().retrieve(node)  # counts the miss
        if verdict.status != "ok":
            self.requests += 1
            self.CacheDebug("CacheRetrieve(%s):  %s not trusted\n", node, cachefile)
            if verdict.status == "bad":
                self.quarantine(cachefile, node, if_unmoved=verdict.reason)
            return False
        if not super().retrieve(node):
            return False
        target = node.get_internal_path()
        try:
            landed = digest_file(target)
        except OSError as exc:
            landed, why = None, f"the copy cannot be read ({exc.strerror})"
        else:
            why = "the entry changed while it was being retrieved"
        if landed != verdict.digest:
            _unlink_quietly(target)
            self.quarantine(cachefile, node, if_unmoved=why, always=True)
            return False
        return True

    def push(self, node: Any) -> None:
        if self.is_readonly() or not self.is_enabled() or node.nocache:
            return
        cachedir, cachefile = self.cachepath(node)
        source = node.get_internal_path()
        try:
            if not stat.S_ISREG(os.lstat(source).st_mode):
                return  # only regular files are cached with a digest
            os.makedirs(cachedir, exist_ok=True)
            with _locked(cachedir):
                verdict = inspect_entry(cachefile)
                if verdict.status == "ok":
                    self.CacheDebug("CachePush(%s):  %s already in cache\n", node, cachefile)
                    return
                if verdict.status == "bad":
                    self._quarantine_locked(cachefile, verdict.reason, node, "replacing it")
                elif verdict.status == "unrecorded":
                    _unlink_quietly(cachefile)  # readers see a miss, never a stale pair
                self.CacheDebug("CachePush(%s):  pushing to %s\n", node, cachefile)
                self._write_entry(source, cachefile)
        except OSError as exc:
            msg = f"Unable to copy {node} to cache. Cache file is {cachefile} ({exc})"
            SCons.Warnings.warn(SCons.Warnings.CacheWriteErrorWarning, msg)

    @staticmethod
    def _write_entry(source: str, cachefile: str) -> None:
        """Copy `source` in, hashing the bytes written; the record lands first, the entry last."""
        directory = os.path.dirname(cachefile)
        leftovers: list[str] = []
        src_fd = open_regular(source)
        try:
            tmp_fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            leftovers.append(tmp)
            hasher = xxhash.xxh3_64()
            size = 0
            with os.fdopen(tmp_fd, "wb") as out:
                while chunk := os.read(src_fd, _CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            shutil.copystat(source, tmp)
            os.chmod(tmp, stat.S_IMODE(os.stat(tmp).st_mode) | stat.S_IWRITE)
            record_fd, record_tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            leftovers.append(record_tmp)
            with os.fdopen(record_fd, "w", encoding="utf-8") as fh:
                fh.write(_record_text(Digest(size, hasher.hexdigest())))
            os.chmod(record_tmp, 0o644)  # mkstemp's 0600 would hide it from other users
            os.replace(record_tmp, cachefile + RECORD_SUFFIX)
            os.replace(tmp, cachefile)
            leftovers.clear()
        finally:
            os.close(src_fd)
            for leftover in leftovers:
                _unlink_quietly(leftover)

    def quarantine(
        self, cachefile: str, node: Any, *, if_unmoved: str = "", always: bool = False
    ) -> None:
        """Move a bad entry aside, re-checked under the lock (another build may have fixed it).

        When the entry is not moved -- it verifies now, or the lock cannot be
        taken -- `if_unmoved` is still reported if `always` or on an error.
        """
        try:
            with _locked(os.path.dirname(cachefile)):
                verdict = inspect_entry(cachefile)
                if verdict.status == "bad":
                    self._quarantine_locked(cachefile, verdict.reason, node)
                    return
        except OSError as exc:
            self._warn(node, cachefile, f"{if_unmoved}; cannot quarantine it ({exc.strerror})")
            return
        if always:
            self._warn(node, cachefile, if_unmoved)

    def _quarantine_locked(
        self, cachefile: str, reason: str, node: Any, then: str = "rebuilding it"
    ) -> None:
        sig = os.path.basename(cachefile)
        dest = os.path.join(self.path, QUARANTINE_DIR, f"{sig}-{time.time_ns()}-{os.getpid()}")
        os.makedirs(dest)
        os.rename(cachefile, os.path.join(dest, "entry"))
        with contextlib.suppress(FileNotFoundError):
            os.rename(cachefile + RECORD_SUFFIX, os.path.join(dest, "digest"))
        with open(os.path.join(dest, "reason"), "w", encoding="utf-8") as fh:
            fh.write(f"{cachefile}\ntarget {node}\n{reason}\n")
        self._warn(node, cachefile, reason, dest, then)

    @staticmethod
    def _warn(
        node: Any,
        cachefile: str,
        reason: str,
        dest: str | None = None,
        then: str = "rebuilding it",
    ) -> None:
        where = f"; quarantined in {dest}" if dest else ""
        sys.stderr.write(
            f"scons: warning: CacheDir entry {cachefile} for {node} not used "
            f"({reason}){where}; {then}\n"
        )


def generate(env: Any) -> None:
    env["CACHEDIR_CLASS"] = VerifiedCacheDir


def exists(env: Any) -> bool:
    return True
