"""Persistent stat index: (device, inode, size, mtime_ns, ctime_ns) -> fingerprint.

`warm` checks every binary a manifest names against its recorded
fingerprint.  The per-process memo (fingerprint.py) only helps within one
process; this index, kept in the cache root and shared by every process,
lets a new process trust an unchanged file's fingerprint from one `stat`,
the way git's index and ccache's manifests do.  Format and rules: FORMAT.md,
"Stat index".

- A source line is ``<dev> <ino> <size> <mtime_ns> <ctime_ns> <fp> [elf] <check>``,
  where ``<check>`` is XXH3-64 of everything before it.  A torn or damaged line
  fails the check and is ignored: it can only cost a re-hash.  ``elf`` says the
  file with exactly that stat also passed warm's ELF header check, so warm does
  not open it again.
- A present line is ``present <fp> <fields> <object stat> <metadata stat> <check>``:
  the store's entry `fp` was seen published, with metadata holding `<fields>`
  (a bit per arch, runtime, build_id, role, sha256).  While the object and the
  metadata keep exactly those stats (both files are only ever replaced by a
  rename, never rewritten in place), warm need not read the metadata again.
- An entry is recorded only from the descriptor that was hashed (or the stats
  that were checked), only when its stat was the same before and after, and
  only when both mtime and ctime are at least `RACY_NS` older than now (git's
  "racy" rule: a file changed again within the filesystem's timestamp
  granularity could keep the same stat).  ctime is in the key because no user
  call can set it back, so a rewrite that restores size and mtime still misses.
- A manifest line is ``manifest <key> <arch> <runtime>`` and, per role (dispatcher,
  inner_so, aicore), ``<path> <fp> <binary key> <shard key> <metadata key>``, then
  ``<check>``, each key one field (its five numbers joined by ``:``): a whole warm
  of the manifest file with stat ``<key>``, as ccache's
  manifests record a compile's include files.  It is composed when a warm has just
  checked that manifest, from the source line of each binary (with ``elf``), the
  present line of each entry (holding every field the manifest wants) and the stat
  of the entry's shard directory taken before the entry was checked.  While the
  manifest, its binaries, the entries' metadata files and their shard directories
  keep exactly those stats, warm answers the manifest from this one line.  (An
  object is only ever created, replaced or removed by a rename or unlink in its
  shard directory, which changes that directory's stat.)  ``<path>`` is the
  manifest's own relative text; warm still resolves it and checks it stays in the
  tree.
- A tree line is ``tree <root>`` and, per directory a walk of that build directory
  listed, ``<path relative to root> <stat key joined by ":"> <0|1>`` (1: it holds a
  manifest):
  while every directory keeps its stat, nothing was added, removed or renamed in
  any of them, and the walk need not list them again.
- Writers append whole lines with O_APPEND and never lock; a file over
  `MAX_BYTES` is rewritten (temp file + rename) with the entries this process
  used.  A line lost in a race is a re-hash later, nothing more.
- The index never creates the cache root: without one, nothing is recorded.
"""

from __future__ import annotations

import os
import stat
import time
from _thread import allocate_lock  # `threading` costs warm's start-up 0.5 ms for one lock
from contextlib import suppress

import xxhash

from simpler_build.cache.fingerprint import is_fingerprint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

INDEX_NAME = "stat-index-v1.log"
#: Git's racy window: mtime or ctime this close to now is not trusted.
RACY_NS = 2_000_000_000
#: Above this size the next writer rewrites the file with the entries it used.
MAX_BYTES = 4 << 20
_READ_LIMIT = 2 * MAX_BYTES
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _line(payload: str) -> str:
    return f"{payload} {xxhash.xxh3_64_hexdigest(payload.encode())}"


#: The flag of a source line whose file passed warm's ELF header check.
ELF_FLAG = "elf"
_PRESENT = "present"
_MANIFEST = "manifest"
#: A manifest line: the tag, the manifest's key, arch, runtime, per role a path, a
#: fingerprint and three keys (binary, shard, metadata), the check.  Its keys are the
#: five numbers joined by ":" (`stat_token`), one field each.
_MANIFEST_PARTS = 1 + 1 + 2 + 3 * 5 + 1


def stat_token(st: os.stat_result) -> str:
    """A stat's key as one field of a manifest line: the five numbers joined by ":"."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


#: A bit per metadata field a put can fill in (a present line's `<fields>`).
FIELD_BITS = {"arch": 1, "runtime": 2, "build_id": 4, "role": 8, "sha256": 16}


def field_bits(values: dict[str, str | None]) -> int:
    """The bits of the fields that `values` gives (not None)."""
    return sum(bit for name, bit in FIELD_BITS.items() if values.get(name) is not None)


def _token(text: str) -> bool:
    """Whether `text` can stand as one field of a line: printable ASCII, no space."""
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


_SOURCE = "source"
_TREE = "tree"


def _kind(key: str) -> str:
    """Which kind of line has `key`: a manifest, tree, present or source line."""
    if key.startswith("manifest "):
        return _MANIFEST
    if key.startswith("tree "):
        return _TREE
    return _PRESENT if key.startswith("present ") else _SOURCE


def key_of(st: os.stat_result) -> str:
    """The index key of a stat: device, inode, size, mtime_ns and ctime_ns."""
    return _key(st)


class StatIndex:
    """The stat index of one cache root (loaded once per process, on first lookup)."""

    def __init__(self, root: str | os.PathLike[str], clock: Callable[[], int] = time.time_ns):
        self.root = os.fspath(root)
        self.path = os.path.join(self.root, INDEX_NAME)
        self.clock = clock
        self._lines: list[str] | None = None  # the file's lines, read on first lookup
        self._kinds: dict[str, dict[str, str]] = {}  # kind -> key -> line (checked on use)
        self._used: dict[str, str] = {}  # key -> line of every entry this process used or made
        self._parsed: dict[str, list[str]] = {}  # key -> fields of its loaded, checked line
        self._pending: dict[str, str] = {}  # key -> line not yet appended
        self._lock = allocate_lock()
        self.stats = {"hits": 0, "misses": 0, "recorded": 0, "present_hits": 0}

    def __reduce__(self) -> tuple[type[StatIndex], tuple[str]]:
        """A process this index is sent to (an ArtifactCache passed to a spawned worker)
        loads the file itself: nothing unwritten or lock-guarded crosses over."""
        return (StatIndex, (self.root,))

    def _read(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            return os.read(fd, _READ_LIMIT)
        except OSError:
            return b""
        finally:
            os.close(fd)

    def _load(self, kind: str) -> dict[str, str]:
        """key -> line of the lines of one kind (`_MANIFEST`, `_TREE`, `_PRESENT`, `_SOURCE`),
        indexed on the first lookup of that kind: a warm answered by manifest lines
        never indexes the thousands of source and present lines."""
        entries = self._kinds.get(kind)
        if entries is not None:
            return entries
        if self._lines is None:
            try:
                self._lines = self._read().decode("ascii").split("\n")
            except UnicodeDecodeError:
                self._lines = []
        entries = self._kinds[kind] = {}
        if kind == _MANIFEST:
            for line in self._lines:
                if line.startswith("manifest ") and line.count(" ") == _MANIFEST_PARTS - 1:
                    entries[line[: line.index(" ", 9)]] = line
        elif kind == _TREE:
            for line in self._lines:
                if line.startswith("tree ") and line.count(" ") % 3 == 2:
                    entries[line[: line.index(" ", 5)]] = line
        elif kind == _PRESENT:
            for line in self._lines:
                if line.startswith("present ") and line.count(" ") == 13:
                    entries[line[: line.index(" ", 8)]] = line
        else:
            for line in self._lines:
                n = line.count(" ")
                if n == 6 or n == 7:
                    parts = line.split(" ")
                    if n == 6 or parts[6] == ELF_FLAG:
                        entries[" ".join(parts[:5])] = line
        return entries

    def _verified(self, key: str) -> list[str] | None:
        """The fields of `key`'s line when its check holds (caller holds the lock)."""
        parts = self._parsed.get(key)
        if parts is not None:
            return parts
        line = self._load(_kind(key)).get(key)
        if line is None:
            return None
        payload, _, check = line.rpartition(" ")
        if xxhash.xxh3_64_hexdigest(payload.encode()) != check:
            return None
        self._used.setdefault(key, line)
        parts = self._parsed[key] = payload.split(" ")  # warm asks twice: hash and ELF
        return parts

    def lookup(self, st: os.stat_result) -> str | None:
        """The fingerprint recorded for a file with exactly this stat, or None."""
        with self._lock:
            parts = self._verified(_key(st))
            fp = parts[5] if parts is not None and is_fingerprint(parts[5]) else None
            self.stats["misses" if fp is None else "hits"] += 1
            return fp

    def elf_checked(self, st: os.stat_result, fp: str) -> bool:
        """Whether the file with exactly this stat, hashing to `fp`, passed the ELF check."""
        with self._lock:
            parts = self._verified(_key(st))
            return parts is not None and len(parts) == 7 and parts[5:] == [fp, ELF_FLAG]

    def present(self, fp: str) -> tuple[str, str, int] | None:
        """(object key, metadata key, fields) recorded for the store's entry `fp`, or None."""
        with self._lock:
            parts = self._verified(f"{_PRESENT} {fp}")
            if parts is None or len(parts) != 13 or not parts[2].isdigit():
                return None
            self.stats["present_hits"] += 1
            return " ".join(parts[3:8]), " ".join(parts[8:13]), int(parts[2])

    def complete(self, fp: str, bits: int, obj_path: str, meta_path: str) -> bool:
        """Whether entry `fp` is recorded published with metadata holding the fields
        `bits`, and its object and metadata files still have the stats recorded: two
        lstats, no open.  (Both are only ever replaced by a rename, and the racy rule
        covers a replacement within the timestamp granularity.)"""
        known = self.present(fp)
        if known is None or bits & ~known[2]:
            return False
        try:
            obj = os.lstat(obj_path)
            meta = os.lstat(meta_path)
        except (OSError, ValueError):
            return False
        return (
            stat.S_ISREG(obj.st_mode)
            and stat.S_ISREG(meta.st_mode)
            and _key(obj) == known[0]
            and _key(meta) == known[1]
        )

    def manifest(self, st: os.stat_result) -> list[str] | None:
        """The warm recorded for the manifest file with exactly this stat, or None:
        arch, runtime, then per role (dispatcher, inner_so, aicore) its path as the
        manifest writes it, its fingerprint, and the `stat_token`s of the binary, of
        the entry's shard directory and of its metadata file."""
        with self._lock:
            parts = self._verified(f"{_MANIFEST} {stat_token(st)}")
        if parts is None or len(parts) != _MANIFEST_PARTS - 1:
            return None
        return parts[2:]

    def tree(self, root: str) -> list[str] | None:
        """The walk recorded for the build tree at `root` (absolute), or None: per
        directory its path relative to the root ("." for the root), its stat token and
        "1" when it holds an entry named runtime_binaries.json, else "0"."""
        with self._lock:
            parts = self._verified(f"{_TREE} {root}")
        if parts is None or len(parts) % 3 != 2:
            return None
        return parts[2:]

    def record_tree(
        self, root: str, given: str, visited: Sequence[tuple[str, os.stat_result | None, bool]]
    ) -> bool:
        """Remember a walk of the tree at `root` (absolute; `given` is the root as the
        walk was given it, which every path in `visited` starts with): each directory
        listed, its stat from before it was listed and whether it holds a manifest.
        Recorded only when every directory was listed whole and has settled (the racy
        rule) and every path can stand as one field.  Returns whether it was."""
        prefix = given if given.endswith(os.sep) else f"{given}{os.sep}"
        if not _token(root) or not visited or visited[0][0] != given:
            return False
        values = []
        for top, st, has in visited:
            if st is None or not stat.S_ISDIR(st.st_mode) or not self.trusted(st):
                return False
            rel = "." if top == given else top[len(prefix) :]
            if (not top.startswith(prefix) and top != given) or not _token(rel):
                return False
            values += [rel, stat_token(st), "1" if has else "0"]
        self._add(f"{_TREE} {root}", f"{_TREE} {root} {' '.join(values)}")
        return True

    def trusted(self, st: os.stat_result) -> bool:
        """Whether a file with this stat may be recorded (git's racy rule)."""
        now = self.clock()
        return now - st.st_mtime_ns >= RACY_NS and now - st.st_ctime_ns >= RACY_NS

    def record(
        self, before: os.stat_result, after: os.stat_result, fp: str, elf: bool = False
    ) -> None:
        """Remember `fp` for a file hashed (and with `elf`, whose ELF header was checked)
        between the stats `before` and `after`."""
        key = _key(before)
        if key != _key(after) or not stat.S_ISREG(before.st_mode) or not self.trusted(before):
            return
        self._add(key, f"{key} {fp} {ELF_FLAG}" if elf else f"{key} {fp}")

    def record_present(
        self, fp: str, obj: os.stat_result, meta: os.stat_result, fields: int
    ) -> None:
        """Remember that entry `fp` was published with object `obj` and metadata `meta`
        holding `fields` (both settled: the racy rule applies to each)."""
        if not (stat.S_ISREG(obj.st_mode) and stat.S_ISREG(meta.st_mode)):
            return
        if not (self.trusted(obj) and self.trusted(meta)):
            return
        self._add(f"{_PRESENT} {fp}", f"{_PRESENT} {fp} {fields} {_key(obj)} {_key(meta)}")

    def record_manifest(
        self,
        before: os.stat_result,
        after: os.stat_result,
        arch: str,
        runtime: str,
        binaries: Sequence[tuple[str, str, os.stat_result, int, os.stat_result | None]],
    ) -> bool:
        """Remember the warm just done of the manifest read between the stats `before`
        and `after`: `binaries` holds, per role, the path as the manifest writes it, the
        fingerprint, the stat it was checked under, the metadata fields it wants and
        the stat of the entry's shard directory taken before the entry was checked.
        Recorded only when every binary has its source line with `elf`, every entry
        its present line with those fields (lines this index holds or just made), every
        shard directory has settled (the racy rule) and every value can stand as one
        field (no space in a path).  Returns whether it was."""
        key = stat_token(before)
        if not self.trusted(before) or key != stat_token(after) or len(binaries) != 3:
            return False
        if not stat.S_ISREG(before.st_mode) or not (_token(arch) and _token(runtime)):
            return False
        values = [arch, runtime]
        with self._lock:
            for rel, fp, st, wanted, shard in binaries:
                if shard is None or not stat.S_ISDIR(shard.st_mode) or not self.trusted(shard):
                    return False
                source = self._verified(_key(st))
                present = self._verified(f"{_PRESENT} {fp}")
                if not _token(rel) or source is None or source[5:] != [fp, ELF_FLAG]:
                    return False
                if present is None or len(present) != 13 or not present[2].isdigit():
                    return False
                if wanted & ~int(present[2]):
                    return False
                values += [rel, fp, ":".join(source[:5]), stat_token(shard)]
                values.append(":".join(present[8:13]))
        self._add(f"{_MANIFEST} {key}", f"{_MANIFEST} {key} {' '.join(values)}")
        return True

    def _add(self, key: str, payload: str) -> None:
        line = _line(payload)
        with self._lock:
            if self._used.get(key) == line or self._load(_kind(key)).get(key) == line:
                self._used[key] = line
                return
            self._used[key] = line
            self._parsed[key] = payload.split(" ")  # what this process knows, it may use
            self._pending[key] = line  # a later line for the key replaces an unwritten one
            self.stats["recorded"] += 1

    def flush(self) -> None:
        """Append what was recorded (best effort: the index only saves work)."""
        with self._lock:
            lines, self._pending = list(self._pending.values()), {}
            if not lines or not os.path.isdir(self.root):
                return
            data = "".join(f"{line}\n" for line in lines).encode("ascii")
            try:
                size = os.lstat(self.path).st_size
            except OSError:
                size = 0
            try:
                if size + len(data) > MAX_BYTES:
                    self._rewrite()
                else:
                    self._append(data)
            except OSError:
                pass

    def _append(self, data: bytes) -> None:
        fd = os.open(
            self.path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK,
            0o644,
        )
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.write(fd, data)  # one write: appenders never interleave within it
        finally:
            os.close(fd)

    def _rewrite(self) -> None:
        data = "".join(f"{line}\n" for line in self._used.values()).encode("ascii")
        tmp = os.path.join(self.root, f".tmp-statindex-{os.getpid()}-{os.urandom(6).hex()}")
        from simpler_build.cache.atomic import open_locked_temp

        fd = open_locked_temp(tmp)  # locked until renamed: gc can tell a dead writer's
        try:
            try:
                os.write(fd, data)
                os.rename(tmp, self.path)
            finally:
                os.close(fd)
        except OSError:
            with suppress(OSError):
                os.unlink(tmp)
            raise


__all__ = [
    "ELF_FLAG",
    "FIELD_BITS",
    "INDEX_NAME",
    "MAX_BYTES",
    "RACY_NS",
    "StatIndex",
    "field_bits",
    "key_of",
    "stat_token",
]
