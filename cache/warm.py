"""Warm the cache from build manifests: put every binary each manifest names.

Two phases so that bad input changes nothing: `plan` reads every manifest
and checks every named binary (dispatcher, inner SO, AICore ELF) against its
recorded fingerprint (through the per-process memo), then `apply` puts them,
once per distinct fingerprint.  On an already-warm cache `apply`
only stats the published object and reads its metadata -- no lock, no copy,
no re-hash of the cached bytes -- which keeps `simpler-build cache warm` fast.

`warm_root` (what `warm` and the CLI run) first asks the stat index
(index.py): a build directory whose directories kept their stats is not
listed again (its tree line), and a manifest whose file, binaries and store
entries kept the stats its manifest line records is answered with a stat of
the manifest, an lstat of each path component and of each entry's metadata
file (and of each shard directory, once per warm) -- no manifest parsed, no
binary opened, and not even the store module imported when every manifest
is answered so.  Only the rest go through `plan` and `apply`, so a warm costs
little more than what changed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from simpler_build.cache._record import Record
from simpler_build.cache.errors import FingerprintMismatch, SourceError
from simpler_build.cache.fingerprint import fingerprint_stat
from simpler_build.cache.index import stat_token
from simpler_build.files import NotRegularFile
from simpler_build.manifest import (
    MANIFEST_NAME,
    ROLES,
    Manifest,
    ManifestError,
    binary_path_str,
    find_manifest_strs,
    load_manifest,
    load_manifest_stat,
)

TYPE_CHECKING = False  # no typing, no dataclasses: this module is on warm's start-up path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, ClassVar

    from simpler_build.cache.index import StatIndex
    from simpler_build.cache.layout import Layout
    from simpler_build.cache.store import ArtifactCache


class WarmTask(Record):
    """One checked binary of a manifest, ready to put."""

    _fields = ("manifest", "role", "fingerprint")
    __slots__ = _fields
    manifest: Manifest
    role: str
    fingerprint: str

    @property
    def source(self) -> Path:
        return self.manifest.binaries[self.role].path


class WarmItem(Record):
    """One binary `warm` put or found: where it came from and where it is cached."""

    _fields = ("manifest", "arch", "runtime", "fingerprint", "source", "cache_path", "role")
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {"role": "inner_so"}
    manifest: Path
    arch: str
    runtime: str
    fingerprint: str
    source: Path
    cache_path: Path
    role: str

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": str(self.manifest),
            "arch": self.arch,
            "runtime": self.runtime,
            "role": self.role,
            "fingerprint": self.fingerprint,
            "source": str(self.source),
            "cache_path": str(self.cache_path),
        }


#: A present binary the stat index answered, as strings: (manifest, arch, runtime,
#: fingerprint, source, cache_path, role) -- a WarmItem once someone reads it.
KnownItem = tuple[str, str, str, str, str, str, str]


class WarmReport(Record):
    """What `warm` put (`added`) and what was already cached (`present`).

    Binaries the stat index answered are kept as strings until `present` is first
    read: `cache warm` prints only how many there are, and the Paths of a thousand
    manifests' items cost it as much as all their checks.  `counts` reads neither.
    """

    _fields = ("added", "present")
    __slots__ = ("_present", "_strings", "added")
    _factories: ClassVar[dict[str, Callable[[], object]]] = {"added": list, "present": list}
    _frozen = False
    added: list[WarmItem]
    _present: list[Any]  # WarmItem, or KnownItem while `_strings`
    _strings: bool

    @property
    def present(self) -> list[WarmItem]:
        if self._strings:
            self._present = _items(self._present)
            self._strings = False
        return self._present

    @present.setter
    def present(self, items: list[WarmItem]) -> None:
        object.__setattr__(self, "_present", items)
        object.__setattr__(self, "_strings", False)

    def extend_known(self, known: list[KnownItem]) -> None:
        """Append binaries the stat index answered (see `known_items`) to `present`."""
        self._present.extend(known)
        self._strings = True

    def counts(self) -> tuple[int, int]:
        """(len(added), len(present)), without making the present items."""
        return len(self.added), len(self._present)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [i.to_json() for i in self.added],
            "present": [i.to_json() for i in self.present],
        }


def _items(present: list[Any]) -> list[WarmItem]:
    """`present` with each KnownItem made a WarmItem (one Path per manifest, shared)."""
    manifests: dict[str, Path] = {}
    out = []
    for item in present:
        if type(item) is tuple:
            manifest = manifests.get(item[0])
            if manifest is None:
                manifest = manifests[item[0]] = Path(item[0])
            _manifest, arch, runtime, fp, source, cache_path, role = item
            item = WarmItem(manifest, arch, runtime, fp, Path(source), Path(cache_path), role)
        out.append(item)
    return out


def collect_manifests(sources: Iterable[str | Path]) -> list[Path]:
    """Manifest files named by `sources` (a manifest file or a build directory each)."""
    return [Path(path) for path in _collect(sources)]


def _collect(
    sources: Iterable[str | Path],
    index: StatIndex | None = None,
    seen: dict[str, os.stat_result] | None = None,
) -> list[str]:
    """`collect_manifests` as strings (a thousand Paths cost `cache warm` milliseconds).

    With `index`, a single build directory whose walk the index recorded is not
    listed again while every directory in it keeps its stat (`_walk`); `seen` then
    receives the lstats of its directories (absolute paths) for `known_items`.
    """
    sources = list(sources)
    seen_paths: set[Path] = set()
    out: list[str] = []
    for raw in sources:
        src = Path(raw)
        if src.is_dir():
            found = _walk(src, index, seen) if len(sources) == 1 else find_manifest_strs(src)
            if not found:
                raise SourceError(src, f"no {MANIFEST_NAME} under this directory (build first?)")
        elif src.exists():
            found = [os.fspath(src)]
        else:
            raise SourceError(src, "no such manifest or build directory")
        if len(sources) == 1:
            return found  # one walk, or one file: nothing to drop twice
        for path in found:
            key = Path(path).absolute()
            if key not in seen_paths:
                seen_paths.add(key)
                out.append(path)
    return out


def _walk(src: Path, index: StatIndex | None, seen: dict[str, os.stat_result] | None) -> list[str]:
    """`find_manifest_strs(src)`, answered by the stat index's tree line when every
    directory it lists has the stat recorded (a directory's stat changes whenever an
    entry is added, removed or renamed in it), else walked (and recorded)."""
    if index is None:
        return find_manifest_strs(src)
    given = os.fspath(src)
    root = os.path.abspath(given)
    recorded = index.tree(root)
    if recorded is not None:
        prefix = given if given.endswith(os.sep) else f"{given}{os.sep}"
        found: list[str] = []
        lstats: dict[str, os.stat_result] = {}
        it = iter(recorded)
        for rel, token, has in zip(it, it, it, strict=True):
            if rel == ".":
                top, st = given, _stat(given)
            else:
                top = f"{prefix}{rel}"
                try:
                    st = lstats[top] = os.lstat(top)
                except (OSError, ValueError):
                    break
            if st is None or not stat.S_ISDIR(st.st_mode) or stat_token(st) != token:
                break
            if has == "1":
                found.append(f"{top if top.endswith(os.sep) else top + os.sep}{MANIFEST_NAME}")
        else:
            if seen is not None and given == root:  # absolute and normalized: `seen`'s keys
                seen.update(lstats)
            found.sort(key=_components)
            return found
    visited: list[tuple[str, os.stat_result | None, bool]] = []
    found = find_manifest_strs(given, visited)
    index.record_tree(root, given, visited)
    return found


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _components(path: str) -> list[str]:
    return path.split(os.sep)


def check_manifest(path: Path, index: StatIndex | None = None) -> list[WarmTask]:
    """Load a manifest and prove each binary exists and has the recorded fingerprint."""
    return _check(path, index)[0]


#: What `_check` read of a manifest for its line in the stat index: the stats before and
#: after the read, each role's path as written, and the stat each binary was checked under.
_Read = tuple[os.stat_result, os.stat_result, dict[str, str], list[os.stat_result]]


def _check(path: Path, index: StatIndex | None) -> tuple[list[WarmTask], _Read | None]:
    """`check_manifest`, with what the stat index records once the tasks are applied."""
    try:
        if index is None:
            manifest, read = load_manifest(path), None
        else:
            manifest, rels, before, after = load_manifest_stat(path)
    except ManifestError as exc:
        raise SourceError(exc.path, exc.problem) from None
    checked = [_check_binary(manifest, role, index) for role in ROLES]
    if index is not None:
        read = (before, after, rels, [st for _task, st in checked])
    return [task for task, _st in checked], read


def _record(
    index: StatIndex,
    tasks: list[WarmTask],
    read: _Read | None,
    shards: list[os.stat_result | None],
) -> None:
    """Record the warm just applied of one manifest (index.py, manifest lines);
    `shards` are the stats of its entries' shard directories from before the apply."""
    if read is None:
        return
    before, after, rels, stats = read
    m = tasks[0].manifest
    binaries = []
    for task, st, shard in zip(tasks, stats, shards, strict=True):
        b = m.binaries[task.role]
        bits = _bits(task.role, b.build_id is not None, b.sha256 is not None)
        binaries.append((rels[task.role], task.fingerprint, st, bits, shard))
    index.record_manifest(before, after, m.arch, m.runtime, binaries)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (OSError, ValueError):
        return None


def _check_binary(
    manifest: Manifest, role: str, index: StatIndex | None
) -> tuple[WarmTask, os.stat_result]:
    record = manifest.binaries[role]
    try:
        actual, st = fingerprint_stat(record.path)
    except FileNotFoundError:
        raise SourceError(record.path, f"missing (named by {manifest.path})") from None
    except NotRegularFile as exc:
        raise SourceError(record.path, f"{exc.strerror} (named by {manifest.path})") from None
    except OSError as exc:
        raise SourceError(record.path, f"cannot read: {exc.strerror or exc}") from None
    if actual != record.fingerprint:
        raise FingerprintMismatch(
            record.path, expected=record.fingerprint, actual=actual, context=f"in {manifest.path}"
        )
    # What enters the shared cache is a loadable shared object.  The stat index
    # remembers a file with this very stat that passed, so it is not opened again.
    if index is None or not index.elf_checked(st, actual):
        problem = elf_problem(record.path, index, st, actual)
        if problem is not None:
            raise SourceError(record.path, f"{role} {problem} (named by {manifest.path})")
    return WarmTask(manifest=manifest, role=role, fingerprint=actual), st


def elf_problem(
    path: Path,
    index: StatIndex | None = None,
    st: os.stat_result | None = None,
    fp: str | None = None,
) -> str | None:
    """Why a file is not an ELF shared object for this host, or None (reads 64 bytes).

    With `index`, a pass is recorded there for the file with stat `st` and
    fingerprint `fp` -- only if the descriptor read still has that stat.
    """
    from simpler_build.elf import header_problem
    from simpler_build.files import open_regular

    try:
        fd = open_regular(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    try:
        problem = header_problem(os.read(fd, 64))
        if problem is None and index is not None and st is not None and fp is not None:
            index.record(st, os.fstat(fd), fp, elf=True)
        return problem
    finally:
        os.close(fd)


def plan(sources: Iterable[str | Path], cache: ArtifactCache | None = None) -> list[WarmTask]:
    """Check every manifest before anything is put: bad input leaves the cache unchanged.

    One task per (manifest, role); binaries that several manifests share (the
    dispatcher and AICore ELF of an arch) are added once and then reported
    as present.  With `cache`, fingerprints and ELF checks go through its
    root's persistent stat index (index.py), so a binary unchanged since an
    earlier process checked it is not opened again.
    """
    if cache is None:
        return [task for path in collect_manifests(sources) for task in check_manifest(path)]
    from simpler_build.cache.fingerprint import use_index

    index = cache._stat_index()
    previous = use_index(index)
    try:
        return [task for path in collect_manifests(sources) for task in check_manifest(path, index)]
    finally:
        use_index(previous)
        index.flush()


def apply(
    cache: ArtifactCache,
    tasks: list[WarmTask],
    on_done: Callable[[WarmTask], None] | None = None,
) -> WarmReport:
    """Put each planned SO; `on_done` is called after each (progress bars)."""
    report = WarmReport()
    index = cache._stat_index()
    try:
        for task in tasks:
            _apply_one(cache, task, index, report)
            if on_done is not None:
                on_done(task)
    finally:
        index.flush()
    return report


def _apply_one(cache: ArtifactCache, task: WarmTask, index: StatIndex, report: WarmReport) -> None:
    m = task.manifest
    record = m.binaries[task.role]
    fp = task.fingerprint
    wanted = _wanted(task.role, m.arch, m.runtime, record.build_id, record.sha256)
    # Already cached with this metadata: put would only re-check the source that plan
    # just checked; on a warm cache this is the whole of apply.  The stat index knows
    # most such entries from two lstats; the rest are read (and recorded there).
    if cache._known_complete(fp, wanted, index):
        path, added = cache.layout.object_path(fp), False
    else:
        entry = cache._complete(fp, wanted, index)
        if entry is None:
            entry = cache.put(record.path, fingerprint=fp, **wanted)
        path, added = entry.path, entry.added
    item = WarmItem(m.path, m.arch, m.runtime, fp, record.path, path, task.role)
    (report.added if added else report.present).append(item)


def warm(cache: ArtifactCache, sources: list[Path]) -> WarmReport:
    """Put every binary of every manifest in `sources` (manifest files or build dirs)."""
    return warm_root(cache.root, sources, cache=cache)[0]


def warm_root(
    root: Path,
    sources: Iterable[str | Path],
    on_plan: Callable[[int], Callable[[WarmTask], None] | None] | None = None,
    cache: ArtifactCache | None = None,
) -> tuple[WarmReport, ArtifactCache | None]:
    """`warm` into the cache at `root`: manifests the stat index answers whole are
    reported present at once; the rest are planned (all checked before anything is
    put) and applied.  The ArtifactCache (`cache`, else one made for `root` only if
    a manifest needs planning) is returned with the report.  `on_plan` is given the
    number of tasks to apply and may return a callback run after each (a progress bar).
    The report lists every manifest's binaries in order, as `apply(cache, plan(...))`.
    """
    if cache is not None:
        index, layout = cache._stat_index(), cache.layout
    else:
        from simpler_build.cache.index import StatIndex
        from simpler_build.cache.layout import Layout

        index, layout = StatIndex(root), Layout(root)
    seen: dict[str, os.stat_result] = {}  # lstats of path components, for this warm
    try:
        paths = _collect(sources, index, seen)
        known = known_items(paths, index, layout, seen)
    except BaseException:
        index.flush()  # a tree walked and recorded before a bad source stays recorded
        raise
    unknown = [path for path, items in zip(paths, known, strict=True) if items is None]
    if not unknown:
        report = WarmReport()
        for items in known:
            report.extend_known(items or [])
        index.flush()  # a tree line, if the walk was recorded
        return report, cache
    if cache is None:
        from simpler_build.cache.store import ArtifactCache

        cache = ArtifactCache(root)
        cache._index = index
    from simpler_build.cache.fingerprint import use_index

    previous = use_index(index)
    try:
        checked = [_check(Path(path), index) for path in unknown]
    finally:
        use_index(previous)
    on_done = on_plan(len(checked) * len(ROLES)) if on_plan is not None else None
    report = WarmReport()
    pending = iter(checked)
    try:
        for items in known:
            if items is not None:
                report.extend_known(items)
                continue
            tasks, read = next(pending)
            shards = [_lstat(layout.shard_str(task.fingerprint)) for task in tasks]
            for task in tasks:
                _apply_one(cache, task, index, report)
                if on_done is not None:
                    on_done(task)
            _record(index, tasks, read, shards)
    finally:
        index.flush()
    return report, cache


def known_items(
    paths: Sequence[str | Path],
    index: StatIndex,
    layout: Layout,
    seen: dict[str, os.stat_result] | None = None,
) -> list[list[KnownItem] | None]:
    """For each manifest, its binaries (as strings) when the stat index answers it whole
    (its manifest line, and the manifest, binaries and store entries all with the stats
    that line records), else None.

    Nothing here raises for bad input or writes anything: whatever is not answered,
    errors included, is left to `check_manifest`, which reports it.
    """
    if seen is None:
        seen = {}  # lstats of the path components of this warm
    keys: dict[str, str | None] = {}  # shard "<xx>/" or fingerprint -> its stat token
    out: list[list[KnownItem] | None] = []
    cwd = os.getcwd()
    for path in paths:
        try:
            out.append(_known(os.fspath(path), cwd, index, layout, seen, keys))
        except (OSError, ValueError, ManifestError):
            out.append(None)
    return out


def _wanted(
    role: str, arch: str, runtime: str, build_id: str | None, sha256: str | None
) -> dict[str, str | None]:
    """The metadata a binary of a manifest wants its store entry to hold (the
    dispatcher is shared by an arch's runtimes: it records none)."""
    return {
        "arch": arch,
        "runtime": None if role == "dispatcher" else runtime,
        "build_id": build_id,
        "role": role,
        "sha256": sha256,
    }


_BITS: dict[tuple[str, bool, bool], int] = {}


def _bits(role: str, has_build_id: bool, has_sha256: bool) -> int:
    """index.field_bits of what `_wanted` gives for such a binary (computed once)."""
    bits = _BITS.get((role, has_build_id, has_sha256))
    if bits is None:
        from simpler_build.cache.index import field_bits

        given = "-"  # any value: only whether a field is given counts
        wanted = _wanted(
            role, given, given, given if has_build_id else None, given if has_sha256 else None
        )
        bits = _BITS[role, has_build_id, has_sha256] = field_bits(wanted)
    return bits


#: Each role and where its five fields start in a manifest line (after arch, runtime).
_ROLE_FIELDS = tuple(zip(ROLES, (2, 7, 12), strict=True))


def _known(
    path: str,
    cwd: str,
    index: StatIndex,
    layout: Layout,
    seen: dict[str, os.stat_result],
    keys: dict[str, str | None],
) -> list[KnownItem] | None:
    st = os.stat(path)
    fields = index.manifest(st) if stat.S_ISREG(st.st_mode) else None
    if fields is None:
        return None
    arch, runtime = fields[0], fields[1]
    manifest = path if os.path.isabs(path) else os.path.join(cwd, path)
    here = os.path.abspath(os.path.dirname(path))
    items = []
    for role, at in _ROLE_FIELDS:
        rel, fp, binary_key, shard_key, meta_key = fields[at : at + 5]
        full = binary_path_str(path, here, rel, "", seen)
        bst = seen.get(full)
        # The binary itself, not through a symlink, with the stat it was checked under:
        # anything else (a symlink, a replaced file, a missing one) is planned.
        if bst is None or not stat.S_ISREG(bst.st_mode) or stat_token(bst) != binary_key:
            return None
        # The entry: its shard directory (keyed "<xx>/") and metadata file (keyed by
        # the fingerprint), each lstat'ed once per warm.
        shard = f"{fp[:2]}/"
        token = keys.get(shard, "")
        if token == "":
            token = keys[shard] = _key_of(layout.shard_str(fp), stat.S_ISDIR)
        if token != shard_key:
            return None
        token = keys.get(fp, "")
        if token == "":
            token = keys[fp] = _key_of(layout.meta_str(fp), stat.S_ISREG)
        if token != meta_key:
            return None
        items.append((manifest, arch, runtime, fp, full, layout.object_str(fp), role))
    return items


def _key_of(path: str, kind: Callable[[int], bool]) -> str | None:
    """The stat token of `path` (lstat) when it is of that kind, else None."""
    st = _lstat(path)
    return stat_token(st) if st is not None and kind(st.st_mode) else None


__all__ = [
    "WarmItem",
    "WarmReport",
    "WarmTask",
    "apply",
    "check_manifest",
    "collect_manifests",
    "known_items",
    "plan",
    "warm",
    "warm_root",
]
