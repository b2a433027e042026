"""The test suite's compiler cache: ccache in masquerade, shared by checkouts at any path.

Most SCons tests are about SCons and the caches, not about gcc, yet each
clean build compiles the AICore kernels again (about 10 s of CPU for
`arch=all`).  ccache's masquerade (links named like the compilers, first on
PATH) leaves every command line, and so SCons's output and signatures,
exactly as without it.  Every checkout maps its own paths to /simpler with
-ffile-prefix-map (SConstruct), so an object does not depend on where its
checkout lives: that option and the working directory are left out of
ccache's hash, and copies at any path share one entry.  ccache still hashes
the sources, every header and every other option, so a changed file or flag
is a real compile.  Tests whose subject is the compile itself are marked
`real_compiles` (tests/conftest.py), which takes all of this out again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: The variables `environment` sets besides PATH.
VARS = ("CCACHE_DIR", "CCACHE_NOHASHDIR", "CCACHE_IGNOREOPTIONS", "CCACHE_MAXSIZE")
COMPILERS = ("gcc", "g++", "cc", "c++")


def environment(bin_dir: Path, cache_dir: Path, base: Mapping[str, str]) -> dict[str, str] | None:
    """The variables that route `base`'s compiles through ccache, or None without ccache.

    Makes `bin_dir` (the masquerade links) if it does not exist yet.
    """
    ccache = shutil.which("ccache", path=base.get("PATH"))
    if ccache is None:  # slower, not less tested: scripts/setup.sh installs ccache
        return None
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in COMPILERS:
        # An earlier call may have made it (tests/mutants.py calls from threads).
        with contextlib.suppress(FileExistsError):
            (bin_dir / name).symlink_to(ccache)
    return {
        "PATH": os.pathsep.join([str(bin_dir), base.get("PATH", "/usr/bin:/bin")]),
        "CCACHE_DIR": str(cache_dir),
        "CCACHE_NOHASHDIR": "1",
        "CCACHE_IGNOREOPTIONS": "-ffile-prefix-map=*",
        "CCACHE_MAXSIZE": "2G",
    }


def is_masquerade(directory: str) -> bool:
    """Whether `directory`'s gcc is ccache (ours, an outer session's, or /usr/lib/ccache)."""
    return os.path.basename(os.path.realpath(os.path.join(directory, "gcc"))) == "ccache"


def without(base: Mapping[str, str]) -> dict[str, str]:
    """`base` with no ccache: no masquerade directory on PATH and no ccache variables."""
    env = {k: v for k, v in base.items() if k not in VARS}
    env["PATH"] = os.pathsep.join(
        p for p in base.get("PATH", "").split(os.pathsep) if p and not is_masquerade(p)
    )
    return env


def stats(ccache_dir: Path) -> dict[str, int]:
    """ccache's counters for `ccache_dir` (`--print-stats`: one `name<TAB>value` per line)."""
    out = subprocess.run(
        ["ccache", "--print-stats"],
        env={**os.environ, "CCACHE_DIR": str(ccache_dir)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}
