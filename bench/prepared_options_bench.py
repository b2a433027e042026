#!/usr/bin/env python3
"""What the prepared callable's per-run options cost (issue 11).

Prints, in one run, the time per call of one prepared chain graph:
  - floor: `runner.run(prepared, ...)`, which never sees options;
  - `prepared(...)` without options: must match the floor (no per-call work);
  - `prepared(..., aicpu_threads=N)`: one field of the by-value block set and restored;
  - `prepared(..., block_dim=N)`: the task array rewritten on the device and restored.
Calls are interleaved in rounds that each start at another variant, and each
figure is the median of its rounds, so that the machine's drift hits every variant alike.

Uses a temporary SIMPLER_SIM_ROOT; needs a build (`scons arch=all`) or --build-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph
from simpler_build.runtime.sim import profile_for

REPO = Path(__file__).resolve().parents[1]


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="a5", choices=["a2a3", "a5"])
    p.add_argument("--runtime", default="host_build_graph")
    p.add_argument("--build-dir", type=Path, default=REPO / "build")
    p.add_argument("--n", type=int, default=1024, help="elements per buffer")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=200, help="calls per variant per round")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)

    lib = args.build_dir / "lib" / args.arch / args.runtime
    if not lib.is_dir():
        p.error(f"--build-dir: {lib} does not exist; run `scons arch=all` first")
    os.environ["SIMPLER_SIM_ROOT"] = tempfile.mkdtemp(prefix="simpler-bench-sim-")
    bins = RuntimeBinaries.from_manifest(lib, arch=args.arch)
    profile = profile_for(args.arch)
    x = [np.ones(args.n, np.float32) for _ in range(3)]
    with DeviceRunner(bins) as runner:
        prepared = runner.prepare(chain_graph(args.n))
        variants: dict[str, Callable[[], object]] = {
            "floor_runner_run": lambda: runner.run(prepared, *x),
            "call_default": lambda: prepared(*x),
            "call_aicpu_threads": lambda: prepared(*x, aicpu_threads=profile.max_sched_threads),
            "call_block_dim": lambda: prepared(*x, block_dim=profile.max_block_dim),
        }
        for fn in variants.values():  # warm-up: module load, caches
            _per_call(fn, 20)
        rounds: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.rounds):  # each round starts at another variant: no fixed order
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rounds[name].append(_per_call(variants[name], args.calls))
    us = {name: 1e6 * statistics.median(times) for name, times in rounds.items()}
    floor = us["floor_runner_run"]
    result = {
        "arch": args.arch,
        "runtime": args.runtime,
        "n": args.n,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_us_per_call": {k: round(v, 2) for k, v in us.items()},
        "vs_floor": {k: round(v / floor, 3) for k, v in us.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.arch}/{args.runtime}, n={args.n}: "
        f"median of {args.rounds} rounds x {args.calls} calls"
    )
    for name, value in us.items():
        print(f"  {name:<20} {value:8.1f} us/call  ({value / floor:5.3f} x floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
