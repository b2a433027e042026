"""SCons tool: the `runtime_binaries.json` writer, a build target like any other.

`env.SimplerManifest(target, [dispatcher, inner_so, aicore], TOOLCHAIN=dict)`
writes the manifest from the built files themselves, so it changes exactly
when a binary (or the recorded toolchain) changes.  The manifest is the lock
file the cache and the runtime trust, so it never records a binary that did
not come out of the step that produced it: each binary is read once, its
bytes are compared with the digest SCons recorded for that step (see
simpler_integrity.recorded_csig), and size, XXH3-64 and SHA-256 all come
from those same bytes.  A file that differs -- changed on disk after its link
or install step -- fails the build in one line naming it; the next build
rebuilds it (simpler_verify_outputs).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from SCons.Action import Action
from simpler_integrity import csig_of_bytes, read_regular, recorded_csig

from simpler_build.manifest import ROLES, BinaryRecord, Manifest, dump_manifest


class UnverifiedBinary(Exception):
    """A binary whose bytes are not the ones its build step recorded."""


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    keys = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    return all(getattr(a, key) == getattr(b, key) for key in keys)


def _record(role: str, node: Any) -> BinaryRecord:
    # Imported here, not at module level: a no-op build never pays for pyelftools.
    from simpler_build.cache.fingerprint import fingerprint_bytes
    from simpler_build.elf import read_build_id

    path = node.get_abspath()
    try:
        data, st = read_regular(path)
    except OSError as exc:
        raise UnverifiedBinary(f"{path} {exc.strerror}") from None
    recorded = recorded_csig(node)
    if recorded is None:
        raise UnverifiedBinary(f"{path} has no digest recorded by the step that built it")
    actual = csig_of_bytes(data)
    if actual != recorded:
        raise UnverifiedBinary(
            f"{path} is not the file its build step produced "
            f"(content hash {actual[:12]}… on disk, {recorded[:12]}… recorded)"
        )
    build_id = read_build_id(path)
    try:
        unchanged = _same_file(st, os.stat(path))
    except OSError:
        unchanged = False
    if not unchanged:
        raise UnverifiedBinary(f"{path} changed while the manifest was being written")
    return BinaryRecord(
        role=role,
        path=Path(path),
        size=len(data),
        fingerprint=fingerprint_bytes(data),
        sha256=hashlib.sha256(data).hexdigest(),
        build_id=build_id,
    )


def _write_manifest(target: list[Any], source: list[Any], env: Any) -> int:
    out = Path(target[0].get_abspath())
    try:
        binaries = {
            role: _record(role, node)
            for role, node in zip(ROLES, source[: len(ROLES)], strict=True)
        }
    except UnverifiedBinary as exc:
        print(f"scons: *** manifest {out}: {exc}; run scons again to rebuild it", file=sys.stderr)
        return 1
    manifest = Manifest(
        path=out,
        arch=env["SIMPLER_ARCH"],
        runtime=env["SIMPLER_RUNTIME"],
        mode=env["SIMPLER_MODE"],
        binaries=binaries,
        toolchain=source[len(ROLES)].read(),
    )
    out.write_text(dump_manifest(manifest), encoding="utf-8")
    return 0


def _manifest_emitter(target: list[Any], source: list[Any], env: Any) -> tuple[list, list]:
    # The toolchain description is a Value source: a flag change rewrites the manifest.
    return target, [*source, env.Value(env["SIMPLER_TOOLCHAIN"])]


def generate(env: Any) -> None:
    env["BUILDERS"]["SimplerManifest"] = env.Builder(
        action=Action(_write_manifest, cmdstr="Writing manifest $TARGET"),
        emitter=_manifest_emitter,
        suffix=".json",
    )


def exists(env: Any) -> bool:
    return True
