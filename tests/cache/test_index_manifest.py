"""Manifest lines of the stat index: an unchanged manifest is not parsed again, and
nothing that changed is ever answered from the index (issue 9, warm on 1,000 manifests).

The promises (cache/FORMAT.md, "Stat index"):

- a fresh process warming an unchanged, recorded build opens no manifest, and
  imports neither json nor the store;
- a manifest rewritten (even with its old size and mtime), replaced or reached
  through a symlink out of its tree, and a binary rewritten, replaced by a
  symlink or removed, are all checked again -- with the same report or the same
  error a warm without the index gives;
- a torn or damaged manifest line is ignored (a re-parse, never a wrong answer);
- a manifest too recent to trust is not recorded (git's racy rule);
- several processes warming and recording at once agree and leave an index that
  answers every manifest.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cache_helpers import blob, make_build, run_env, write_manifest

from simpler_build.cache.errors import FingerprintMismatch, SourceError
from simpler_build.cache.fingerprint import clear_memo
from simpler_build.cache.index import INDEX_NAME, RACY_NS, StatIndex
from simpler_build.cache.layout import Layout
from simpler_build.cache.store import ArtifactCache
from simpler_build.cache.warm import apply, collect_manifests, known_items, plan, warm
from simpler_build.manifest import MANIFEST_NAME, find_manifests


def _trusting(cache_dir: Path) -> ArtifactCache:
    """A cache whose stat index trusts every file (its clock is far ahead)."""
    cache = ArtifactCache(cache_dir)
    cache._index = StatIndex(cache.root, clock=lambda: 2**62)
    return cache


def _recorded(tmp_path: Path, cache_dir: Path) -> Path:
    """A 4-manifest build, warmed and then recorded in the index (binaries, entries and
    manifests)."""
    build = tmp_path / "build"
    make_build(build, size=20_000)
    warm(ArtifactCache(cache_dir), [build])
    clear_memo()
    warm(_trusting(cache_dir), [build])
    clear_memo()
    return build


def _known(build: Path, cache_dir: Path) -> list[bool]:
    """Which manifests of `build` a fresh index answers whole."""
    paths = collect_manifests([build])
    index = StatIndex(cache_dir)
    return [items is not None for items in known_items(paths, index, Layout(cache_dir))]


def _reports_agree(build: Path, cache_dir: Path) -> None:
    """`warm` (which asks the index first) reports exactly what plan + apply report."""
    clear_memo()
    via_index = warm(ArtifactCache(cache_dir), [build]).to_json()
    clear_memo()
    cache = ArtifactCache(cache_dir)
    without = apply(cache, plan([build])).to_json()
    assert via_index == without


def test_a_recorded_build_is_answered_whole_and_reports_as_plan_and_apply_do(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = _recorded(tmp_path, cache_dir)
    lines = (cache_dir / INDEX_NAME).read_text().splitlines()
    assert sum(line.startswith("manifest ") for line in lines) == 4
    assert _known(build, cache_dir) == [True] * 4
    _reports_agree(build, cache_dir)


_AUDITED_WARM = r"""
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from simpler_build.cli import main
code = main(["cache", "warm", "-v", sys.argv[1]])
heavy = [m for m in ("json", "threading", "simpler_build.cache.store",
                     "simpler_build.remote") if m in sys.modules]
import json
sys.stderr.write("\nOPENED " + json.dumps({"opened": opened, "heavy": heavy}) + "\n")
raise SystemExit(code)
"""


def test_a_fresh_process_opens_no_manifest_and_loads_no_json_or_store(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = _recorded(tmp_path, cache_dir)
    proc = subprocess.run(
        [sys.executable, "-c", _AUDITED_WARM, str(build)],
        capture_output=True,
        text=True,
        env=run_env(cache_dir),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warm: 0 added, 12 already present" in proc.stdout
    assert proc.stdout.count("present  ") == 12  # -v: a line per binary, as without the index
    seen = json.loads(proc.stderr.rpartition("\nOPENED ")[2])
    manifests = {str(m.absolute()) for m in find_manifests(build)}
    assert manifests.isdisjoint(os.path.abspath(p) for p in seen["opened"])
    assert seen["heavy"] == []


def test_a_rewritten_manifest_is_read_again_even_with_its_old_size_and_mtime(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = _recorded(tmp_path, cache_dir)
    path = build / "a5" / "host_build_graph" / MANIFEST_NAME
    st = os.stat(path)
    text = path.read_text()
    data = json.loads(text)
    data["arch"] = "a6"  # same length, another arch
    new = json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert len(new) == len(text)
    path.write_text(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as recorded
    paths = collect_manifests([build])
    known = _known(build, cache_dir)
    assert [p for p, k in zip(paths, known, strict=True) if not k] == [path]
    _reports_agree(build, cache_dir)
    report = warm(ArtifactCache(cache_dir), [build])
    assert {i.arch for i in report.present if i.manifest == path.absolute()} == {data["arch"]}


def test_a_replaced_or_symlinked_binary_is_checked_again(tmp_path: Path, cache_dir: Path) -> None:
    build = _recorded(tmp_path, cache_dir)
    runtime = build / "a2a3" / "tensormap_and_ringbuffer"
    inner = runtime / "libsimpler_inner_tensormap_and_ringbuffer.so"
    # The same bytes under a new inode, reached through a symlink inside the tree.
    copy = runtime / "inner-copy.so"
    shutil.copyfile(inner, copy)
    inner.unlink()
    inner.symlink_to(copy.name)
    assert _known(build, cache_dir) == [True, False, True, True]
    _reports_agree(build, cache_dir)
    # Replaced by other bytes: the manifest no longer matches, with or without the index.
    inner.unlink()
    inner.write_bytes(blob(99, 20_000))
    assert _known(build, cache_dir) == [True, False, True, True]
    with pytest.raises(FingerprintMismatch, match="does not match"):
        warm(ArtifactCache(cache_dir), [build])
    inner.unlink()
    assert _known(build, cache_dir) == [True, False, True, True]
    with pytest.raises(SourceError, match="missing"):
        warm(ArtifactCache(cache_dir), [build])


def test_a_runtime_directory_swapped_for_a_symlink_out_of_the_tree_is_refused(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The manifest and its binaries, byte for byte and inode for inode, now reached
    through a symlink that leaves the tree: the index must not vouch for them."""
    build = _recorded(tmp_path, cache_dir)
    runtime = build / "a5" / "tensormap_and_ringbuffer"
    outside = tmp_path / "elsewhere"
    os.rename(runtime, outside)  # the files keep their inodes and stats
    runtime.symlink_to(outside)
    manifest = runtime / MANIFEST_NAME
    with pytest.raises(SourceError, match="through a symlink"):
        warm(ArtifactCache(cache_dir), [manifest])
    assert known_items([manifest], StatIndex(cache_dir), Layout(cache_dir)) == [None]


def test_a_torn_or_damaged_manifest_line_costs_a_parse_never_a_wrong_answer(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = _recorded(tmp_path, cache_dir)
    index = cache_dir / INDEX_NAME
    lines = index.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("manifest "))
    last = max(i for i, line in enumerate(lines) if line.startswith("manifest "))
    # A damaged field (the check no longer matches) and a torn last line.
    lines[first] = lines[first].replace(" a2a3 ", " a5xx ", 1).replace(" a5 ", " a2a3 ", 1)
    lines[last] = lines[last][: len(lines[last]) // 2] + "\n"
    index.write_text("".join(lines))
    assert _known(build, cache_dir).count(False) == 2
    _reports_agree(build, cache_dir)


def test_a_manifest_too_recent_to_trust_is_not_recorded(tmp_path: Path, cache_dir: Path) -> None:
    """Everything else settled long ago by the index's clock; the manifests' mtime is
    within the racy window of it, so no manifest line may be written."""
    build = _recorded(tmp_path, cache_dir)
    clock = time.time_ns() + 1000 * RACY_NS
    for m in find_manifests(build):
        os.utime(m, ns=(clock - 1, clock - 1))  # a new key, and a racy one
    cache = ArtifactCache(cache_dir)
    cache._index = StatIndex(cache.root, clock=lambda: clock)
    clear_memo()
    report = warm(cache, [build])
    assert report.counts() == (0, 12)
    assert _known(build, cache_dir) == [False] * 4
    clear_memo()
    warm(_trusting(cache_dir), [build])  # once settled, they are recorded
    assert _known(build, cache_dir) == [True] * 4


def test_a_manifest_whose_path_has_a_space_is_not_recorded_but_warms(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = tmp_path / "build"
    manifest, _fp = write_manifest(build / "a5" / "rt", "a5", "rt", blob(5, 20_000))
    data = json.loads(manifest.read_text())
    inner = manifest.parent / data["binaries"]["inner_so"]["path"]
    inner.rename(manifest.parent / "inner spaced.so")
    data["binaries"]["inner_so"]["path"] = "inner spaced.so"
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    warm(ArtifactCache(cache_dir), [build])
    clear_memo()
    report = warm(_trusting(cache_dir), [build])
    assert len(report.present) == 3
    text = (cache_dir / INDEX_NAME).read_text()
    assert "manifest " not in text and "present " in text
    assert _known(build, cache_dir) == [False]


def _warm_json(cache_dir: str, build: str, start: object) -> str:
    """A worker: wait for the others, warm, return the report as JSON text.  Its index
    trusts every file, so every process records what it checked."""
    from simpler_build.cache.index import StatIndex
    from simpler_build.cache.store import ArtifactCache
    from simpler_build.cache.warm import warm

    cache = ArtifactCache(cache_dir)
    cache._index = StatIndex(cache.root, clock=lambda: 2**62)
    start.wait()  # type: ignore[attr-defined]
    return json.dumps(warm(cache, [Path(build)]).to_json(), sort_keys=True)


def test_processes_warming_and_recording_at_once_agree(tmp_path: Path, cache_dir: Path) -> None:
    build = _recorded(tmp_path, cache_dir)
    (cache_dir / INDEX_NAME).unlink()  # every process finds nothing and records
    ctx = mp.get_context("spawn")
    procs = 4
    with ctx.Pool(procs) as pool:
        start = ctx.Manager().Barrier(procs)
        results = pool.starmap(_warm_json, [(str(cache_dir), str(build), start)] * procs)
    assert len(set(results)) == 1
    report = json.loads(results[0])
    assert report["added"] == [] and len(report["present"]) == 12
    # Whatever the appends' interleaving, the index now answers every manifest.
    assert _known(build, cache_dir) == [True] * 4
    _reports_agree(build, cache_dir)


def _walk_sorted(root: Path) -> list[Path]:
    """What find_manifests returned before it walked with strings: os.walk, sorted Paths."""
    return sorted(
        Path(top, MANIFEST_NAME)
        for top, dirs, files in os.walk(root)
        if MANIFEST_NAME in files or MANIFEST_NAME in dirs
    )


def test_find_manifests_finds_and_orders_as_os_walk_and_sorted_paths(tmp_path: Path) -> None:
    """Component order, not string order ("b" before "b-c" although "-" < "/"); symlinked
    directories are not entered; a directory of that name is reported and entered."""
    root = tmp_path / "tree"
    for rel in ("b/x", "b-c/x", "b/x/deeper", "a", "z/runtime_binaries.json"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel in ("b/x", "b-c/x", "b/x/deeper", "a", "z/runtime_binaries.json"):
        (root / rel / MANIFEST_NAME).write_text("{}")
    (root / "link").symlink_to(root / "b")  # listed by os.walk, never entered
    (root / "b" / "dangling").symlink_to(tmp_path / "nowhere")
    for given in (root, Path(f"{root}/"), Path(os.path.relpath(root))):
        assert find_manifests(given) == _walk_sorted(given)
    assert find_manifests(root).index(root / "b" / "x" / MANIFEST_NAME) < find_manifests(
        root
    ).index(root / "b-c" / "x" / MANIFEST_NAME)


def test_a_report_with_answered_items_reads_counts_pickles_and_compares_as_made_items(
    tmp_path: Path, cache_dir: Path
) -> None:
    import pickle

    build = _recorded(tmp_path, cache_dir)
    report = warm(ArtifactCache(cache_dir), [build])
    assert report.counts() == (0, 12)
    again = pickle.loads(pickle.dumps(report))
    assert again == report and again.present == report.present
    assert all(isinstance(i.source, Path) and isinstance(i.cache_path, Path) for i in again.present)
    assert report.present[0].manifest.is_absolute()


def test_an_object_removed_or_metadata_edited_in_place_is_checked_again(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The manifest line vouches for an entry through its shard directory (an object is
    only created, replaced or removed by a rename or unlink there) and its metadata
    file's own stat (which an edit in place changes, though the directory's does not)."""
    build = _recorded(tmp_path, cache_dir)
    manifest = build / "a5" / "host_build_graph" / MANIFEST_NAME
    inner = json.loads(manifest.read_text())["binaries"]["inner_so"]["fingerprint"]
    layout = Layout(cache_dir)
    layout.object_path(inner).unlink()
    assert _known(build, cache_dir) == [True, True, False, True]
    report = warm(ArtifactCache(cache_dir), [build])
    assert [i.fingerprint for i in report.added] == [inner]
    clear_memo()
    warm(_trusting(cache_dir), [build])  # recorded again
    assert _known(build, cache_dir) == [True] * 4
    meta_path = layout.meta_path(inner)
    meta = json.loads(meta_path.read_text())
    meta.update(runtime=None, role=None)
    os.chmod(meta_path, 0o644)
    with open(meta_path, "r+") as f:  # in place: same inode, the directory untouched
        f.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        f.truncate()
    assert _known(build, cache_dir) == [True, True, False, True]
    warm(ArtifactCache(cache_dir), [build])
    entry = ArtifactCache(cache_dir).entry(inner)
    assert entry is not None and (entry.runtime, entry.role) == ("host_build_graph", "inner_so")


def test_a_tree_line_answers_the_walk_until_a_directory_changes(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The walk of a build directory is recorded (every directory's stat, taken before
    it is listed); a manifest added or removed anywhere changes a directory's stat, so
    the tree is walked again and the report follows the build."""
    build = _recorded(tmp_path, cache_dir)
    root = str(build.absolute())
    assert StatIndex(cache_dir).tree(root) is not None
    assert warm(ArtifactCache(cache_dir), [build]).counts() == (0, 12)
    # A new runtime (new directory under an arch) and a removed one.
    write_manifest(build / "a5" / "extra_runtime", "a5", "extra_runtime", blob(7, 20_000))
    (build / "a2a3" / "host_build_graph" / MANIFEST_NAME).unlink()
    expected = _walk_sorted(build)
    assert [Path(p) for p in collect_manifests([build])] == expected
    report = warm(ArtifactCache(cache_dir), [build])
    assert sorted({i.manifest for i in report.added + report.present}) == sorted(
        m.absolute() for m in expected
    )
    # What the stat index now answers is the new tree, once it has settled.
    clear_memo()
    warm(_trusting(cache_dir), [build])
    assert warm(ArtifactCache(cache_dir), [build]).counts() == (0, 12)


def test_a_tree_too_recent_to_trust_is_not_recorded(tmp_path: Path, cache_dir: Path) -> None:
    build = tmp_path / "build"
    make_build(build, size=20_000)
    cache = ArtifactCache(cache_dir)
    newest = max(os.stat(d).st_ctime_ns for d in [build, *build.rglob("*")] if d.is_dir())
    cache._index = StatIndex(cache.root, clock=lambda: newest + RACY_NS - 1)
    warm(cache, [build])
    assert StatIndex(cache_dir).tree(str(build.absolute())) is None
    clear_memo()
    warm(_trusting(cache_dir), [build])
    assert StatIndex(cache_dir).tree(str(build.absolute())) is not None
