"""Build timings: cold clean build, clean build from a warm SCons CacheDir, no-op rebuild.

    python bench/build_bench.py [--repeat N] [--jobs J]

Each repeat copies the sources into two fresh checkouts under a private cache
root: the first builds `arch=all` cold, the second (a "clean checkout"
elsewhere) builds from the CacheDir the first filled, then rebuilds with
nothing changed.  Medians of N repeats; the user's cache is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


SOURCES = ("SConstruct", "site_scons", "dispatcher", "runtime")


def checkout(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def timed_scons(cwd: Path, args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    opts = parser.parse_args()
    jobs = f"-j{opts.jobs}"

    cold, warm, noop = [], [], []
    with tempfile.TemporaryDirectory(prefix="simpler-build-bench-") as tmp:
        root = Path(tmp)
        for i in range(opts.repeat):
            env = {**os.environ, "SIMPLER_CACHE_DIR": str(root / f"cache{i}")}
            first, second = checkout(root / f"a{i}"), checkout(root / f"b{i}")
            cold.append(timed_scons(first, [jobs, "arch=all"], env))
            warm.append(timed_scons(second, [jobs, "arch=all"], env))
            noop.append(timed_scons(second, [jobs, "arch=all"], env))

    c, w, n = (statistics.median(x) for x in (cold, warm, noop))
    print(f"build_bench: arch=all {jobs}, median of {opts.repeat}")
    print(f"  clean build, cold CacheDir      : {c:7.3f} s")
    print(f"  clean build, warm CacheDir      : {w:7.3f} s   ({c / w:.1f}x faster than cold)")
    print(f"  no-op rebuild                   : {n:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
