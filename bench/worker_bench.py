#!/usr/bin/env python3
"""Worker bench: what a call costs through DeviceRunner(isolate=True), against in-process.

Prints, in one run, on the same graph (the 3-task chain) and the same inputs:
  1. per-call time of an in-process runner (the floor) and of an isolated one
     (a worker process; inputs and outputs through shared memory), for a small
     vector (overhead-bound) and a large one (copy-bound), and the difference;
  2. runner start-up: DeviceRunner(...) to a first result, in-process and isolated
     (the isolated figure includes spawning the worker and importing the runtime).

The two runners are timed in alternating batches, so that drift of a shared
machine hits both.  Uses temporary SIMPLER_CACHE_DIR / SIMPLER_SIM_ROOT; needs
a build (`scons arch=all`) or --build-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _scratch import built_manifest, private_roots  # bench/ is on sys.path

from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph, chain_reference

REPO = Path(__file__).resolve().parents[1]


def _inputs(n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal(n, dtype=np.float32) for _ in range(3))


def per_call(bins: RuntimeBinaries, n: int, runs: int, batches: int) -> dict[str, Any]:
    """Median over batches of the per-call time, both runners alternating batch by batch."""
    a, b, c = _inputs(n)
    expected = chain_reference(a, b, c)
    times: dict[str, list[float]] = {"in_process": [], "isolated": []}
    with DeviceRunner(bins) as local, DeviceRunner(bins, isolate=True) as isolated:
        prepared = {"in_process": local.prepare(chain_graph(n)),
                    "isolated": isolated.prepare(chain_graph(n))}  # fmt: skip
        for name, p in prepared.items():  # warm-up; also checks both are correct
            (out,) = p(a, b, c)
            if not np.allclose(out, expected, rtol=1e-6):
                raise SystemExit(f"error: the {name} runner computed a wrong result")
        for _ in range(batches):
            for name, p in prepared.items():
                t0 = time.perf_counter()
                for _ in range(runs):
                    p(a, b, c)
                times[name].append((time.perf_counter() - t0) / runs)
        runs_done = {"in_process": local.stats["runs"], "isolated": isolated.stats["runs"]}
    local_us = statistics.median(times["in_process"]) * 1e6
    isolated_us = statistics.median(times["isolated"]) * 1e6
    return {
        "n": n,
        "bytes_per_call": 4 * n * 4,  # three inputs in, one output out
        "runs_per_batch": runs,
        "batches": batches,
        "in_process_us": local_us,
        "isolated_us": isolated_us,
        "overhead_us": isolated_us - local_us,
        "ratio": isolated_us / local_us,
        "runs_done": runs_done,
    }


def startup(bins: RuntimeBinaries, n: int, reps: int) -> dict[str, float]:
    """Median ms from DeviceRunner(...) to the first result, in-process and isolated."""
    a, b, c = _inputs(n)
    out: dict[str, float] = {}
    for name, isolate in (("in_process_ms", False), ("isolated_ms", True)):
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            with DeviceRunner(bins, isolate=isolate) as runner:
                runner.prepare(chain_graph(n))(a, b, c)
            samples.append((time.perf_counter() - t0) * 1e3)
        out[name] = statistics.median(samples)
    return out


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="a5", choices=["a2a3", "a5"])
    p.add_argument("--runtime", default="host_build_graph",
                   choices=["host_build_graph", "aicpu_build_graph"])  # fmt: skip
    p.add_argument("--build-dir", type=Path, default=REPO / "build")
    p.add_argument("--runs", type=_positive, default=200, help="calls per timed batch")
    p.add_argument("--batches", type=_positive, default=7, help="alternating batches per runner")
    p.add_argument("--sizes", type=_positive, nargs="+", default=[64, 1 << 18],
                   help="elements per vector, one figure each")  # fmt: skip
    p.add_argument("--reps", type=_positive, default=3, help="repetitions of the start-up figure")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    manifest = built_manifest(args.build_dir, args.arch, args.runtime)
    if manifest is None:
        return 2
    with private_roots():  # the workers inherit them
        bins = RuntimeBinaries.from_manifest(manifest, arch=args.arch)
        report = {
            "arch": args.arch,
            "runtime": args.runtime,
            "cpus": os.cpu_count(),
            "per_call": [per_call(bins, n, args.runs, args.batches) for n in args.sizes],
            "startup": startup(bins, 64, args.reps),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"worker bench: {args.arch}/{args.runtime}, 3-task chain, median of "
          f"{args.batches} alternating batches of {args.runs} calls")  # fmt: skip
    head = ("elements", "in-process (floor)", "isolated", "overhead", "ratio")
    print("{:>9} {:>19} {:>12} {:>12} {:>7}".format(*head))
    for row in report["per_call"]:
        print(f"{row['n']:>9} {row['in_process_us']:>16.1f} us {row['isolated_us']:>9.1f} us "
              f"{row['overhead_us']:>9.1f} us {row['ratio']:>6.2f}x")  # fmt: skip
    st = report["startup"]
    print(f"start-up to first result (median of {args.reps}): in-process "
          f"{st['in_process_ms']:.1f} ms, isolated {st['isolated_ms']:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
