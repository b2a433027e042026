"""SCons tool: the `runtime_binaries.json` writer, a build target like any other.

`env.SimplerManifest(target, [dispatcher, inner_so, aicore], TOOLCHAIN=dict)`
writes the manifest from the built files themselves (size, XXH3-64, SHA-256,
build-id, all from one read), so it changes exactly when a binary (or the
recorded toolchain) changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from SCons.Action import Action

from simpler_build.manifest import ROLES, BinaryRecord, Manifest, dump_manifest


def _record(role: str, path: Path) -> BinaryRecord:
    # Imported here, not at module level: a no-op build never pays for pyelftools.
    from simpler_build.cache.fingerprint import digests_file
    from simpler_build.elf import read_build_id

    fingerprint, sha256, size = digests_file(path)
    return BinaryRecord(
        role=role,
        path=path,
        size=size,
        fingerprint=fingerprint,
        sha256=sha256,
        build_id=read_build_id(path),
    )


def _write_manifest(target: list[Any], source: list[Any], env: Any) -> int:
    out = Path(target[0].get_abspath())
    binaries = {
        role: _record(role, Path(node.get_abspath()))
        for role, node in zip(ROLES, source[: len(ROLES)], strict=True)
    }
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
