"""SCons tool: publish each built inner SO into the project's artifact cache.

The target is a small stamp file (kept out of SCons's CacheDir with NoCache)
naming the fingerprint published, so a second build with nothing changed does
nothing and `scons -q` stays quiet.  `cache=0` on the command line skips it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from SCons.Action import Action


def _put(target: list[Any], source: list[Any], env: Any) -> int:
    from simpler_build.cache import ArtifactCache, CacheError
    from simpler_build.elf import read_build_id

    so = Path(source[0].get_abspath())
    try:
        entry = ArtifactCache(env["SIMPLER_CACHE_ROOT"]).put(
            so,
            arch=env["SIMPLER_ARCH"],
            runtime=env["SIMPLER_RUNTIME"],
            build_id=read_build_id(so),
        )
    except CacheError as exc:
        # The SO itself is built and stays; only publishing failed.  One clear line, no trace.
        print(f"scons: *** artifact cache: {exc} (build with cache=0 to skip)", file=sys.stderr)
        return 1
    Path(target[0].get_abspath()).write_text(f"{entry.fingerprint} {entry.path}\n")
    return 0


def _cache_put(env: Any, stamp: str, inner_so: Any) -> Any:
    nodes = env.Command(
        stamp,
        [inner_so, env.Value(str(env["SIMPLER_CACHE_ROOT"]))],
        Action(_put, cmdstr="Caching $SOURCE"),
    )
    env.NoCache(nodes)
    return nodes


def generate(env: Any) -> None:
    env.AddMethod(_cache_put, "SimplerCachePut")


def exists(env: Any) -> bool:
    return True
