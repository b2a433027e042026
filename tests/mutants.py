#!/usr/bin/env python3
"""Curated mutants: deliberate bugs in the promises of docs/architecture.md, each with the tests
that must catch it.

    python tests/mutants.py                 # run every mutant; exit 1 if one survives
    python tests/mutants.py --list [--json] # what is in the list
    python tests/mutants.py NAME... [--json] [-j N] [--keep]

A mutant is one or more exact text replacements in one file (each `old` must
occur exactly once, or the run stops before doing anything: a mutant that no
longer applies is a list to update, not a pass).  Each runs in a scratch copy
of the tree, where Python imports the copy's code (the package is installed
editable from the real tree, so the copy gets links matching pyproject's
package-dir mapping and goes first on PYTHONPATH).  Mutants of Python share
one build of the C binaries (SIMPLER_TEST_BUILD_DIR); a mutant of C or the
build rebuilds in its copy.  Only the paired tests run, in parallel, after a
baseline run of the same tests on the unmutated copy.

Exit status: 0 every mutant killed, 1 a mutant survived, 2 the run itself
failed (stale mutant text, a mutant that does not build, a failing baseline).

When an issue adds a promise, it adds a mutant here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests import compiler_cache  # noqa: E402  (the repository root goes on sys.path first)

#: Suffixes and paths whose change needs a rebuild of the C binaries.
BUILD_SUFFIXES = (".c", ".cpp", ".h", ".map")
BUILD_NAMES = ("SConstruct", "SConscript")
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    ".setuptools-build",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
)
#: The scratch copy's import root: holds only the `simpler_build` link (see scratch_copy).
IMPORT_DIR = ".import"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository root
    edits: tuple[tuple[str, str], ...]  # (old, new), applied in order
    tests: tuple[str, ...]  # pytest node ids (a function name covers all its parameters)
    promise: str  # what the mutation breaks
    survivor: bool = False  # passed the whole suite in issue 14's audit

    @property
    def needs_build(self) -> bool:
        path = Path(self.file)
        return (
            path.suffix in BUILD_SUFFIXES
            or path.name in BUILD_NAMES
            or path.parts[0] == "site_scons"
        )


def m(
    name: str,
    file: str,
    old: str,
    new: str,
    tests: tuple[str, ...],
    promise: str,
    survivor: bool = False,
) -> Mutant:
    """A mutant of one replacement (the common case)."""
    return Mutant(name, file, ((old, new),), tests, promise, survivor)


# Test modules, abbreviated.
CI = "tests/cache/test_invariants_cache.py::"
CE = "tests/cache/test_cache_errors.py::"
CC = "tests/cache/test_cache_corruption.py::"
CK = "tests/cache/test_cache_crash.py::"
CV = "tests/cache/test_cache_eviction.py::"
RI = "tests/runtime/test_invariants_runtime.py::"
RA = "tests/runtime/test_invariants_abi.py::"
RB = "tests/runtime/test_runtime_bootstrap.py::"
RP = "tests/runtime/test_runtime_prepared.py::"
RL = "tests/runtime/test_runtime_lifecycle.py::"
RS = "tests/runtime/test_runtime_sim.py::"
RM = "tests/runtime/test_runtime_multiprocess.py::"
SD = "tests/scons/test_invariants_dispatcher.py::"
SI = "tests/scons/test_dispatcher_init.py::"
SM = "tests/scons/test_invariants_manifest.py::"
RR = "tests/runtime/test_reliability_runtime.py::"
RX = "tests/runtime/test_runtime_execution.py::"
RLP = "tests/runtime/test_launch_path.py::"
RT = "tests/runtime/test_runtime_scheduler.py::"
CP = "tests/cache/test_perf_invariants.py::"
CW = "tests/cache/test_cache_warm_cli.py::"
FP = "tests/cache/test_cli_fast_parse.py::"
IW = "tests/cache/test_index_warm.py::"
IM = "tests/cache/test_index_manifest.py::"
CF = "tests/cache/test_config.py::"
CH = "tests/cache/test_cli_habits.py::"
CR = "tests/cache/test_cli_root_bound.py::"
TC = "tests/scons/test_build_toolchain.py::"
RW = "tests/runtime/test_runtime_worker.py::"
RU = "tests/runtime/test_runtime_usage_errors.py::"
RPA = "tests/runtime/test_runtime_path_a.py::"
RTOPO = "tests/runtime/test_runtime_topology.py::"
RGC = "tests/runtime/test_device_gc.py::"
WHEEL = (
    "tests/packaging/test_wheel.py::test_wheel_installs_builds_warms_and_runs_away_from_the_checkout",
)
LEAN = "tests/cache/test_lean_imports.py::"
LEAN_START = "tests/runtime/test_runtime_lean_start.py::"
RREC = "tests/runtime/test_runtime_records.py::"
MPATHS = "tests/cache/test_manifest_paths.py::"
ERR = "tests/test_errors.py::"
LOG = "tests/test_logging.py::"
REPRO = "tests/scons/test_reproducible.py::"

DURABLE = (CI + "test_put_writes_fsyncs_renames_then_fsyncs_the_directory",)
MEMO_MTIME = (CI + "test_memo_hits_an_unchanged_file_and_follows_a_same_size_rewrite",)
MEMO_SIZE = (CI + "test_memo_follows_a_new_size_under_the_old_mtime",)
COPY_CHECK = (CI + "test_put_refuses_a_source_that_changes_after_it_was_fingerprinted",)
LIVE_WRITER = (CI + "test_gc_leaves_a_live_writer_alone_then_the_writer_finishes",)
FINALIZE = (RI + "test_finalize_destroys_its_stream_unloads_its_binary_and_drops_its_handle",)
STAGING = (RI + "test_a_runner_that_bootstrapped_holds_what_one_that_skipped_holds",)
OUT_OF_ORDER = (RI + "test_host_build_graph_follows_edges_not_array_order",)
WAVES = (RI + "test_independent_chains_run_wave_by_wave",)
ABI = (
    RA + "test_every_struct_size_and_field_offset_matches_the_header",
    RA + "test_constants_and_enums_match_the_header",
)
MANIFEST_FP = (SM + "test_load_manifest_refuses_a_malformed_fingerprint",)
DISPATCHER_ORDER = (SD + "test_init_fsyncs_the_temp_file_renames_then_fsyncs_the_directory",)
DISPATCHER_ATOMIC = (SD + "test_init_replaces_a_bad_file_with_a_new_inode",)
UNFINALIZED = (RR + "test_an_unfinalized_runner_warns_and_leaves_nothing_once_collected",)
CTRL_C = (
    RR + "test_finalize_cut_short_by_ctrl_c_is_finished_by_the_next_call",
    RR + "test_ctrl_c_anywhere_in_finalize_then_finalize_again_releases_everything",
)
KILLED = (RR + "test_a_process_killed_mid_bootstrap_leaves_nothing_the_next_one_keeps",)
LIVE_DISPATCHER = (RR + "test_a_live_writers_temp_file_is_left_alone_until_it_dies",)

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "runtime-imports-the-worker",
        "runtime/__init__.py",
        (
            (
                "_WORKER_NAMES = frozenset(",
                "from .worker import WorkerRunner  # noqa: F401\n\n_WORKER_NAMES = frozenset(",
            ),
        ),
        ("tests/cache/test_lean_imports.py::test_runtime_import_and_binaries_load_no_pyelftools",),
        "the in-process runtime's import never loads the worker (multiprocessing, sockets)",
    ),
    Mutant(
        "launch-record-freed-twice",
        "runtime/sim/device.py",
        (
            (
                "        ptr, self.ptr = self.ptr, 0\n        if ptr:\n"
                "            native.helper().simlaunch_launch_free(ptr)\n",
                "        ptr = self.ptr\n        if ptr:\n"
                "            native.helper().simlaunch_launch_free(ptr)\n"
                "            self.ptr = 0\n",
            ),
        ),
        (
            "tests/runtime/test_launch_path.py::"
            "test_a_release_interrupted_after_the_c_call_never_repeats_it",
        ),
        "a free interrupted by Ctrl-C is never repeated (no double free of a launch block)",
    ),
    Mutant(
        "launch-thread-stopped-twice",
        "runtime/sim/device.py",
        (
            (
                "        ptr, self.ptr = self.ptr, 0\n        if ptr:\n"
                "            native.helper().simlaunch_thread_stop(ptr)\n",
                "        ptr = self.ptr\n        if ptr:\n"
                "            native.helper().simlaunch_thread_stop(ptr)\n"
                "            self.ptr = 0\n",
            ),
        ),
        (
            "tests/runtime/test_launch_path.py::"
            "test_a_release_interrupted_after_the_c_call_never_repeats_it",
        ),
        "a stop interrupted by Ctrl-C is never repeated (no write to a thread that freed itself)",
    ),
    Mutant(
        "root-temp-lock-ignored",
        "cache/_gc.py",
        (("(age > LOCKED_TEMP_MIN_AGE and writer_gone(path))", "(False)"),),
        (CK + "test_gc_sweeps_a_killed_writers_root_temp_file_at_once_and_keeps_a_live_ones",),
        "gc leaves a killed writer's root temp file until the hour's grace is over",
    ),
    Mutant(
        "temp-file-not-locked",
        "cache/atomic.py",
        (("        fcntl.flock(fd, fcntl.LOCK_EX)\n", "        pass\n"),),
        (CK + "test_gc_sweeps_a_killed_writers_root_temp_file_at_once_and_keeps_a_live_ones",),
        "a live writer's root temp file looks dead to gc",
    ),
    # -- cache/atomic.py: temp file, fsync, rename, fsync of the directory ---------------
    m(
        "atomic-no-file-fsync",
        "cache/atomic.py",
        "            fill(fd)\n            os.fsync(fd)\n",
        "            fill(fd)\n",
        DURABLE,
        "the temp file is fsynced before the rename",
        survivor=True,
    ),
    m(
        "atomic-no-dir-fsync",
        "cache/atomic.py",
        "        raise\n    fsync_dir(directory)\n",
        "        raise\n",
        DURABLE,
        "the directory is fsynced after the rename",
        survivor=True,
    ),
    Mutant(
        "atomic-dir-fsync-before-rename",
        "cache/atomic.py",
        (
            (
                "            os.replace(temp, final)",
                "            fsync_dir(directory)\n            os.replace(temp, final)",
            ),
            ("        raise\n    fsync_dir(directory)\n", "        raise\n"),
        ),
        DURABLE,
        "the directory fsync comes after the rename, not before",
    ),
    m(
        "atomic-fsync-dir-noop",
        "cache/atomic.py",
        "    try:\n        os.fsync(fd)\n    except OSError as exc:",
        "    try:\n        pass\n    except OSError as exc:",
        DURABLE,
        "fsync_dir really fsyncs the directory",
    ),
    m(
        "atomic-publish-in-place",
        "cache/atomic.py",
        "    temp = directory / temp_name\n",
        "    temp = final\n",
        (*DURABLE, CE + "test_enospc_mid_write_leaves_no_temp_and_keeps_entries"),
        "a reader never sees a partial object: bytes go to a temp file first",
    ),
    m(
        "atomic-temp-survives-failure",
        "cache/atomic.py",
        "        with contextlib.suppress(FileNotFoundError):\n            os.unlink(temp)\n",
        "        pass\n",
        (
            CE + "test_enospc_mid_write_leaves_no_temp_and_keeps_entries",
            CI + "test_a_failed_fsync_fails_the_put_and_leaves_nothing",
        ),
        "a failed write leaves no temp file behind",
    ),
    m(
        "atomic-follows-symlinks",
        "core/files.py",
        '_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)',
        "_O_NOFOLLOW = 0",
        (CE + "test_symlinked_object_path_is_refused",),
        "a symlink planted at a cache path is refused, never followed",
    ),
    # -- cache/index.py, cache/_flock.py, cache/counters.py: cheap hits (issue 9) ----------
    m(
        "index-trusts-racy-entries",
        "cache/index.py",
        "        return now - st.st_mtime_ns >= RACY_NS and now - st.st_ctime_ns >= RACY_NS\n",
        "        return True\n",
        (CP + "test_racy_entries_are_not_recorded",),
        "an index entry too recent to trust is never recorded (git's racy rule)",
    ),
    m(
        "index-key-drops-ctime",
        "cache/index.py",
        'return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"',
        'return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} 0"',
        (CP + "test_in_place_rewrite_with_the_old_mtime_is_never_answered_from_the_index",),
        "the stat index is never fooled by a rewrite that restores size and mtime",
    ),
    m(
        "index-present-ignores-the-metadata-stat",
        "cache/index.py",
        "            and _key(meta) == known[1]\n",
        "            and True\n",
        (IW + "test_replaced_metadata_with_fewer_fields_is_read_and_filled_again",),
        "a warm answered by the stat index still sees replaced metadata (and fills it in)",
    ),
    m(
        "index-present-trusts-racy-entries",
        "cache/index.py",
        "        if not (self.trusted(obj) and self.trusted(meta)):\n",
        "        if False:\n",
        (IW + "test_entries_too_recent_to_trust_are_not_recorded",),
        "a store entry too recent to trust is never recorded in the stat index",
    ),
    m(
        "index-elf-flag-ignores-the-fingerprint",
        "cache/index.py",
        "parts[5:] == [fp, ELF_FLAG]",
        "parts[6:] == [ELF_FLAG]",
        (IW + "test_elf_flag_needs_the_same_stat_and_fingerprint",),
        "an ELF check is remembered only for the file with that stat and fingerprint",
    ),
    m(
        "warm-skips-the-elf-check-with-an-index",
        "cache/warm.py",
        "    if index is None or not index.elf_checked(st, actual):\n",
        "    if index is None:\n",
        (
            "tests/cache/test_reliability_inputs.py::test_only_elf_shared_objects_enter_the_cache",
            IW + "test_a_rewritten_binary_is_checked_again_elf_header_included",
        ),
        "only ELF shared objects enter the cache, with or without the stat index",
    ),
    m(
        "flock-keeps-an-unlinked-lock-file",
        "cache/_flock.py",
        "    if held.st_nlink == 0:\n        return False\n",
        "    return True\n",
        (CP + "test_a_waiter_that_wins_an_unlinked_lock_file_takes_the_new_one",),
        "a waiter that wins the flock of an unlinked lock file retries on the new one",
    ),
    # -- issue 9: lean entry points ---------------------------------------------------
    m(
        "warm-imports-dataclasses",
        "cache/warm.py",
        "from simpler_build.cache._record import Record\n",
        "from dataclasses import dataclass  # noqa: F401\n\n"
        "from simpler_build.cache._record import Record\n",
        (LEAN + "test_cli_commands_load_nothing_heavy_from_the_read_path",),
        "the modules of `cache warm`'s read path import no dataclasses/typing machinery",
    ),
    m(
        "cli-imports-argparse",
        "cache/cli.py",
        "from types import SimpleNamespace\n",
        "from types import SimpleNamespace\n\nimport argparse  # noqa: F401\n",
        (LEAN + "test_usual_warm_and_stats_load_no_argparse_dataclasses_or_typing",),
        "usual `cache warm` and `cache stats` load no argparse, dataclasses or typing",
    ),
    m(
        "fast-parse-accepts-split-sources",
        "cache/cli.py",
        "        sources_done = bool(sources)\n",
        "        sources_done = False\n",
        (FP + "test_forms_argparse_must_judge_are_not_fast",),
        "the argparse-free parse of `cache warm` accepts only what argparse accepts, identically",
    ),
    m(
        "binaries-import-pyelftools",
        "runtime/binaries.py",
        "import struct\n",
        "import struct\n\nimport elftools.elf.elffile  # noqa: F401\n",
        (LEAN + "test_runtime_import_and_binaries_load_no_pyelftools",),
        "the runtime's import path reads ELF headers with struct, never loading pyelftools",
    ),
    m(
        "binaries-ignore-truncated-tables",
        "runtime/binaries.py",
        "        if count and off + count * entsize > size:\n",
        "        if False:\n",
        ("tests/runtime/test_elf_header.py::test_damaged_headers_are_named",),
        "a runtime binary whose header tables end past the file is refused as truncated",
    ),
    m(
        "manifest-symlink-check-skipped",
        "core/manifest.py",
        "        if stat.S_ISLNK(st.st_mode):\n            return True\n",
        "        if not st:\n            return True\n",
        (
            MPATHS + "test_a_symlinked_directory_below_the_tree_that_leaves_it_is_refused",
            MPATHS + "test_the_runtime_directory_itself_a_symlink_out_is_refused",
        ),
        "a manifest path never leaves its tree through a symlink (lstat fast path)",
    ),
    m(
        "record-not-frozen",
        "cache/_record.py",
        "    _frozen: ClassVar[bool] = True\n",
        "    _frozen: ClassVar[bool] = False\n",
        ("tests/cache/test_records.py::test_frozen_records_refuse_assignment_and_hash_by_value",),
        "the records the cache hands out (entries, manifests) are immutable, like the dataclasses",
    ),
    m(
        "counters-fork-double-counts",
        "cache/counters.py",
        "    os.register_at_fork(after_in_child=_after_fork_in_child)\n",
        "    pass\n",
        (CP + "test_multiprocessing_children_flush_and_a_fork_does_not_double_count",),
        "a forked child never writes its parent's unwritten counts again",
    ),
    # -- cache/fingerprint.py: the memo key and the fingerprint's shape ------------------
    # The key is (path, dev, inode, size, mtime_ns, ctime_ns): a mutant zeroes fields in
    # both the lookup key and the key stored after the read.
    Mutant(
        "memo-key-drops-mtime-and-ctime",
        "cache/fingerprint.py",
        (
            ("st.st_size, st.st_mtime_ns, st.st_ctime_ns)", "st.st_size, 0, 0)"),
            ("        fst.st_mtime_ns,\n        fst.st_ctime_ns,\n", "        0,\n        0,\n"),
        ),
        MEMO_MTIME,
        "a same-size rewrite with a new mtime is hashed again",
        survivor=True,
    ),
    Mutant(
        "memo-key-drops-size-and-ctime",
        "cache/fingerprint.py",
        (
            ("st.st_size, st.st_mtime_ns, st.st_ctime_ns)", "0, st.st_mtime_ns, 0)"),
            (
                "        fst.st_size,\n        fst.st_mtime_ns,\n        fst.st_ctime_ns,\n",
                "        0,\n        fst.st_mtime_ns,\n        0,\n",
            ),
        ),
        MEMO_SIZE,
        "a rewrite to a new size under the old mtime is hashed again",
        survivor=True,
    ),
    Mutant(
        "memo-key-drops-ctime",
        "cache/fingerprint.py",
        (
            ("st.st_mtime_ns, st.st_ctime_ns)", "st.st_mtime_ns, 0)"),
            ("        fst.st_ctime_ns,\n", "        0,\n"),
        ),
        (
            "tests/cache/test_fingerprint_memo_ctime.py::"
            "test_in_place_rewrite_with_the_old_mtime_is_hashed_again",
        ),
        "a rewrite that restores size and mtime is hashed again",
    ),
    m(
        "memo-never-hits",
        "cache/fingerprint.py",
        "        cached = _memo.get(key)\n",
        "        cached = None\n",
        MEMO_MTIME,
        "an unchanged file is read and hashed once per process",
    ),
    m(
        "fingerprint-accepts-upper-case",
        "cache/fingerprint.py",
        'not text.strip("0123456789abcdef")',
        'not text.strip("0123456789abcdefABCDEF")',
        MANIFEST_FP,
        "a fingerprint is 16 lowercase hex digits",
    ),
    m(
        "fingerprint-any-length",
        "cache/fingerprint.py",
        "    return len(text) == FINGERPRINT_HEX_DIGITS and not text.strip(",
        "    return not text.strip(",
        MANIFEST_FP,
        "a fingerprint is exactly 16 hex digits",
    ),
    # -- core/manifest.py (simpler_build.manifest) --------------------------------------------
    m(
        "manifest-accepts-malformed-fingerprint",
        "core/manifest.py",
        "        if not is_fingerprint(fp):\n",
        "        if False:\n",
        MANIFEST_FP,
        "load_manifest itself refuses a malformed fingerprint",
        survivor=True,
    ),
    # -- cache/store.py: verified reads and writes, under the entry lock -----------------
    m(
        "put-skips-copy-hash-check",
        "cache/store.py",
        "            if hasher.hexdigest() != fp:\n",
        "            if False:\n",
        COPY_CHECK,
        "put hashes what it copies: a source changed since fingerprinting fails",
        survivor=True,
    ),
    m(
        "put-keeps-orphan-metadata",
        "cache/store.py",
        "            if not os.path.lexists(self.layout.object_path(fp)):\n"
        "                os.unlink(self.layout.meta_path(fp))\n",
        "            if not os.path.lexists(self.layout.object_path(fp)):\n                pass\n",
        (*COPY_CHECK, CE + "test_enospc_mid_write_leaves_no_temp_and_keeps_entries"),
        "a failed put leaves no metadata without an object",
    ),
    m(
        "get-serves-unverified-bytes",
        "cache/store.py",
        "        if actual != fp:\n            self._quarantine(",
        "        if False:\n            self._quarantine(",
        (CC + "test_get_quarantines_a_corrupt_object",),
        "reads verify the fingerprint; a corrupt object is never served",
    ),
    m(
        "quarantine-moves-a-replaced-file",
        "cache/store.py",
        "                if seen is not None and (now.st_dev, now.st_ino)"
        " != (seen.st_dev, seen.st_ino):\n",
        "                if False:\n",
        (CI + "test_quarantine_leaves_an_object_replaced_after_it_was_examined",),
        "quarantine never moves a file replaced after it was examined",
        survivor=True,
    ),
    m(
        "put-publishes-without-entry-lock",
        "cache/store.py",
        "        with self._lock(fp):\n            existing = self._present(fp)\n",
        "        if True:\n            existing = self._present(fp)\n",
        (CI + "test_every_entry_file_is_published_under_its_entry_lock",),
        "every mutation of an entry happens under its flock",
    ),
    # -- cache/_gc.py and cache/_evict.py: gc and eviction next to live writers ----------
    m(
        "gc-removes-metadata-under-a-held-lock",
        "cache/_gc.py",
        "            if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):\n"
        "                report.orphan_meta_removed",
        "            if not os.path.lexists(lay.object_path(fp)) and _unlink(path):\n"
        "                report.orphan_meta_removed",
        LIVE_WRITER,
        "gc never removes metadata whose entry lock is held",
        survivor=True,
    ),
    m(
        "gc-unlinks-a-held-lock-file",
        "cache/_gc.py",
        "                if free and not os.path.lexists(lay.object_path(fp)) and _unlink(path):\n"
        "                    report.orphan_locks_removed",
        "                if not os.path.lexists(lay.object_path(fp)) and _unlink(path):\n"
        "                    report.orphan_locks_removed",
        LIVE_WRITER,
        "gc never unlinks a lock file someone holds",
    ),
    m(
        "gc-removes-a-live-writers-temp-file",
        "cache/_gc.py",
        "if (free or _age(path, now) > grace) and _unlink(path):",
        "if _unlink(path):",
        (CK + "test_gc_keeps_temp_files_of_a_live_writer", *LIVE_WRITER),
        "gc leaves the temp file of a writer that holds its entry lock",
    ),
    m(
        "gc-sweeps-unknown-temp-files-at-once",
        "cache/_gc.py",
        "elif _age(path, now) > grace and _unlink(path):",
        "elif _unlink(path):",
        (CK + "test_gc_removes_unrecognised_temp_files_only_after_grace",),
        "an unrecognised temp file is only swept after the grace period",
    ),
    m(
        "evict-ignores-a-held-lock",
        "cache/_evict.py",
        "        if not held:\n            return False\n",
        "        if False:\n            return False\n",
        (CV + "test_eviction_skips_an_entry_whose_lock_is_held",),
        "eviction skips an entry whose lock is held",
    ),
    m(
        "evict-most-recently-used-first",
        "cache/_evict.py",
        "key=lambda e: (e.last_used, e.created, e.fingerprint)",
        "key=lambda e: (-e.last_used, e.created, e.fingerprint)",
        (CV + "test_gc_evicts_least_recently_used_down_to_the_bound",),
        "eviction is least-recently-used first",
    ),
    m(
        "evict-the-object-just-added",
        "cache/_evict.py",
        "            if entry.fingerprint in protect:\n                continue\n",
        "            if False:\n                continue\n",
        (CV + "test_bounded_cache_evicts_on_put_and_keeps_the_new_object",),
        "a bounded put never evicts the object it just added",
    ),
    m(
        "verify-repair-does-not-quarantine",
        "cache/_verify.py",
        "bad.quarantined_to = cache._quarantine(fp, st, bad.problem)\n",
        "bad.quarantined_to = None\n",
        (CC + "test_verify_reports_and_repair_quarantines",),
        "verify --repair moves a corrupt object to quarantine",
    ),
    # -- issue 12: cache config, whole-root bound, command-line habits -----------------
    m(
        "size-suffixes-all-binary",
        "cache/config.py",
        "scale = (1024 if binary else 1000) ** _EXPONENT[unit] if unit else 1",
        "scale = 1024 ** _EXPONENT[unit] if unit else 1",
        (CW + "test_parse_size_has_ccache_suffixes",),
        "K/M/G/T are powers of 1000 and Ki/Mi/Gi/Ti powers of 1024, as in ccache",
    ),
    m(
        "max-size-zero-is-a-bound",
        "cache/config.py",
        "    return n or None\n",
        "    return n\n",
        (CF + "test_zero_means_unlimited",),
        "max_size = 0 means unlimited (ccache's -M 0), never 'evict everything'",
    ),
    m(
        "gc-max-size-zero-is-a-bound",
        "cache/cli.py",
        "else (args.max_size or None)",
        "else args.max_size",
        (CF + "test_zero_means_unlimited",),
        "gc --max-size 0 means unlimited",
    ),
    Mutant(
        "config-written-in-place",
        "cache/config.py",
        (
            (
                'tmp = path.parent / f"{TEMP_PREFIX}{CONFIG_NAME}-'
                '{os.getpid()}-{os.urandom(6).hex()}"',
                "tmp = path",
            ),
            (
                "fd = open_locked_temp(tmp)",
                "fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)",
            ),
        ),
        (CF + "test_concurrent_writers_and_readers_never_see_a_torn_file",),
        "the config file is replaced atomically: readers never see a half-written file",
    ),
    m(
        "warm-never-cleans-up",
        "cache/cli.py",
        "    cleanup = _cleanup_if_over(cache) if report.added and cache is not None else None\n",
        "    cleanup = None\n",
        (CF + "test_warm_cleans_up_automatically_when_over_max_size",),
        "a warm that takes the root over max_size cleans up, as ccache does",
    ),
    m(
        "closed-pipe-is-an-error",
        "cache/cli.py",
        "    except BrokenPipeError:\n",
        "    except ZeroDivisionError:\n",
        (CH + "test_a_closed_pipe_is_not_an_error",),
        "a closed stdout (`warm -v | head -1`) ends the command quietly with exit 0",
    ),
    m(
        "stray-arguments-blame-the-top-level",
        "core/cli.py",
        'args._parser.error(f"unrecognized arguments:',
        'parser.error(f"unrecognized arguments:',
        (CH + "test_every_subcommand_has_help_usage_and_documented_json",),
        "a bad subcommand argument shows that subcommand's usage",
    ),
    m(
        "stray-cache-arguments-blame-the-cache-level",
        "cache/cli.py",
        'inner = getattr(args, "_parser", parser)',
        "inner = parser",
        (CW + "test_cli_usage_errors_exit_2",),
        "a bad subcommand argument shows that subcommand's usage (`simpler-build cache` alone)",
    ),
    m(
        "scons-eviction-ignores-the-push-lock",
        "cache/parts.py",
        "        if not held:\n            return BUSY\n",
        "        if False:\n            return BUSY\n",
        (CR + "test_an_entry_being_pushed_is_not_evicted",),
        "gc never evicts an SCons CacheDir entry while a build pushes into its directory",
    ),
    m(
        "gc-leaves-the-scons-cachedir-unbounded",
        "cache/_evict.py",
        "        candidates += [(e.last_used, str(e.path), e) "
        "for e in parts.scons_entries(cache.root)]\n",
        "",
        (
            CR + "test_gc_evicts_least_recently_used_across_store_and_scons",
            CR + "test_gc_cli_bounds_the_root",
        ),
        "gc bounds the whole root, SCons CacheDir included, least recently used first",
    ),
    m(
        "stats-zero-keeps-the-counts",
        "cache/counters.py",
        "        counts: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)\n        counts.update(",
        "        counts = self.read()\n        counts.update(",
        (CH + "test_stats_zero_and_timestamps",),
        "stats --zero resets every counter and stamps stats_zeroed_timestamp",
    ),
    Mutant(
        "sim-state-in-the-cache-root",
        "core/device.py",
        (
            (
                '    return user_dir("state") / "sim"\n',
                '    return user_dir("cache") / "sim"\n',
            ),
        ),
        ("tests/test_cli_top.py::test_sim_state_defaults_to_the_user_state_dir",),
        "the simulated device's state lives outside the cache root CI saves",
    ),
    # -- runtime/runner.py: one registration, nothing leaked, finalize releases -----------
    m(
        "runner-registers-every-run",
        "runtime/runner.py",
        "        if self._aicore is None:\n",
        "        if True:\n",
        (RP + "test_two_prepared_graphs_share_one_registration",),
        "the AICore binary is registered once and the handle reused, never per run",
    ),
    m(
        "finalize-keeps-its-stream",
        "runtime/runner.py",
        "            with contextlib.suppress(sim.CannError):\n"
        "                sim.rtStreamDestroy(self.stream)\n",
        "            with contextlib.suppress(sim.CannError):\n                pass\n",
        FINALIZE,
        "finalize destroys the stream it created",
        survivor=True,
    ),
    m(
        "finalize-keeps-the-aicore-handle",
        "runtime/runner.py",
        "            self._aicore = None\n            self._teardown.run()\n",
        "            self._teardown.run()\n",
        FINALIZE,
        "finalize drops the AICore handle",
        survivor=True,
    ),
    m(
        "finalize-skips-unload",
        "runtime/runner.py",
        "            self.op.finalize()\n            self.op = None\n",
        "            self.op = None\n",
        FINALIZE,
        "finalize unloads the AICPU binary itself",
    ),
    m(
        "prepare-leaks-on-failure",
        "runtime/runner.py",
        "                for addr in blocks:\n"
        "                    with contextlib.suppress(sim.CannError):\n"
        "                        sim.rtFree(self.ctx, addr)\n",
        "                pass\n",
        (RI + "test_prepare_that_runs_out_of_hbm_frees_what_it_allocated",),
        "a prepare that fails after allocating leaves hbm_in_use unchanged",
        survivor=True,
    ),
    m(
        "host-deps-begin-at-zero",
        "runtime/runner.py",
        "            t.dep_begin = dep_begin\n",
        "            t.dep_begin = 0\n",
        (RP + "test_host_task_array_encodes_the_predecessor_lists",),
        "each host_build_graph task points at its own predecessor list",
    ),
    # -- runtime/aicpu_op.py: the bootstrap path -------------------------------------------
    m(
        "bootstrap-leaks-staging-buffers",
        "runtime/aicpu_op.py",
        "            for addr in blocks:\n"
        "                with contextlib.suppress(sim.CannError):\n"
        "                    sim.rtFree(self.ctx, addr)\n",
        "            pass\n",
        STAGING,
        "a bootstrap frees its staging buffers",
        survivor=True,
    ),
    m(
        "bootstrap-again-in-process",
        "runtime/aicpu_op.py",
        "                if self.key in _bootstrapped:\n",
        "                if False:\n",
        (RB + "test_two_runners_same_runtime_one_bootstrap",),
        "a process bootstraps the same content on a device once",
    ),
    m(
        "bootstrap-ignores-the-installed-file",
        "runtime/aicpu_op.py",
        "        if not force and not self.legacy and self._probe():\n",
        "        if False:\n",
        (
            RM + "test_eight_processes_bootstrap_the_same_fingerprint",
            RTOPO + "test_a_second_process_probes_and_skips_the_bootstrap",
        ),
        "a process uploads the inner SO only when it is not installed and intact",
    ),
    m(
        "bootstrap-trusts-a-present-file",
        "runtime/aicpu_op.py",
        "        return answer == PROBE_INSTALLED\n",
        "        return answer != 0\n",
        (RI + "test_a_corrupt_preinstalled_file_is_reinstalled_without_being_trusted_first",),
        "an installed file is trusted only when it hashes to its fingerprint",
    ),
    m(
        "op-types-without-fingerprint",
        "runtime/aicpu_op.py",
        'f"simpler_aicpu_exec_{fingerprint}": AICPU_EXEC',
        '"simpler_aicpu_exec": AICPU_EXEC',
        (
            RB + "test_two_runtimes_two_bootstraps_distinct_op_types",
            RPA + "test_the_runtime_registers_through_path_a",
        ),
        "opTypes carry the fingerprint, so two runtimes never collide",
    ),
    # -- runtime/sim: the simulated device behaves like the real one where it matters -----
    m(
        "sim-teardown-keeps-context-memory",
        "runtime/sim/device.py",
        "            self.resources.pop()\n        self.device.hbm.release_owner(self)\n",
        "            self.resources.pop()\n",
        FINALIZE,
        "context teardown frees every byte the context held",
    ),
    m(
        "sim-loads-a-corrupt-preinstall",
        "runtime/sim/binary.py",
        "        if named is not None and named != actual:\n",
        "        if False:\n",
        (RS + "test_binary_load_verifies_and_refuses_op_type_collisions",),
        "a preinstalled SO whose bytes do not match its name is never dlopened",
    ),
    m(
        "sim-op-type-collision-allowed",
        "runtime/sim/binary.py",
        "            if known is not None and known[0] != fp:\n",
        "            if False:\n",
        (RS + "test_binary_load_verifies_and_refuses_op_type_collisions",),
        "an opType registered with other content is refused (507028)",
    ),
    m(
        "sim-failed-registration-keeps-driver",
        "runtime/sim/aicore.py",
        "            device.mark_broken(exc)\n",
        "            pass\n",
        (RS + "test_failed_registration_breaks_driver_until_reset",),
        "a failed AICore registration (207001) breaks the driver: 507899 until reset",
    ),
    m(
        "sim-hbm-unbounded",
        "runtime/sim/memory.py",
        "            if self.in_use + size > self.capacity:\n",
        "            if False:\n",
        (RS + "test_hbm_accounting_and_exhaustion",),
        "device memory is counted and can run out (207001)",
    ),
    m(
        "sim-loader-leaks-kernel-args",
        "runtime/sim/loader.py",
        "        finally:\n            device.hbm.free(ka_addr, ctx, CALL)\n",
        "        finally:\n            pass\n",
        STAGING,
        "the extend-kernels loader frees its KernelArgs copy",
    ),
    # -- issue 8, classes 7, 8, 3: no leftovers, no host OOM, no hang on a FIFO -----------
    Mutant(
        "runner-without-finalizer",
        "runtime/runner.py",
        (
            (
                "            self._finalizer = weakref.finalize("
                "self, _collected, self._teardown, label)\n",
                "",
            ),
            (
                "            self._finalizer.atexit = False"
                "  # nothing outlives the process: no files, no device\n",
                "",
            ),
        ),
        UNFINALIZED,
        "a runner collected without finalize() warns (ResourceWarning) and is released",
    ),
    m(
        "collected-runner-not-released",
        "runtime/runner.py",
        "    _collected_queue.append(teardown)  # safe in finalizers: atomic, takes no lock\n",
        "",
        UNFINALIZED,
        "the device state of a runner collected without finalize() is released",
    ),
    m(
        "finalize-not-resumable",
        "runtime/runner.py",
        "            self._finalized = True\n            for prepared in self._prepared:\n",
        "            if self._finalized:\n                return\n"
        "            self._finalized = True\n            for prepared in self._prepared:\n",
        CTRL_C,
        "a finalize() cut short by Ctrl-C is finished by the next call",
    ),
    m(
        "teardown-forgets-a-step-before-it-is-done",
        "runtime/runner.py",
        "            self.op.finalize()\n            self.op = None\n",
        "            op, self.op = self.op, None\n            op.finalize()\n",
        CTRL_C,
        "a teardown step is recorded as done only once it completed",
    ),
    m(
        "sim-context-release-not-resumable",
        "runtime/sim/device.py",
        "        self.alive = False\n        if not self._recorded:\n",
        "        if not self.alive:\n            return\n"
        "        self.alive = False\n        if not self._recorded:\n",
        CTRL_C,
        "a context teardown cut short by Ctrl-C is finished by the next call",
    ),
    m(
        "op-json-in-the-temp-dir",
        "runtime/aicpu_op.py",
        '        self._json = anonymous_file(f"simpler_aicpu_{self.fingerprint}.json", data)\n'
        "        return Path(path_of(self._json))\n",
        "        import tempfile\n\n"
        '        fd, name = tempfile.mkstemp(prefix="simpler_aicpu_", suffix=".json")\n'
        "        os.write(fd, data)\n        os.close(fd)\n        return Path(name)\n",
        UNFINALIZED + KILLED,
        "the op JSON has no name on disk: nothing to leave behind",
    ),
    Mutant(
        "so-copy-in-the-temp-dir",
        "runtime/sim/sharedlib.py",
        (
            (
                "    fd = os.memfd_create(label, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)\n",
                "    path = f\"{__import__('tempfile').gettempdir()}/{label}.{id(data)}.so\"\n"
                "    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o700)\n",
            ),
            ("        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)\n", ""),
        ),
        KILLED,
        "the loader's private copy of an SO has no name on disk",
    ),
    Mutant(
        "sharedlib-reuses-a-held-name",
        "runtime/sim/sharedlib.py",
        (
            ("        if not registered(path_of(copy)):\n", "        if True:\n"),
            (
                "            if not copy.closed and registered(path_of(copy)):\n",
                "            if False:\n",
            ),
        ),
        (RR + "test_a_dlopen_path_still_held_elsewhere_never_names_another_library",),
        "/proc/self/fd/N never names two libraries (the loader matches names first)",
    ),
    m(
        "sweep-disabled",
        "runtime/sim/fs.py",
        "                self.swept = sweep_stale(self.directory)\n",
        "                pass\n",
        KILLED,
        "the next bootstrap sweeps the temp files a killed dispatcher left",
    ),
    m(
        "sweep-ignores-live-writers",
        "runtime/sim/fs.py",
        "                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n",
        "                pass\n",
        LIVE_DISPATCHER,
        "a temp file is swept only when no writer can be mid-write (exclusive lock)",
    ),
    m(
        "sim-host-cap-removed",
        "runtime/sim/profiles.py",
        "        return profile.hbm_bytes if cap is None else min(profile.hbm_bytes, cap)\n",
        "        return profile.hbm_bytes\n",
        (RR + "test_the_default_capacity_is_capped_by_the_host",),
        "the default HBM capacity is capped by the host's memory",
    ),
    m(
        "sim-memory-error-escapes",
        "runtime/sim/memory.py",
        "    except (MemoryError, OverflowError):\n",
        "    except ZeroDivisionError:\n",
        (RR + "test_a_failed_host_allocation_is_207001",),
        "a host allocation that fails is 207001, never a bare MemoryError",
    ),
    m(
        "sim-host-available-ignored",
        "runtime/sim/host.py",
        "    if available is not None and size > available * AVAILABLE_FRACTION:\n",
        "    if False:\n",
        (RR + "test_a_big_allocation_the_host_cannot_spare_now_is_207001",),
        "a big allocation the host cannot spare now is 207001, not an OOM kill later",
    ),
    m(
        "preinstall-special-file-kept",
        "runtime/sim/fs.py",
        "            try:\n                os.unlink(path)\n",
        "            try:\n                pass\n",
        (RR + "test_a_special_file_at_the_preinstalled_name_is_replaced_not_opened",),
        "a FIFO at the preinstalled name is replaced, never opened (the dispatcher would hang)",
    ),
    m(
        "sim-kernel-so-read-blocks",
        "runtime/sim/binary.py",
        "        fd = open_regular(path)  # a FIFO or device: an error naming it, not a hang\n",
        "        fd = os.open(path, os.O_RDONLY)\n",
        (RR + "test_simulator_calls_handed_a_fifo_fail_naming_it",),
        "the simulator opens what it reads without blocking and requires a regular file",
    ),
    Mutant(
        "sim-device-up-before-its-context",
        "runtime/sim/device.py",
        (
            (
                "hbm_capacity(profile, hbm_bytes))\n        elif device.arch",
                "hbm_capacity(profile, hbm_bytes))\n"
                "            _devices[device_id] = device\n        elif device.arch",
            ),
        ),
        (RR + "test_a_fifo_instead_of_a_device_directory_is_named",),
        "a failed rtCtxCreate leaves no device up",
    ),
    # -- runtime/abi.py and the C header: one ABI, two languages ---------------------------
    m(
        "abi-mirror-swaps-m-and-k",
        "runtime/abi.py",
        '        ("m", ctypes.c_uint32),\n        ("k", ctypes.c_uint32),\n',
        '        ("k", ctypes.c_uint32),\n        ("m", ctypes.c_uint32),\n',
        ABI,
        "the ctypes mirror matches the C header field by field",
    ),
    m(
        "abi-mirror-swaps-dep-fields",
        "runtime/abi.py",
        '        ("dep_begin", ctypes.c_uint32),\n        ("dep_count", ctypes.c_uint32),\n',
        '        ("dep_count", ctypes.c_uint32),\n        ("dep_begin", ctypes.c_uint32),\n',
        ABI,
        "the ctypes mirror matches the C header field by field",
    ),
    m(
        "abi-mirror-wrong-status",
        "runtime/abi.py",
        "    NO_MEMORY = 5\n",
        "    NO_MEMORY = 6\n",
        ABI,
        "the mirrored enums match the C header",
    ),
    m(
        "abi-header-swaps-m-and-k",
        "runtime/include/simpler_abi.h",
        "    uint32_t m;        /* 32: matmul rows M                                */\n"
        "    uint32_t k;        /* 36: matmul inner dimension K                     */\n",
        "    uint32_t k;        /* 36: matmul inner dimension K                     */\n"
        "    uint32_t m;        /* 32: matmul rows M                                */\n",
        ABI,
        "a header change the mirror does not follow fails the suite",
    ),
    # -- dispatcher/dispatcher.cpp: atomic, durable, verified preinstall -------------------
    m(
        "dispatcher-no-file-fsync",
        "dispatcher/dispatcher.cpp",
        "write_all(fd, data, len) && ::fsync(fd) == 0 && ::fchmod(fd, 0755) == 0",
        "write_all(fd, data, len) && ::fchmod(fd, 0755) == 0",
        DISPATCHER_ORDER,
        "the dispatcher fsyncs the temp file before the rename",
    ),
    m(
        "dispatcher-no-dir-fsync",
        "dispatcher/dispatcher.cpp",
        "    int rc = ::fsync(dfd);\n",
        "    int rc = 0;\n",
        DISPATCHER_ORDER,
        "the dispatcher fsyncs the directory after the rename",
    ),
    Mutant(
        "dispatcher-writes-in-place",
        "dispatcher/dispatcher.cpp",
        (
            (
                "    int fd = ::mkstemp(tmp);\n",
                "    int fd = ::open(final_path, O_WRONLY | O_CREAT | O_TRUNC, 0755);\n",
            ),
            ("    if (!ok || ::rename(tmp, final_path) != 0) {\n", "    if (!ok) {\n"),
        ),
        DISPATCHER_ATOMIC,
        "the dispatcher installs by temp file + rename: never a torn file",
        survivor=True,
    ),
    m(
        "dispatcher-trusts-a-same-size-file",
        "dispatcher/dispatcher.cpp",
        "            same = ok && XXH3_64bits_digest(state) == fp;\n",
        "            (void)fp;\n            same = ok;\n",
        DISPATCHER_ATOMIC,
        "an installed file counts only when it hashes to its fingerprint",
    ),
    m(
        "dispatcher-probe-always-yes",
        "dispatcher/dispatcher.cpp",
        "    da->probe_answer = installed ? simpler::kProbeInstalled : simpler::kProbeMissing;\n",
        "    da->probe_answer = installed || true ? simpler::kProbeInstalled : 0;\n",
        (SI + "test_init_preinstalls_inner_so_under_its_fingerprint",),
        "the probe launch says whether the file is installed and intact",
    ),
    # -- issue 11: topology, per-device names, the probe, gc, Path A, the latch -------------
    m(
        "preinstall-name-without-device",
        "dispatcher/dispatcher.cpp",
        "    int n = legacy ? std::snprintf(",
        "    int n = (legacy || cap > 0) ? std::snprintf(",
        (SI + "test_init_preinstalls_inner_so_under_its_fingerprint",),
        "the preinstalled inner SO's name carries the device id (#890)",
    ),
    m(
        "dispatcher-servers-return-nonzero",
        "dispatcher/dispatcher.cpp",
        "    if (da == nullptr || (da->flags & simpler::kFlagProbe) == 0) return kOk;\n",
        "    if (da == nullptr || (da->flags & simpler::kFlagProbe) == 0) return kFail;\n",
        (SI + "test_init_preinstalls_inner_so_under_its_fingerprint",),
        "the two non-Init entry points keep their upstream contract: 0 unless probed",
    ),
    Mutant(
        "sim-rewrite-under-a-mapping-is-harmless",
        "runtime/sim/binary.py",
        (
            ("                if not self._same_bytes():\n", "                if False:\n"),
            ("            if self._stamp() != self.stamp:\n", "            if False:\n"),
        ),
        (RTOPO + "test_per_device_names_end_the_die_race_that_the_legacy_name_had",),
        "an SO rewritten in place under its running code faults (507018, then 507899)",
    ),
    m(
        "sim-no-latch",
        "runtime/sim/binary.py",
        "        if latch is None or latch.pid != os.getpid():\n",
        "        if latch is None or latch.pid != os.getpid() or latch.fingerprint != fp:\n",
        (RPA + "test_the_simulator_latches_the_first_inner_so_per_process_and_device",),
        "the first inner SO a process loads through Path A on a device is latched (#923)",
    ),
    m(
        "sim-path-b-accepted",
        "runtime/sim/binary.py",
        '        if lib == PATH_B_KERNEL_LIB or str(user).lower() == "true":\n',
        "        if False:\n",
        (RPA + "test_path_b_fields_are_refused_as_cann_does",),
        "Path B's fields are refused with 507902, as CANN refuses an op its custom dir lacks",
    ),
    m(
        "latch-detected-only-after-launching",
        "runtime/aicpu_op.py",
        "        if first is not None and first[0] != self.fingerprint:\n",
        "        if False:\n",
        (RPA + "test_two_runtimes_in_one_process_on_one_device_raise_the_latch_error",),
        "a second inner SO on a device is refused before anything of it is installed or run",
    ),
    m(
        "latch-init-cross-check-dropped",
        "runtime/aicpu_op.py",
        "        if name != self.bins.runtime:\n            raise InnerSoLatchError(\n",
        "        if False:\n            raise InnerSoLatchError(\n",
        (RPA + "test_init_cross_check_catches_a_latch_the_runtime_did_not_record",),
        "Init's runtime-name cross-check: the wrong runtime never runs a graph",
    ),
    m(
        "device-gc-without-the-lock",
        "core/device.py",
        "        fcntl.flock(fd, fcntl.LOCK_EX)  # a blocking wait: bootstraps hold it briefly\n",
        "        pass\n",
        (RGC + "test_gc_waits_for_a_live_writer_and_sweeps_a_killed_one",),
        "device gc takes the bootstrap's lock: a live writer's temp file is never removed",
    ),
    # -- runtime/aicpu and runtime/aicore: dependencies and kernels ------------------------
    Mutant(
        "hbg-runs-in-index-order",
        "runtime/aicpu/aicpu_common.c",
        (
            ("        if (p->begin[j + 1] == p->begin[j]) push(s, j);\n", "        push(s, j);\n"),
            (
                "            if (atomic_fetch_sub(&s->indeg[s->succ[i]], 1) == 1) "
                "push(s, s->succ[i]);\n",
                "            atomic_fetch_sub(&s->indeg[s->succ[i]], 1);\n",
            ),
        ),
        OUT_OF_ORDER,
        "host_build_graph runs tasks in dependency order, not array order",
        survivor=True,
    ),
    m(
        "abg-runs-in-index-order",
        "runtime/aicpu/aicpu_build_graph.c",
        "            if (!depends(&tasks[i], &tasks[j])) continue;\n",
        "            if (depends(&tasks[i], &tasks[j]) || 1) continue;\n",
        WAVES,
        "aicpu_build_graph runs a task only after the tasks it has a hazard with",
        survivor=True,
    ),
    m(
        "abg-ignores-war",
        "runtime/aicpu/aicpu_build_graph.c",
        "           || overlaps(ir0, jw) || overlaps(ir1, jw);                 /* WAR */\n",
        "           ;\n",
        (RP + "test_dependency_order_and_edges_agree_between_runtimes",),
        "aicpu_build_graph derives write-after-read edges as the host does",
    ),
    m(
        "cpu-launch-threads-one-after-another",
        "runtime/sim/_launch.c",
        "            if (t->next) futex(&t->next->seq, FUTEX_WAKE_PRIVATE, 1, NULL);\n"
        "            l->results[i] = l->fn(l->args, &l->blocks[i]);\n",
        "            l->results[i] = l->fn(l->args, &l->blocks[i]);\n"
        "            if (t->next) futex(&t->next->seq, FUTEX_WAKE_PRIVATE, 1, NULL);\n",
        (
            RX + "test_barrier_needs_every_launch_thread_at_once",
            RLP + "test_parked_launch_threads_all_enter_the_kernel_together",
        ),
        "the threads of a CPU-kernel launch run concurrently",
    ),
    m(
        "cpu-launch-args-by-reference",
        "runtime/sim/binary.py",
        "    addr = ctypes.addressof(copy)\n    stream.launch(Inflight(func.name,",
        "    addr = args\n    stream.launch(Inflight(func.name,",
        (RX + "test_kernel_writes_to_its_argument_block_never_reach_the_host",),
        "a CPU kernel gets a copy of its argument block: its writes never reach the host",
    ),
    m(
        "aicpu-exception-does-not-poison",
        "runtime/sim/device.py",
        "            err = CannError(ACL_ERROR_RT_AICPU_EXCEPTION, launch.call, detail)\n"
        "            device.poison(err)\n",
        "            err = CannError(ACL_ERROR_RT_AICPU_EXCEPTION, launch.call, detail)\n",
        (RX + "test_aicpu_exception_poisons_until_the_right_reset",),
        "an AICPU exception (507018) poisons the device: rtMalloc, rtMemcpy, ... give 507899",
    ),
    m(
        "a5-soft-reset-clears-poison",
        "runtime/sim/profiles.py",
        "        max_block_dim=36,\n        soft_reset_clears_fault=False,\n",
        "        max_block_dim=36,\n        soft_reset_clears_fault=True,\n",
        (RX + "test_aicpu_exception_poisons_until_the_right_reset",),
        "on a5 only a force reset clears poison",
    ),
    m(
        "op-timeout-ignored",
        "runtime/sim/device.py",
        "            device.running.pop(id(abort), None)\n    if left:\n",
        "            device.running.pop(id(abort), None)\n    left = 0\n    if left:\n",
        (RX + "test_a_kernel_that_never_finishes_ends_in_507046_within_the_runner_op_timeout",),
        "a launch that outlives the runner's op timeout ends in 507046",
    ),
    m(
        "finalize-leaves-the-device-poisoned",
        "runtime/runner.py",
        "            sim.rtDeviceResetForce(ctx.device.device_id)\n",
        "            pass\n",
        (RX + "test_a_kernel_that_never_finishes_ends_in_507046_within_the_runner_op_timeout",),
        "finalize() force-resets a poisoned device",
    ),
    m(
        "runner-ignores-the-fault",
        "runtime/runner.py",
        "        if fault is not None:\n"
        "            raise DeviceUnusableError(self.device_id, fault)\n",
        "",
        (RX + "test_exec_that_cannot_trust_its_block_is_an_aicpu_exception",),
        "a runner on a faulted device refuses work with one DeviceUnusableError naming the fault",
    ),
    # -- issue 9: the launch path --------------------------------------------------------------
    m(
        "launch-started-at-the-call-never-times-out",
        "runtime/sim/device.py",
        "            self.inflight = start_launch(self, launch)\n        _watchdog.watch(self)\n",
        "            self.inflight = start_launch(self, launch)\n",
        (RLP + "test_a_launch_nobody_waits_for_still_ends_at_the_op_timeout",),
        "a launch nobody waits for still ends in 507046 at the op timeout (the watchdog)",
    ),
    m(
        "run-allocates-a-state-per-run",
        "runtime/runner.py",
        "            state = plan.state\n",
        "            state = plan.state\n"
        '            globals().setdefault("_kept", []).append(ExecState())\n',
        (RLP + "test_runs_leave_nothing_behind",),
        "a run allocates nothing that outlives it (device memory, host memory, ctypes objects)",
    ),
    m(
        "prepare-accepts-any-block-dim",
        "runtime/runner.py",
        "                if spec.block_dim > self.max_block_dim:\n",
        "                if False:\n",
        (RT + "test_block_dim_limit_and_zero_means_all",),
        "a block_dim above PLATFORM_MAX_BLOCKDIM is refused at prepare, naming the limit",
    ),
    m(
        "block-dim-zero-not-resolved",
        "runtime/runner.py",
        "            t.block_dim = spec.block_dim or self.max_block_dim  # 0: every block\n",
        "            t.block_dim = spec.block_dim\n",
        (RT + "test_block_dim_limit_and_zero_means_all",),
        "block_dim 0 resolves to the platform maximum at prepare",
    ),
    m(
        "aicore-on-the-aicpu-stream",
        "runtime/runner.py",
        "            self._teardown.aicore_stream = self.aicore_stream = sim.rtStreamCreate(\n"
        "                self.ctx, op_timeout\n            )\n",
        "            self._teardown.aicore_stream = self.aicore_stream = self.stream\n",
        (RX + "test_aicore_and_aicpu_on_one_stream_end_in_507046_within_the_op_timeout",),
        "AICore work runs on its own stream, distinct from the AICPU's (upstream #1852)",
    ),
    m(
        "close-keeps-device-buffers",
        "runtime/runner.py",
        "            for addr in blocks:  # a faulted device frees nothing; finalize() tears"
        " it all down\n",
        "            for addr in []:\n",
        (RL + "test_close_gives_back_exactly_what_prepare_took",),
        "close() frees a callable's buffers: hbm_in_use returns to its value before prepare",
    ),
    m(
        "double-prepare-allowed",
        "runtime/runner.py",
        "            if any(p.graph is graph for p in self._prepared):\n",
        "            if False:\n",
        (RL + "test_preparing_one_graph_twice_is_refused_and_costs_nothing",),
        "preparing a graph object that has an open callable is refused, allocating nothing",
    ),
    m(
        "run-block-dim-ignored",
        "runtime/runner.py",
        "                    self._write_tasks(prepared, tasks, block_dim or self.max_block_dim)\n",
        "                    pass\n",
        (RL + "test_block_dim_per_run_reaches_the_kernels_and_is_restored",),
        "a per-run block_dim reaches the kernels of that run",
    ),
    m(
        "run-threads-not-restored",
        "runtime/runner.py",
        "                args.active_threads = saved_threads\n",
        "                pass\n",
        (RL + "test_aicpu_threads_per_run_apply_to_that_run_only",),
        "per-run aicpu_threads apply to that run only",
    ),
    m(
        "run-options-unbounded",
        "runtime/runner.py",
        "            or not 0 <= block_dim <= self.max_block_dim\n",
        "            or not 0 <= block_dim\n",
        (RL + "test_run_options_out_of_the_arch_limits_are_refused",),
        "a per-run block_dim above the arch's limit is refused, naming it",
    ),
    m(
        "inputs-silently-cast",
        "runtime/runner.py",
        "        if arr.dtype != np.float32:\n",
        "        arr = arr.astype(np.float32)\n        if False:\n",
        (RL + "test_non_float32_inputs_are_refused_unless_cast",),
        "a non-float32 input is refused unless the call says cast=True",
    ),
    m(
        "module-load-at-registration",
        "runtime/sim/aicore.py",
        "    handle = KernelHandle(ctx, path, data)\n",
        "    handle = KernelHandle(ctx, path, data)\n    handle.load(call)\n",
        (
            "tests/runtime/test_runtime_leak.py::"
            "test_per_run_registration_fails_where_predicted_and_reset_recovers",
        ),
        "registration records the handle; the module load (HBM) waits for the first launch",
    ),
    m(
        "vector-tiling-drops-the-rest",
        "runtime/aicore/tiling.h",
        "    t.rest = left - t.tail;\n",
        "    t.rest = 0;\n",
        (RP + "test_vector_tiling_covers_every_length_and_core_split",),
        "a vector kernel's tiles, tail and rest cover its whole slice",
    ),
    m(
        "cube-fixpipe-writes-the-padding",
        "runtime/aicore/cube_kernels.c",
        "for (uint32_t j = 0; j < F && c0 + j < cols; ++j)",
        "for (uint32_t j = 0; j < F && (cols || 1); ++j)",
        (RP + "test_matmul_base_tiles_and_padded_edges",),
        "the fixpipe writes only the output's own elements, never a padded fractal's",
    ),
    m(
        "kernel-slice-drops-the-tail",
        "runtime/aicore/slice.h",
        "    uint64_t chunk = (total + block_dim - 1) / block_dim;\n",
        "    uint64_t chunk = total / block_dim;\n",
        (RB + "test_two_runners_same_runtime_one_bootstrap",),
        "the blocks of a launch cover every element",
    ),
    # -- packaging and the toolchain (issue 12) ----------------------------------------------
    m(
        "setuptools-builds-in-scons-build-dir",
        "setup.py",
        '    options={"build": {"build_base": ".setuptools-build"}},\n',
        "",
        WHEEL,
        "setuptools' build folder and SCons's build/lib never meet: no a5/ in the wheel",
    ),
    m(
        "scons-blames-the-venv-for-a-missing-extra",
        "SConstruct",
        "    import elftools  # noqa: F401  (the manifest writer reads build-ids with it)\n",
        "    pass\n",
        WHEEL,
        "SCons with a base install names the build extra, before any build step",
    ),
    m(
        "wheel-without-scons-tree",
        "setup.py",
        "        for rel in scons_tree_files():\n",
        "        for rel in []:\n",
        WHEEL,
        "the wheel carries the SCons tree, so an installed package builds",
    ),
    m(
        "ccache-env-not-passed",
        "site_scons/simpler_toolchain.py",
        "if key in PASSED_ENV or key.startswith(PASSED_PREFIX):",
        "if key in PASSED_ENV:",
        (TC + "test_ccache_hits_every_compile_of_a_second_clean_build",),
        "CCACHE_* reaches the compiler, so CC='ccache gcc' uses the user's ccache settings",
    ),
    m(
        "custom-py-over-environment",
        "SConstruct",
        "given = {**from_file, **from_environment(os.environ), **ARGUMENTS}",
        "given = {**from_environment(os.environ), **from_file, **ARGUMENTS}",
        (TC + "test_command_line_beats_environment_beats_custom_py",),
        "command line over environment over custom.py, as in ccache",
    ),
    m(
        "user-flags-before-project-flags",
        "site_scons/site_tools/simpler_arch.py",
        '    arch_env.Append(**env.get("SIMPLER_USER_FLAGS", {}))',
        '    arch_env.Prepend(**env.get("SIMPLER_USER_FLAGS", {}))',
        (TC + "test_command_line_beats_environment_beats_custom_py",),
        "the user's flags come after the project's, so they override them",
    ),
    m(
        "manifest-records-the-ccache-launcher",
        "runtime/SConscript",
        "        described[key] = without_launcher(described[key])\n",
        "        pass\n",
        (TC + "test_a_ccache_build_writes_the_same_binaries_and_manifests",),
        "a build with ccache writes the manifest a plain build writes",
    ),
    m(
        "debug-shares-the-release-tree",
        "site_scons/simpler_toolchain.py",
        'return build_dir if mode == "release" else os.path.join(build_dir, mode)',
        "return build_dir",
        ("tests/scons/test_build_incremental.py::test_mode_change_rebuilds",),
        "mode=debug and mode=release get separate output trees",
    ),
    # -- runtime/worker.py: worker processes (issue 11) --------------------------------------
    m(
        "worker-errors-lose-their-class",
        "runtime/worker.py",
        "    if not (isinstance(cls, type) and issubclass(cls, BaseException)):\n",
        "    if True:\n",
        (RW + "test_bad_input_raises_what_the_in_process_runner_raises",),
        "an isolated runner raises the in-process runner's exceptions, with their message",
    ),
    m(
        "worker-death-not-named",
        "runtime/worker.py",
        '            how = f"was killed by {self.signal}"\n',
        '            how = "stopped"\n',
        (RW + "test_a_killed_worker_is_a_clear_error_not_a_hang",),
        "a killed worker is an error naming its pid, device and signal",
    ),
    m(
        "worker-exit-keeps-shared-memory",
        "runtime/worker.py",
        "                self._process.stop(EXIT_TIMEOUT)\n",
        "                pass\n",
        (RW + "test_exit_stops_the_worker_and_frees_shared_memory_even_when_the_body_raises",),
        "finalize()/context exit unmaps every shared-memory region, even when the body raised",
    ),
    m(
        "worker-waits-forever",
        "runtime/worker.py",
        "            if left <= 0:\n",
        "            if left <= 0 and False:\n",
        (RW + "test_an_unresponsive_worker_times_out_and_is_killed",),
        "a worker that stops answering is killed after reply_timeout: no hang",
    ),
    # -- issue 12: one exception base, a silent and lazy logger hierarchy ----------------
    m(
        "cache-error-not-a-simpler-error",
        "cache/errors.py",
        "class CacheError(SimplerError):",
        "class CacheError(Exception):",
        (ERR + "test_each_is_a_simpler_error_and_keeps_its_builtin",),
        "every public exception is a SimplerError (catchable by the one base)",
    ),
    m(
        "manifest-error-loses-its-builtin",
        "core/manifest.py",
        "class ManifestError(SimplerError, ValueError):",
        "class ManifestError(SimplerError):",
        (
            ERR + "test_each_is_a_simpler_error_and_keeps_its_builtin",
            ERR + "test_a_bad_manifest_is_a_simpler_error_and_a_value_error",
        ),
        "each exception stays catchable as the builtin it was before SimplerError",
    ),
    m(
        "runtime-usage-error-not-a-simpler-error",
        "runtime/errors.py",
        "class InputError(SimplerError, TypeError):",
        "class InputError(TypeError):",
        (
            ERR + "test_each_is_a_simpler_error_and_keeps_its_builtin",
            RU + "test_inputs_that_do_not_bind_are_an_input_error_and_a_type_error",
        ),
        "the runtime's usage errors are SimplerErrors that keep their builtin",
    ),
    m(
        "finalized-runner-raises-a-bare-runtime-error",
        "runtime/runner.py",
        'raise RunnerClosedError("DeviceRunner was finalized; create a new one")',
        'raise RuntimeError("DeviceRunner was finalized; create a new one")',
        (
            RU + "test_a_finalized_runner_is_a_runner_closed_error_and_a_runtime_error",
            RW + "test_bad_input_raises_what_the_in_process_runner_raises",
        ),
        "a runner used after finalize() raises RunnerClosedError, in process and isolated alike",
    ),
    m(
        "log-debug-loads-logging",
        "core/log.py",
        '(see the module doc)."""\n    if "logging" in sys.modules:\n'
        "        get_logger(name).debug(",
        '(see the module doc)."""\n    if True:\n        get_logger(name).debug(',
        (LOG + "test_debug_and_info_never_import_logging",),
        "debug logging never imports logging on the cache read path",
    ),
    m(
        "log-no-null-handler",
        "core/log.py",
        "            root.addHandler(logging.NullHandler())\n",
        "            pass\n",
        (
            LOG + "test_silent_by_default_with_logging_loaded",
            LOG + "test_a_remote_warning_prints_once_without_logging",
        ),
        "the package logger is silent by default (a NullHandler, no last-resort output)",
    ),
    m(
        "log-warning-printed-twice",
        "core/log.py",
        "    if not _shown(logger, logging.WARNING):\n",
        "    if True:\n",
        (LOG + "test_a_remote_warning_prints_once_through_a_configured_handler",),
        "a remote warning prints exactly once, through a handler or on stderr",
    ),
    m(
        "resolve-hit-not-logged",
        "cache/resolve.py",
        '        outcome = "hit" if path is not None else "miss"\n',
        '        outcome = "miss"\n',
        (LOG + "test_cache_decisions_are_logged_at_debug",),
        "cache hits and misses are logged at DEBUG",
    ),
    # -- the suite's compiler cache never stands in for a compile that is the subject --------
    m(
        "repro-check-lets-ccache-compile",
        "core/repro.py",
        '"CCACHE_DISABLE": "1"}',
        "}",
        (REPRO + "test_repro_check_passes_and_names_a_leaking_section",),
        "repro-check compiles each copy for real, even with ccache on PATH or in CC",
    ),
    # -- issue 9, first run (first9b) ---------------------------------------------------------
    m(
        "runtime-imports-dataclasses",
        "runtime/graph.py",
        "import math\n",
        "import math\nfrom dataclasses import dataclass  # noqa: F401\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "a new process's first run executes no dataclasses/inspect/typing import in the runtime",
    ),
    m(
        "sim-imports-typing",
        "runtime/sim/device.py",
        "from collections import Counter, deque\n",
        "from collections import Counter, deque\nfrom typing import Any  # noqa: F401\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "a new process's first run executes no dataclasses/inspect/typing import in the runtime",
    ),
    m(
        "launch-helper-rebuilt-every-process",
        "runtime/sim/native.py",
        "    if target.is_file():\n        return target\n",
        "",
        (LEAN_START + "test_a_warm_first_run_compiles_and_installs_nothing",),
        "a first run whose launch helper is built compiles nothing (no subprocess, no tempfile)",
    ),
    m(
        "buffer-equal-by-value",
        "runtime/graph.py",
        "    __eq__ = object.__eq__\n    __hash__ = object.__hash__\n",
        "",
        (
            RREC + "test_buffer_is_immutable_and_equal_only_to_itself",
            RREC + "test_a_buffer_of_another_graph_is_refused_even_with_the_same_name",
        ),
        "a Buffer (a record, not a dataclass) is equal only to itself, as the dataclass was",
    ),
    # -- issue 9, warm (warm9b) --
    m(
        "index-manifest-trusts-racy-manifests",
        "cache/index.py",
        "        if not self.trusted(before) or key != stat_token(after)",
        "        if key != stat_token(after)",
        (IM + "test_a_manifest_too_recent_to_trust_is_not_recorded",),
        "a manifest too recent to trust is never recorded in the stat index (git's racy rule)",
    ),
    Mutant(
        "index-manifest-keyed-by-inode",
        "cache/index.py",
        (
            (
                "        key = stat_token(before)\n",
                '        key = f"{before.st_dev}:{before.st_ino}"\n',
            ),
            ("key != stat_token(after) or len(binaries)", "False or len(binaries)"),
            ('f"{_MANIFEST} {stat_token(st)}"', 'f"{_MANIFEST} {st.st_dev}:{st.st_ino}"'),
        ),
        (IM + "test_a_rewritten_manifest_is_read_again_even_with_its_old_size_and_mtime",),
        "a manifest rewritten in place (old size and mtime back) is parsed again",
    ),
    m(
        "index-lines-unchecked",
        "cache/index.py",
        "        if xxhash.xxh3_64_hexdigest(payload.encode()) != check:\n",
        "        if False:\n",
        (IM + "test_a_torn_or_damaged_manifest_line_costs_a_parse_never_a_wrong_answer",),
        "a damaged index line is ignored: it costs a re-parse, never a wrong answer",
    ),
    m(
        "warm-known-trusts-a-replaced-binary",
        "cache/warm.py",
        " or stat_token(bst) != binary_key:\n",
        ":\n",
        (IM + "test_a_replaced_or_symlinked_binary_is_checked_again",),
        "a binary replaced since it was recorded is checked again, index or not",
    ),
    m(
        "warm-known-ignores-the-shard",
        "cache/warm.py",
        "        if token != shard_key:\n",
        "        if False:\n",
        (IM + "test_an_object_removed_or_metadata_edited_in_place_is_checked_again",),
        "an entry whose object was removed since its manifest was recorded is put again",
    ),
    m(
        "warm-known-ignores-the-metadata",
        "cache/warm.py",
        "        if token != meta_key:\n",
        "        if False:\n",
        (IM + "test_an_object_removed_or_metadata_edited_in_place_is_checked_again",),
        "metadata edited in place since its manifest was recorded is read (and filled) again",
    ),
    m(
        "warm-walk-trusts-a-changed-directory",
        "cache/warm.py",
        " or stat_token(st) != token:\n",
        ":\n",
        (IM + "test_a_tree_line_answers_the_walk_until_a_directory_changes",),
        "a build tree whose directories changed is walked again (a manifest added or removed)",
    ),
    m(
        "index-tree-trusts-racy-directories",
        "cache/index.py",
        " or not self.trusted(st):\n",
        ":\n",
        (IM + "test_a_tree_too_recent_to_trust_is_not_recorded",),
        "a walk of directories too recent to trust is never recorded (git's racy rule)",
    ),
    m(
        "warm-known-skips-the-tree-check",
        "cache/warm.py",
        '        full = binary_path_str(path, here, rel, "", seen)\n',
        "        full = os.path.normpath(os.path.join(here, rel))\n"
        "        seen[full] = os.lstat(full)\n",
        (IM + "test_a_runtime_directory_swapped_for_a_symlink_out_of_the_tree_is_refused",),
        "a manifest answered by the index still never leads out of its tree through a symlink",
    ),
    m(
        "warm-known-opens-the-store",
        "cache/warm.py",
        "    if not unknown:\n",
        "    if False:\n",
        (IM + "test_a_fresh_process_opens_no_manifest_and_loads_no_json_or_store",),
        "a warm the stat index answers whole imports neither the store nor json",
    ),
    m(
        "cli-imports-json",
        "cache/cli.py",
        "from pathlib import Path\n",
        "from pathlib import Path\n\nimport json  # noqa: F401\n",
        (IM + "test_a_fresh_process_opens_no_manifest_and_loads_no_json_or_store",),
        "a warm the stat index answers whole imports neither the store nor json",
    ),
    # -- issue 9, first run: binaries beside their manifest never open the store ----------
    m(
        "resolve-opens-the-store-first",
        "cache/resolve.py",
        "    out: dict[str, Path] = {}\n    pending: list[Wanted] = []\n",
        "    if cache is None:\n        from simpler_build.cache.store import ArtifactCache\n\n"
        "        cache = ArtifactCache()\n"
        "    out: dict[str, Path] = {}\n    pending: list[Wanted] = []\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "a first run whose binaries are beside the manifest never loads the artifact store",
    ),
    m(
        "user-dir-takes-a-relative-xdg-home",
        "cache/paths.py",
        "        if posixpath.isabs(xdg):\n",
        "        if xdg:\n",
        ("tests/cache/test_user_dirs.py::test_user_dir_is_platformdirs_answer",),
        "the default roots without platformdirs are platformdirs' answer (XDG rule on Linux)",
    ),
    m(
        "user-dir-imports-platformdirs",
        "cache/paths.py",
        '    if sys.platform.startswith("linux"):\n',
        '    if sys.platform.startswith("linux-no"):\n',
        ("tests/cache/test_user_dirs.py::test_the_default_roots_do_not_import_platformdirs",),
        "a user without SIMPLER_CACHE_DIR / SIMPLER_SIM_ROOT does not pay platformdirs' import",
    ),
    # -- issue 9: device-side waits sleep (runtime/include/simpler_wait.h) --------------------
    m(
        "device-waits-never-sleep",
        "runtime/include/simpler_wait.h",
        "    if (*round < SIMPLER_WAIT_SPINS) {\n",
        "    if (*round < SIMPLER_WAIT_SPINS || 1) {\n",
        ("tests/runtime/test_runtime_waits.py",),
        "a device thread waiting on a device word sleeps after a few rounds instead of spinning",
    ),
    # -- issue 9, first run (first9c) --------------------------------------------------------
    m(
        "abi-constants-are-enums",
        "runtime/abi.py",
        "    AbiEnum = AbiConstant\n",
        "    from enum import IntEnum as AbiEnum\n",
        (LEAN_START + "test_a_first_run_builds_no_enum_and_compiles_no_pattern_of_its_own",),
        "the ABI's constants are ints with names: a first run builds no enum class",
    ),
    m(
        "device-temp-check-compiles-its-pattern",
        "core/device.py",
        '    return ".so.tmp." in name and _compiled("DISPATCHER_TEMP").match(name) is not None\n',
        '    return _compiled("DISPATCHER_TEMP").match(name) is not None\n',
        (LEAN_START + "test_a_first_run_builds_no_enum_and_compiles_no_pattern_of_its_own",),
        "a first run's sweep of a preinstall directory compiles no name pattern",
    ),
    m(
        "installed-name-takes-any-digits",
        "core/device.py",
        '    if device and not (device[0] == "_" and device[1:].isascii()'
        " and device[1:].isdigit()):\n",
        '    if device and not (device[0] == "_" and device[1:].isdigit()):\n',
        (
            "tests/runtime/test_device_names.py::test_the_real_names",
            "tests/runtime/test_device_names.py::test_string_checks_agree_with_the_patterns",
        ),
        "the string check of an installed SO's name is exactly the documented pattern",
    ),
    m(
        "runtime-looks-for-pyelftools",
        "runtime/_requires.py",
        'NEEDS = {"numpy": "numpy"}\n',
        'NEEDS = {"numpy": "numpy", "elftools": "pyelftools"}\n',
        (LEAN_START + "test_the_runtime_never_looks_for_pyelftools",),
        "the runtime's import never searches sys.path for pyelftools (it reads ELF with struct)",
    ),
    m(
        "resolve-loads-the-transfer-code",
        "cache/resolve.py",
        "from simpler_build.manifest import ROLES, Manifest\n",
        "from simpler_build.manifest import ROLES, Manifest\n"
        "from simpler_build.cache.transfer import pull  # noqa: F401\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "binaries beside their manifest load none of the cache's transfer code",
    ),
    m(
        "resolve-imports-the-log-module",
        "cache/resolve.py",
        "import sys\nfrom pathlib import Path\n",
        "import sys\nfrom pathlib import Path\n\nfrom simpler_build import log  # noqa: F401\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "resolve loads the log module only when logging is loaded (nothing could show a record)",
    ),
    m(
        "hbm-pool-imports-bisect",
        "runtime/sim/memory.py",
        "import _thread\nimport ctypes\n",
        "import _thread\nimport bisect  # noqa: F401\nimport ctypes\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "the HBM pool's block search loads no bisect extension on a first run",
    ),
    m(
        "hbm-index-before-equal-starts",
        "runtime/sim/memory.py",
        "        if addr < starts[mid]:\n",
        "        if addr <= starts[mid]:\n",
        (
            "tests/runtime/test_sim_memory.py::test_index_after_is_bisect_right",
            "tests/runtime/test_sim_memory.py::test_range_checks_match_a_scan_of_the_live_blocks",
        ),
        "the HBM pool's written-out search is bisect_right: every range check finds its block",
    ),
    m(
        "hbm-drop-updates-before-its-search",
        "runtime/sim/memory.py",
        "        at = index_after(self._starts, alloc.addr) - 1  # starts are unique\n"
        "        del self._allocs[alloc.addr]\n        self._starts.pop(at)\n",
        "        del self._allocs[alloc.addr]\n"
        "        self._starts.pop(index_after(self._starts, alloc.addr) - 1)\n",
        (
            "tests/runtime/test_reliability_runtime.py::"
            "test_ctrl_c_anywhere_in_finalize_then_finalize_again_releases_everything",
        ),
        "a Ctrl-C inside the HBM pool's search leaves the pool consistent (freed again later)",
    ),
    m(
        "hbm-small-blocks-are-ctypes-arrays",
        "runtime/sim/memory.py",
        "        if size < SMALL_BLOCK_BYTES:\n",
        "        if False:\n",
        (
            "tests/runtime/test_sim_memory.py::test_small_blocks_build_no_ctypes_type_and_never_move",
        ),
        "small HBM blocks build no ctypes array type per size (it would live until exit)",
    ),
    # -- issue 9, first run (round 5) ---------------------------------------------------------
    m(
        "launch-threads-stay-pinned",
        "runtime/sim/_launch.c",
        "    if (t->pinned) sched_setaffinity(0, sizeof t->allowed, &t->allowed);\n",
        "    if (0) sched_setaffinity(0, sizeof t->allowed, &t->allowed);\n",
        ("tests/runtime/test_launch_path.py::test_launch_threads_keep_their_creators_cpus",),
        "a launch thread starts on its creator's CPU, then may run wherever its creator may",
    ),
    m(
        "jsonio-ignores-trailing-data",
        "core/jsonio.py",
        "    if stripped:\n",
        "    if False:\n",
        ("tests/test_jsonio.py",),
        "simpler_build.jsonio parses what json.loads parses and refuses what it refuses",
    ),
    m(
        "jsonio-dumps-unsorted",
        "core/jsonio.py",
        '{}, _unserializable, encode_basestring_ascii, None, ": ", ", ", True, False, True',
        '{}, _unserializable, encode_basestring_ascii, None, ": ", ", ", False, False, True',
        ("tests/test_jsonio.py",),
        "simpler_build.jsonio writes what json.dumps(sort_keys=True) writes",
    ),
    m(
        "manifest-read-loads-json",
        "core/manifest.py",
        "    from simpler_build import jsonio\n",
        "    import json as jsonio\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "a first run parses its manifest without importing the json package",
    ),
    m(
        "manifest-name-allows-a-trailing-newline",
        "core/manifest.py",
        "    return 0 < len(text) <= most and not text.lstrip(chars)\n",
        '    return 0 < len(text) <= most and not text.removesuffix("\\n").lstrip(chars)\n',
        (
            "tests/cache/test_manifest_names.py",
            "tests/cache/test_reliability_inputs.py::test_malformed_manifests_name_the_file",
        ),
        "a manifest's arch, runtime and mode are 1 to 64 name characters, nothing after them",
    ),
    m(
        "manifest-names-by-pattern",
        "core/manifest.py",
        "    return 0 < len(text) <= most and not text.lstrip(chars)\n",
        "    import re\n\n"
        '    return re.match(f"[{re.escape(chars)}]{{1,{most}}}$", text) is not None\n',
        (LEAN_START + "test_a_first_run_builds_no_enum_and_compiles_no_pattern_of_its_own",),
        "a first run compiles no pattern to check the manifest's names",
    ),
    m(
        "watchdog-not-woken-for-a-shorter-timeout",
        "runtime/sim/device.py",
        "                if self._wakeup.locked():  # else a wake-up is already pending\n"
        "                    self._wakeup.release()\n",
        "                pass\n",
        (
            "tests/runtime/test_launch_path.py::test_runs_leave_nothing_behind",
            "tests/runtime/test_launch_path.py::"
            "test_a_launch_nobody_waits_for_still_ends_at_the_op_timeout",
        ),
        "a stream with a shorter op timeout than the watchdog's period wakes it to sleep less",
    ),
    m(
        "sim-stream-builds-its-condition-up-front",
        "runtime/sim/device.py",
        "        self._cond: threading.Condition | None = None\n",
        '        self._cond: threading.Condition | None = __import__("threading").Condition(\n'
        "            self.lock\n        )\n",
        (LEAN_START + "test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime",),
        "a stream that never queues work never loads threading (its condition is made lazily)",
    ),
    m(
        "build-dir-left-to-scons",
        "SConstruct",
        "if _problem:\n",
        "if False:\n",
        ("tests/scons/test_build_toolchain.py::test_a_build_dir_that_cannot_be_one_is_one_line",),
        "a build_dir that cannot be one is one line naming it, never SCons's traceback",
    ),
    m(
        "device-id-takes-a-bool",
        "runtime/runner.py",
        "    if isinstance(device_id, bool) or not isinstance(device_id, int):\n",
        "    if not isinstance(device_id, int):\n",
        (
            "tests/runtime/test_runtime_usage_errors.py::"
            "test_an_option_out_of_range_is_an_option_error_and_a_value_error",
        ),
        "a device id is an int, never a bool, for either runner (OptionError before any device)",
    ),
    m(
        "remote-password-sent-percent-encoded",
        "remote/config.py",
        '        password=_unquote(m.group("password")),\n',
        '        password=m.group("password") or None,\n',
        (
            "tests/remote/test_remote_config.py::"
            "test_credentials_are_percent_decoded_and_never_shown",
            "tests/remote/test_remote_tier.py::test_a_percent_encoded_password_authenticates",
        ),
        "a URL's percent-encoded password is decoded before it is sent",
    ),
    m(
        "remote-url-error-shows-the-password",
        "remote/config.py",
        "    url = _redacted(written)  # what messages show: never the password\n",
        "    url = written\n",
        (
            "tests/remote/test_remote_config.py::"
            "test_credentials_are_percent_decoded_and_never_shown",
        ),
        "no message about a remote URL shows its password",
    ),
    m(
        "cache-entry-name-allows-a-trailing-newline",
        "cache/layout.py",
        '_OBJECT_PATTERN = r"^simpler_inner_([0-9a-f]{16})\\.(so|json)\\Z"\n',
        '_OBJECT_PATTERN = r"^simpler_inner_([0-9a-f]{16})\\.(so|json)$"\n',
        (
            "tests/cache/test_reliability_maintenance.py::"
            "test_a_name_with_a_final_newline_is_not_the_entry_it_spells",
        ),
        "a stranger named like an entry plus a newline never costs the real entry",
    ),
    m(
        "installed-so-name-allows-a-trailing-newline",
        "core/device.py",
        '    "INSTALLED_SO": r"^simpler_inner_([0-9a-f]{16})(?:_([0-9]+))?\\.so\\Z",\n',
        '    "INSTALLED_SO": r"^simpler_inner_([0-9a-f]{16})(?:_([0-9]+))?\\.so$",\n',
        ("tests/runtime/test_device_names.py::test_the_real_names",),
        "device gc and the loader agree that a name with a final newline is not an installed SO",
    ),
    m(
        "remote-url-allows-a-trailing-newline",
        "remote/config.py",
        '(?:/(?P<db>\\d*))?\\Z",\n',
        '(?:/(?P<db>\\d*))?$",\n',
        ("tests/remote/test_remote_config.py::test_bad_urls_name_the_setting_and_the_problem",),
        "a remote URL with anything after it, a final newline included, is refused",
    ),
)


# -- applying a mutant ---------------------------------------------------------------------


class RunError(Exception):
    """The run itself cannot be trusted (as opposed to a mutant surviving)."""


def mutated_text(mutant: Mutant, root: Path) -> str:
    """The mutated contents of the mutant's file under `root`; RunError if an edit is stale."""
    path = root / mutant.file
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunError(f"{mutant.name}: {mutant.file}: {exc.strerror}") from None
    for i, (old, new) in enumerate(mutant.edits, 1):
        count = text.count(old)
        if count != 1 or old == new:
            raise RunError(
                f"{mutant.name}: edit {i} of {mutant.file}: the text to replace occurs "
                f"{count} times (exactly once needed); update the mutant:\n{old}"
            )
        text = text.replace(old, new)
    if path.suffix == ".py":
        try:
            compile(text, str(path), "exec")
        except SyntaxError as exc:
            raise RunError(
                f"{mutant.name}: the mutated {mutant.file} does not parse: {exc}"
            ) from None
    return text


def scratch_copy(dest: Path) -> Path:
    """Copy the tree minus venv, git and build outputs; make `simpler_build.*` import from it.

    pyproject's package-dir maps `simpler_build` to a folder not named so
    (core/), so the copy gets `<dest>/.import/simpler_build` -> that folder,
    and each subpackage a link at its natural place inside its parent.
    `env_for` puts `<dest>/.import` first on PYTHONPATH.
    """
    shutil.copytree(REPO, dest, ignore=COPY_IGNORE, symlinks=True)
    mapping = tomllib.loads((dest / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = mapping.get("package-dir", {})
    (dest / IMPORT_DIR).mkdir()
    for package, folder in sorted(package_dir.items()):
        parent, _, last = package.rpartition(".")
        parent_dir = (
            dest / package_dir.get(parent, parent.replace(".", "/"))
            if parent
            else dest / IMPORT_DIR
        )
        natural, target = parent_dir / last, dest / folder
        if natural.resolve() != target.resolve():
            natural.symlink_to(os.path.relpath(target, parent_dir), target_is_directory=True)
    return dest


def env_for(root: Path, build_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root / IMPORT_DIR), env.get("PYTHONPATH")])
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["SIMPLER_TEST_BUILD_DIR"] = str(build_dir)
    env["SIMPLER_CACHE_DIR"] = str(root / ".cache")  # the build's; the tests make their own
    # One ccache for every copy's build and test session (tests/compiler_cache.py): a
    # mutant of C compiles only what it changed, and a copy's objects are shared by path.
    ccache = compiler_cache.environment(root.parent / "ccache-bin", root.parent / "ccache", env)
    if ccache is not None:
        env.update(ccache)
        env["SIMPLER_TEST_CCACHE_DIR"] = ccache["CCACHE_DIR"]
    return env


def check_imports(root: Path) -> None:
    """The copy's code is what a test imports, not the editable install's."""
    probe = (
        "import simpler_build, simpler_build.cache.store, simpler_build.runtime.sim.device\n"
        "for m in (simpler_build, simpler_build.cache.store, simpler_build.runtime.sim.device):\n"
        "    print(m.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env=env_for(root, root / "build"),
        capture_output=True,
        text=True,
    )
    files = proc.stdout.split()
    if proc.returncode != 0 or not all(f.startswith(str(root) + os.sep) for f in files):
        raise RunError(f"the scratch copy does not import its own code: {files} {proc.stderr}")


def build(root: Path) -> Path:
    """`scons arch=all` in `root`; RunError when it does not build."""
    out = root / "build"
    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", "-j2", "arch=all", f"build_dir={out}"],
        cwd=root,
        env=env_for(root, out),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RunError(f"build in {root} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return out


def run_pytest(
    root: Path, build_dir: Path, tests: tuple[str, ...], timeout: float
) -> tuple[int, str]:
    """(exit status, output) of the given tests in `root`; status -1 on timeout.

    Each run gets its own short --basetemp: parallel sessions must not share
    pytest's numbered temp dirs, and AF_UNIX socket paths a test makes there
    must stay under 108 bytes.  Hypothesis draws from a fixed seed: a mutant only a lucky
    draw kills would pass or fail at random, so whether it is killed must not depend on
    the run.
    """
    basetemp = tempfile.mkdtemp(prefix="mt")
    options = ["-q", "-x", "-rfE", "--no-header", "-p", "no:cacheprovider", "-o", "addopts="]
    options.append("--hypothesis-seed=0")
    cmd = [sys.executable, "-m", "pytest", *options, f"--basetemp={basetemp}", *tests]
    try:
        proc = subprocess.run(
            cmd,
            cwd=root,
            env=env_for(root, build_dir),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return -1, out.decode(errors="replace") if isinstance(out, bytes) else out
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
    return proc.returncode, proc.stdout + proc.stderr


@dataclass
class Result:
    name: str
    status: str  # killed | survived | error | baseline-ok
    seconds: float
    detail: str = ""  # the killing test, or what went wrong

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "detail": self.detail,
        }


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def run_mutant(
    mutant: Mutant, work: Path, shared_build: Path, timeout: float, keep: bool
) -> Result:
    start = time.monotonic()
    root = work / mutant.name
    try:
        scratch_copy(root)
        (root / mutant.file).write_text(mutated_text(mutant, root))
        build_dir = build(root) if mutant.needs_build else shared_build
        status, output = run_pytest(root, build_dir, mutant.tests, timeout)
    except RunError as exc:
        return Result(mutant.name, "error", time.monotonic() - start, str(exc))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    seconds = time.monotonic() - start
    if status == 0:
        return Result(mutant.name, "survived", seconds, "every paired test passed")
    if status == 5:
        return Result(mutant.name, "error", seconds, "no tests collected:\n" + output[-2000:])
    if status == -1:
        return Result(mutant.name, "killed", seconds, f"timed out after {timeout:g} s")
    killer = _FAILED.search(output)
    return Result(mutant.name, "killed", seconds, killer.group(1) if killer else f"exit {status}")


def run_baseline(tests: tuple[str, ...], base: Path, shared_build: Path, timeout: float) -> Result:
    start = time.monotonic()
    status, output = run_pytest(base, shared_build, tests, timeout)
    if status != 0:
        return Result(
            "(baseline)",
            "error",
            time.monotonic() - start,
            "the paired tests fail without any mutation:\n" + output[-4000:],
        )
    return Result("(baseline)", "baseline-ok", time.monotonic() - start)


# -- command line ----------------------------------------------------------------------------


def select(names: list[str]) -> list[Mutant]:
    by_name = {mu.name: mu for mu in MUTANTS}
    if len(by_name) != len(MUTANTS):
        raise RunError("two mutants share a name")
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise RunError(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
    return [by_name[n] for n in names] if names else list(MUTANTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("-j", "--jobs", type=int, default=min(os.cpu_count() or 2, 8))
    parser.add_argument("--timeout", type=float, default=300.0, help="per mutant, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)
    try:
        chosen = select(args.names)
    except RunError as exc:
        print(f"mutants: error: {exc}", file=sys.stderr)
        return 2
    stale = []
    for mu in chosen:  # fail loudly, before any work, if a mutant no longer applies
        try:
            mutated_text(mu, REPO)
        except RunError as exc:
            stale.append(str(exc))
    if stale:
        print("mutants: error: " + "\nmutants: error: ".join(stale), file=sys.stderr)
        return 2
    if args.list:
        rows = [
            {
                "name": mu.name,
                "file": mu.file,
                "tests": list(mu.tests),
                "promise": mu.promise,
                "survivor": mu.survivor,
                "rebuilds": mu.needs_build,
            }
            for mu in chosen
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                flag = "C" if row["rebuilds"] else " "
                print(f"{row['name']:40} {flag} {row['file']:36} {row['promise']}")
            print(f"{len(rows)} mutants ({sum(r['survivor'] for r in rows)} from issue 14's audit)")
        return 0
    return run(chosen, args)


def run(chosen: list[Mutant], args: argparse.Namespace) -> int:
    started = time.monotonic()
    log = sys.stderr if args.json else sys.stdout
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="simpler-mutants-"))
    try:
        try:
            base = scratch_copy(work / "unmutated")
            check_imports(base)
            shared_build = build(base)
        except RunError as exc:
            print(f"mutants: error: {exc}", file=sys.stderr)
            return 2
        # Rebuilding mutants first: they take longest, so the pool ends evenly.
        order = sorted(chosen, key=lambda mu: not mu.needs_build)
        union = tuple(dict.fromkeys(t for mu in chosen for t in mu.tests))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = []
            if not args.no_baseline:
                futures.append(pool.submit(run_baseline, union, base, shared_build, args.timeout))
            futures += [
                pool.submit(run_mutant, mu, work, shared_build, args.timeout, args.keep)
                for mu in order
            ]
            for done, future in enumerate(as_completed(futures), 1):
                result = future.result()
                results.append(result)
                first = result.detail.splitlines()[0] if result.detail else ""
                print(
                    f"[{done:2}/{len(futures)}] {result.status:11} {result.name:40} "
                    f"{result.seconds:5.1f} s  {first}",
                    file=log,
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"scratch copies kept in {work}", file=log)
        else:
            shutil.rmtree(work, ignore_errors=True)
    mutants = [r for r in results if r.name != "(baseline)"]
    killed = [r for r in mutants if r.status == "killed"]
    survived = [r for r in mutants if r.status == "survived"]
    errors = [r for r in results if r.status == "error"]
    wall = time.monotonic() - started
    summary = {
        "mutants": len(mutants),
        "killed": len(killed),
        "survived": [r.name for r in survived],
        "errors": [r.name for r in errors],
        "kill_rate": round(len(killed) / len(mutants), 4) if mutants else None,
        "seconds": round(wall, 1),
        "jobs": args.jobs,
        "results": [r.to_json() for r in sorted(results, key=lambda r: r.name)],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    for r in errors:
        print(f"\nmutants: error in {r.name}:\n{r.detail}", file=sys.stderr)
    rate = f"{100 * len(killed) / len(mutants):.1f}%" if mutants else "n/a"
    print(
        f"\nmutants: {len(mutants)}, killed {len(killed)} ({rate}), survived {len(survived)}"
        f"{': ' + ', '.join(summary['survived']) if survived else ''}, errors {len(errors)}; "
        f"{wall:.0f} s with {args.jobs} jobs",
        file=log,
    )
    if errors:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
