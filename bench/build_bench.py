"""Build timings: cold clean build, clean build from a warm SCons CacheDir, no-op rebuild.

    python bench/build_bench.py [--repeat N] [--jobs J]

Every run uses a private cache root and fresh build dirs, so the figures do
not depend on (or disturb) the user's cache.  Medians of N repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_scons(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *args],
        cwd=REPO,
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
            cold.append(timed_scons([jobs, "arch=all", f"build_dir={root / f'cold{i}'}"], env))
            warm.append(timed_scons([jobs, "arch=all", f"build_dir={root / f'warm{i}'}"], env))
            noop.append(timed_scons([jobs, "arch=all", f"build_dir={root / f'warm{i}'}"], env))

    c, w, n = (statistics.median(x) for x in (cold, warm, noop))
    print(f"build_bench: arch=all {jobs}, median of {opts.repeat}")
    print(f"  clean build, cold CacheDir      : {c:7.3f} s")
    print(f"  clean build, warm CacheDir      : {w:7.3f} s   ({c / w:.1f}x faster than cold)")
    print(f"  no-op rebuild                   : {n:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
