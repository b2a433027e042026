"""The stat index lets a warm of an unchanged build open nothing, and never lies.

On a warm cache, each binary a manifest names costs `warm` a stat (the index
answers its fingerprint and that it passed the ELF check) and two lstats (the
index knows its entry is published with complete metadata).  The promises:

- a fresh process warming an unchanged, already-recorded build opens no
  binary and no metadata file (an audit hook sees every `open`);
- whatever changed since -- a source rewritten, metadata replaced with fewer
  fields, an entry evicted -- is checked again: the index can only save work;
- entries too recent to trust (git's racy rule) are not recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import blob, make_build, run_env, write_manifest

from simpler_build.cache.errors import SourceError
from simpler_build.cache.fingerprint import clear_memo
from simpler_build.cache.index import INDEX_NAME, RACY_NS, StatIndex
from simpler_build.cache.store import ArtifactCache
from simpler_build.cache.warm import plan, warm
from simpler_build.manifest import find_manifests, load_manifest


def _trusting(cache_dir: Path) -> ArtifactCache:
    """A cache whose stat index trusts every file (its clock is far ahead): what a
    later process sees once the files have settled, without waiting 2 s."""
    cache = ArtifactCache(cache_dir)
    far = os.stat(cache_dir).st_ctime_ns + 10**6 * RACY_NS if cache_dir.exists() else 2**62
    cache._index = StatIndex(cache.root, clock=lambda: far)
    return cache


def _warm_and_record(build: Path, cache_dir: Path) -> None:
    warm(ArtifactCache(cache_dir), [build])  # fill
    clear_memo()
    warm(_trusting(cache_dir), [build])  # record fingerprints, ELF checks and entries
    clear_memo()


_AUDITED_WARM = r"""
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from simpler_build.cli import main
code = main(["cache", "warm", "--json", sys.argv[1]])
sys.stderr.write("\nOPENED " + json.dumps(opened) + "\n")
raise SystemExit(code)
"""


def test_a_fresh_process_warming_an_unchanged_build_opens_no_binary_or_metadata(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = tmp_path / "build"
    make_build(build, size=20_000)
    _warm_and_record(build, cache_dir)
    proc = subprocess.run(
        [sys.executable, "-c", _AUDITED_WARM, str(build)],
        capture_output=True,
        text=True,
        env=run_env(cache_dir),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["present"]) == 12 and report["added"] == []
    opened = json.loads(proc.stderr.rpartition("\nOPENED ")[2])
    binaries = {
        str(b.path) for m in find_manifests(build) for b in load_manifest(m).binaries.values()
    }
    assert binaries.isdisjoint(opened)
    assert not [p for p in opened if p.startswith(str(cache_dir / "v1"))]
    assert str(cache_dir / INDEX_NAME) in opened  # the index was what answered


def test_replaced_metadata_with_fewer_fields_is_read_and_filled_again(
    tmp_path: Path, cache_dir: Path
) -> None:
    build = tmp_path / "build"
    make_build(build, size=20_000)
    _warm_and_record(build, cache_dir)
    manifest = load_manifest(build / "a5" / "host_build_graph")
    fp = manifest.inner_so.fingerprint
    cache = ArtifactCache(cache_dir)
    meta_path = cache.layout.meta_path(fp)
    meta = json.loads(meta_path.read_text())
    meta.update(arch=None, runtime=None, build_id=None, role=None, sha256=None)
    tmp = meta_path.with_name("replacement.json")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.rename(tmp, meta_path)  # replaced by a rename, as the store itself does
    report = warm(_trusting(cache_dir), [build])
    assert len(report.present) == 12
    entry = ArtifactCache(cache_dir).entry(fp)
    assert entry is not None
    assert (entry.arch, entry.runtime, entry.role) == ("a5", "host_build_graph", "inner_so")
    assert entry.sha256 == manifest.inner_so.sha256


def test_an_evicted_entry_is_added_again(tmp_path: Path, cache_dir: Path) -> None:
    build = tmp_path / "build"
    make_build(build, size=20_000)
    _warm_and_record(build, cache_dir)
    assert ArtifactCache(cache_dir).clear() == 8
    report = warm(_trusting(cache_dir), [build])
    assert len(report.added) == 8 and len(report.present) == 4  # shared binaries: once
    assert ArtifactCache(cache_dir).verify().checked == 8


def test_a_rewritten_binary_is_checked_again_elf_header_included(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A binary rebuilt in place (new ctime, and a manifest naming its new fingerprint)
    gets no help from the index: its new content must still be an ELF shared object."""
    build = tmp_path / "build"
    make_build(build, size=20_000)
    _warm_and_record(build, cache_dir)
    write_manifest(build / "a5" / "host_build_graph", "a5", "host_build_graph", b"#!/bin/sh\n")
    with pytest.raises(SourceError, match="is not an ELF file"):
        plan([build], _trusting(cache_dir))


def test_elf_flag_needs_the_same_stat_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(blob(1, 4096))
    st = os.stat(path)
    index = StatIndex(tmp_path, clock=lambda: st.st_ctime_ns + 10 * RACY_NS)
    fp = "0123456789abcdef"
    index.record(st, st, fp, elf=True)
    index.flush()
    fresh = StatIndex(tmp_path)
    assert fresh.lookup(st) == fp and fresh.elf_checked(st, fp)
    assert not fresh.elf_checked(st, "fedcba9876543210")
    path.write_bytes(blob(2, 4096))
    assert not StatIndex(tmp_path).elf_checked(os.stat(path), fp)


def test_entries_too_recent_to_trust_are_not_recorded(tmp_path: Path, cache_dir: Path) -> None:
    build = tmp_path / "build"
    make_build(build, size=20_000)
    cache = ArtifactCache(cache_dir)
    warm(cache, [build])
    files = [p for p in cache.layout.objects.rglob("*") if p.is_file()]
    oldest = min(min(os.stat(p).st_mtime_ns, os.stat(p).st_ctime_ns) for p in files)
    racy = ArtifactCache(cache_dir)  # every object and metadata file is too recent
    racy._index = StatIndex(cache.root, clock=lambda: oldest + RACY_NS - 1)
    clear_memo()
    warm(racy, [build])
    lines = (cache_dir / INDEX_NAME).read_text() if (cache_dir / INDEX_NAME).exists() else ""
    assert "present" not in lines
