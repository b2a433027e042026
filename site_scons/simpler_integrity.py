"""What the build recorded about its outputs, and reading files without trusting them.

SCons records, for every target it builds or retrieves from its CacheDir, a
content signature (csig: a hash of the whole file in SCons's hash format) in
the same .sconsign entry as the signatures of the sources it was built from.
Both are written together at the end of a build, so a build that is killed
writes neither: the stored csig is the digest of exactly what the last
*completed* build step produced.  The output check (simpler_verify_outputs)
and the manifest writer (simpler_manifest) compare on-disk bytes with it;
nothing else is trusted to say what a target should contain.

Every read here opens without blocking and requires a regular file, so a
FIFO or a device file left where a target should be is reported, not waited on.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import SCons.Node
import SCons.Util

# One definition of "a regular file, opened without blocking" for the whole
# project; re-exported for the SCons tools.
from simpler_build.files import NotRegularFile as NotRegularFile
from simpler_build.files import kind_of as kind_of
from simpler_build.files import open_regular as _open_regular

_CHUNK = 1 << 20


def open_regular(path: str) -> int:
    """A read-only descriptor of a regular file: never blocks, never follows a final symlink."""
    return _open_regular(path, follow_symlinks=False)


def read_regular(path: str) -> tuple[bytes, os.stat_result]:
    """The whole content of a regular file and the fstat of the descriptor it came from."""
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
        parts = []
        while chunk := os.read(fd, _CHUNK):
            parts.append(chunk)
        return b"".join(parts), st
    finally:
        os.close(fd)


def build_hash_name() -> str:
    """The hash SCons signs files with in this run (md5 unless --hash-format).

    SCons applies --hash-format only after the SConscripts are read, so code
    running while they are read must ask the option, not SCons.Util.
    """
    from SCons.Script import GetOption

    chosen = GetOption("hash_format")
    return chosen.lower() if chosen else SCons.Util.get_current_hash_algorithm_used()


def scons_hash(name: str | None = None) -> Any:
    """A new hash object of `name`, by default the algorithm SCons is using right now."""
    name = name or SCons.Util.get_current_hash_algorithm_used()
    return hashlib.new(name, usedforsecurity=False)


def csig_of_bytes(data: bytes) -> str:
    """The csig SCons would compute for a file holding `data`."""
    hasher = scons_hash()
    hasher.update(data)
    return hasher.hexdigest()


def csig_of_file(path: str, hash_name: str) -> tuple[str, os.stat_result]:
    """The csig of a regular file, and the fstat taken before it was read."""
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
        hasher = scons_hash(hash_name)
        while chunk := os.read(fd, _CHUNK):
            hasher.update(chunk)
        return hasher.hexdigest(), st
    finally:
        os.close(fd)


def stored_csig(node: Any) -> str | None:
    """The csig .sconsign holds for `node`: what its last completed build produced."""
    return getattr(node.get_stored_info().ninfo, "csig", None) or None


def recorded_csig(node: Any) -> str | None:
    """The digest the step that produced `node` recorded, in this build or the last one.

    A node built or retrieved in this run was hashed by SCons right after
    that step (`File.built`); its .sconsign entry still describes the previous
    build until the run ends, so it is not the record to use.  A node that was
    up to date was produced by an earlier build, whose csig .sconsign holds
    (and the output check has compared with the disk at the start of the run).
    """
    if node.get_state() == SCons.Node.executed:
        return getattr(node.ninfo, "csig", None) or None
    return stored_csig(node)
