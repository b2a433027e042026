#!/usr/bin/env python3
"""Run a vector add and the chain (a + b) * c + s on the simulated device, N times each.

Builds nothing: it loads `<build-dir>/lib/<arch>/<runtime>/runtime_binaries.json`
(run `scons arch=<arch>` first), prepares each graph once and calls the
prepared graph N times, checking every result against numpy.

    python examples/vector_add.py --arch a5 --runs 100 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from simpler_build.errors import SimplerError
from simpler_build.manifest import MANIFEST_NAME
from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph, chain_reference, vector_add_graph

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=["a2a3", "a5"])
    p.add_argument("--runtime", default="host_build_graph")
    p.add_argument("--runs", type=int, default=10, help="calls of each prepared graph")
    p.add_argument("--n", type=int, default=4096, help="elements per vector")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--build-dir", type=Path, default=REPO / "build")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.runs < 1 or args.n < 1:
        p.error("--runs and --n must be positive")
    return args


def run(args: argparse.Namespace) -> dict:
    manifest = args.build_dir / "lib" / args.arch / args.runtime / MANIFEST_NAME
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: build it first with `scons arch={args.arch}` "
            f"(or pass --build-dir)"
        )
    bins = RuntimeBinaries.from_manifest(manifest, arch=args.arch)
    rng = np.random.default_rng(0)
    scalar = 1.5
    checked = 0
    t0 = time.perf_counter()
    with DeviceRunner(bins, device_id=args.device) as runner:
        add = runner.prepare(vector_add_graph(args.n))
        fused = runner.prepare(chain_graph(args.n, scalar))
        run_start = time.perf_counter()
        for i in range(args.runs):
            a, b, c = (rng.standard_normal(args.n, dtype=np.float32) for _ in range(3))
            (out,) = add(a, b)
            if not np.array_equal(out, a + b):
                raise AssertionError(f"vector_add run {i}: wrong result")
            (out,) = fused(a, b, c)
            if not np.allclose(out, chain_reference(a, b, c, scalar), rtol=1e-6, atol=1e-6):
                raise AssertionError(f"chain run {i}: wrong result")
            checked += 2
        run_s = time.perf_counter() - run_start
        stats = runner.stats
    return {
        "ok": True,
        "manifest": str(manifest),
        "checked_results": checked,
        "total_seconds": round(time.perf_counter() - t0, 6),
        "per_call_us": round(1e6 * run_s / checked, 2),
        "stats": stats,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    # Every error of the package is a SimplerError (simpler_build.errors): a bad manifest,
    # a missing binary, a bad option or device id, a device fault. One line each.
    except (FileNotFoundError, SimplerError) as exc:
        msg = str(exc)
        print(json.dumps({"ok": False, "error": msg}) if args.json else f"error: {msg}",
              file=sys.stderr)  # fmt: skip
        return 2
    except AssertionError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}) if args.json else f"FAILED: {exc}")
        return 1
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        s = report["stats"]
        print(f"{s['arch']}/{s['runtime']}: {report['checked_results']} results correct "
              f"({report['per_call_us']} us per call)")  # fmt: skip
        for key in ("dispatcher_bootstraps", "aicore_registrations", "aicpu_launches",
                    "aicore_launches", "hbm_in_use", "hbm_peak"):  # fmt: skip
            print(f"  {key:22} {s[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
