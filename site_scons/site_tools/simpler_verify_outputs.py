"""SCons tool: rebuild every target whose bytes are not what the build recorded.

SCons decides that a target is up to date from the signatures of its sources
and never looks at the target's own bytes.  A binary damaged on disk, or one
left by a build that was killed after writing it (its .sconsign entry still
describes the build before), would be kept -- and the manifest writer would
then bless it.  So, as Bazel checks its outputs, `env.SimplerVerifyOutputs(dir)`
(called once every target is declared) compares each existing derived file
under `dir` with the csig its last completed build stored in .sconsign (see
simpler_integrity) and marks every mismatch AlwaysBuild for this run: SCons
then rebuilds it, or retrieves it through the verified CacheDir, and whatever
depends on it follows through the ordinary decider.  `scons -q` reports such
a target as not up to date.

Re-hashing every output on every no-op build would grow with the tree, so
`<dir>/.simpler-verified.json` remembers, per file, the stat (size, mtime_ns,
ctime_ns, inode, device) it had when it last matched its csig; an unchanged
stat with an unchanged csig is trusted without reading the file.  ctime
cannot be set by a user, so a rewrite that restores the old mtime is still
re-hashed, and a file whose ctime is within two seconds of the check is not
remembered (it may still change within the same timestamp tick).  The table
is only a shortcut: an entry counts only when its csig equals the one
.sconsign holds, so a stale or forged table can cause a re-hash, never trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import SCons.Node.FS
from SCons.Script import GetOption
from simpler_integrity import NotRegularFile, build_hash_name, csig_of_file, kind_of, stored_csig

TABLE_NAME = ".simpler-verified.json"
TABLE_FORMAT = 1
#: A file changed this recently may change again within one ctime tick: hash it next time too.
RACY_NS = 2_000_000_000

_StatKey = list[int]


def _derived_files(root: Any) -> Iterator[Any]:
    """Every File node under `root` that a builder produces (declared targets only)."""
    stack = [root]
    while stack:
        directory = stack.pop()
        for name, child in directory.entries.items():
            if name in (".", ".."):
                continue
            if isinstance(child, SCons.Node.FS.Entry) and child.has_builder():
                # InstallAs and Command targets start out as Entry; one that is
                # not on disk yet is left for SCons to resolve when it builds it.
                if not os.path.lexists(child.get_abspath()):
                    continue
                child = child.disambiguate()
            if isinstance(child, SCons.Node.FS.Dir):
                stack.append(child)
            elif isinstance(child, SCons.Node.FS.File) and child.has_builder():
                yield child


def _stat_key(st: os.stat_result) -> _StatKey:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _load_table(path: str, hash_name: str) -> dict[str, list[Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(raw, dict)
        or raw.get("format") != TABLE_FORMAT
        or raw.get("hash") != hash_name
        or not isinstance(raw.get("files"), dict)
    ):
        return {}
    return raw["files"]


def _save_table(path: str, hash_name: str, files: dict[str, list[Any]]) -> None:
    """Atomically replace the table; a failure only costs re-hashing next time."""
    body = json.dumps({"format": TABLE_FORMAT, "hash": hash_name, "files": files}, indent=0)
    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".simpler-verified.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _problem(
    node: Any, table: dict[str, list[Any]], rel: str, now_ns: int, hash_name: str
) -> str | None:
    """Why `node`'s file is not what its build recorded, or None (updating `table`).

    A file that matches gets its recorded csig put into its node info, as
    SCons itself does for files older than --max-drift: this run's decisions
    use the verified digest and never re-hash the file, which -- were it
    damaged while the build runs -- would store the damaged file's csig in
    .sconsign as if a build step had produced it.
    """
    path = node.get_abspath()
    remembered = table.pop(rel, None)  # put back only once the file is known good
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None  # missing: SCons builds it anyway
    except OSError as exc:
        return f"cannot stat it ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return f"it is {kind_of(st.st_mode)}, not a regular file"
    recorded = stored_csig(node)
    if recorded is None:
        return "no digest of it is recorded"
    if remembered == [*_stat_key(st), recorded]:
        table[rel] = remembered
        node.get_ninfo().csig = recorded
        return None
    recorded_size = getattr(node.get_stored_info().ninfo, "size", None)
    if isinstance(recorded_size, int) and recorded_size != st.st_size:
        return f"{st.st_size} bytes on disk, {recorded_size} recorded"
    try:
        actual, read_st = csig_of_file(path, hash_name)
    except NotRegularFile as exc:
        return f"it {exc.strerror}"
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if len(actual) != len(recorded):
        return f"its digest was recorded with a hash other than {hash_name}"
    if actual != recorded:
        return f"content hash {actual[:12]}… on disk, {recorded[:12]}… recorded"
    if _stat_key(read_st) == _stat_key(st) and read_st.st_ctime_ns < now_ns - RACY_NS:
        table[rel] = [*_stat_key(read_st), recorded]
    node.get_ninfo().csig = recorded
    return None


def _verify_outputs(env: Any, build_dir: str) -> list[Any]:
    """Mark every target under `build_dir` whose bytes differ from its record AlwaysBuild."""
    if GetOption("clean") or GetOption("help"):
        return []
    root = env.Dir(build_dir)
    if not os.path.isdir(root.get_abspath()):
        return []
    hash_name = build_hash_name()
    table_path = os.path.join(root.get_abspath(), TABLE_NAME)
    table = _load_table(table_path, hash_name)
    before = dict(table)
    now_ns = time.time_ns()
    rebuilt = []
    for node in _derived_files(root):
        rel = os.path.relpath(node.get_abspath(), root.get_abspath())
        problem = _problem(node, table, rel, now_ns, hash_name)
        if problem is not None:
            print(
                f"scons: {node.get_abspath()} is not the file its last build produced "
                f"({problem}); treating it as out of date",
                file=sys.stderr,
            )
            node.set_always_build()
            rebuilt.append(node)
    if table != before and not GetOption("no_exec"):
        _save_table(table_path, hash_name, table)
    return rebuilt


def generate(env: Any) -> None:
    env.AddMethod(_verify_outputs, "SimplerVerifyOutputs")


def exists(env: Any) -> bool:
    return True
