"""SCons tool: publish every binary a manifest names into the artifact cache.

`env.SimplerCachePut(stamp, manifest)` puts the dispatcher, the inner SO and
the AICore ELF into the local cache (each checked against the manifest's
fingerprint by `put`), then pushes what a writable remote in
`SIMPLER_REMOTE_STORAGE` lacks.  The target is a small stamp file (kept out
of SCons's CacheDir with NoCache) listing what was published, so a second
build with nothing changed does nothing and `scons -q` stays quiet.  A
remote that is down or broken is one warning, never a failed build;
`cache=0` on the command line skips the whole step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from SCons.Action import Action


def _publish(target: list[Any], source: list[Any], env: Any) -> int:
    from simpler_build.cache import ArtifactCache, CacheError
    from simpler_build.cache.transfer import push, wanted_of
    from simpler_build.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(source[0].get_abspath())
    except ManifestError as exc:
        print(f"scons: *** artifact cache: {exc}", file=sys.stderr)
        return 1
    cache = ArtifactCache(env["SIMPLER_CACHE_ROOT"])
    lines = []
    try:
        for w in wanted_of(manifest):
            entry = w.put_into(cache, w.beside)
            lines.append(f"{w.role} {entry.fingerprint} {entry.path}")
    except CacheError as exc:
        # The binaries are built and stay; only publishing failed.  One clear line, no trace.
        print(f"scons: *** artifact cache: {exc} (build with cache=0 to skip)", file=sys.stderr)
        return 1
    remotes = env.get("SIMPLER_REMOTES") or []
    if remotes:
        report = push(cache, wanted_of(manifest), remotes)
        if report.too_large:
            from simpler_build.remote.storage import warn_once

            for url in sorted({url for url, _w in report.too_large}):
                warn_once(
                    f"max-size {url}",
                    f"binaries larger than the max-size of {url} are not pushed to it",
                )
        lines += [f"pushed {w.fingerprint} {url}" for url, w in report.pushed]
    Path(target[0].get_abspath()).write_text("\n".join(lines) + "\n")
    return 0


def _cache_put(env: Any, stamp: str, manifest: Any) -> Any:
    remotes = " ".join(str(r.spec) for r in env.get("SIMPLER_REMOTES") or [] if r.writable)
    nodes = env.Command(
        stamp,
        [manifest, env.Value(str(env["SIMPLER_CACHE_ROOT"])), env.Value(remotes)],
        Action(_publish, cmdstr="Caching binaries of $SOURCE"),
    )
    env.NoCache(nodes)
    return nodes


def generate(env: Any) -> None:
    env.AddMethod(_cache_put, "SimplerCachePut")


def exists(env: Any) -> bool:
    return True
