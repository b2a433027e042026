#!/usr/bin/env python3
"""First run in a new process: import the runtime, load a manifest, prepare and run once.

    python bench/first_run_bench.py [--build-dir build] [--arch a5] [--runs 9] [--json]

Issue 9's row "first run in a new process", next to its floor measured in
the same run: a process that only does `import numpy`, which the runtime
needs anyway.  Each figure is the wall time of a whole fresh interpreter,
started the same way (`python -c`), median of --runs, the two kinds
interleaved so a change in machine load hits both.  The child also reports
how long its imports took and whether pyelftools was loaded.  On a shared
machine two steadier figures come with it: the median of each run's ratio to
the floor run next to it, and the ratio of CPU time (user + system, all
threads) of the two kinds of process.

The inputs are made with numpy's core (`linspace`), as runtime_bench.py's
new-process row makes them: `numpy.random` is a user's choice that costs a
new process 10-15 ms of imports of its own (secrets, random, hmac), none of
it the runtime's, and would hide the runtime's cost behind it.

The device filesystem (SIMPLER_SIM_ROOT) is a temp dir that a first,
untimed run fills, so the timed runs are what a user's second and later
processes see; SIMPLER_CACHE_DIR is a temp dir too.  Bytecode is cached
(the package is compiled first), as for an installed package.  Without a
build under --build-dir, the project is built into a temp dir with SCons.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph, chain_reference
t1 = time.perf_counter()
n = 4096
a, b, c = (np.linspace(-k, k, n, dtype=np.float32) for k in (1.0, 2.0, 3.0))
bins = RuntimeBinaries.from_manifest(sys.argv[1], arch=sys.argv[2])
s1 = time.perf_counter()
with DeviceRunner(bins) as runner:
    s2 = time.perf_counter()
    prepared = runner.prepare(chain_graph(n))
    s3 = time.perf_counter()
    (out,) = prepared(a, b, c)
    s4 = time.perf_counter()
s5 = time.perf_counter()
assert np.allclose(out, chain_reference(a, b, c), rtol=1e-6)
t2 = time.perf_counter()
steps = (s1 - t1, s2 - s1, s3 - s2, s4 - s3, s5 - s4)
print(t1 - t0, t2 - t1, int(any(m.startswith("elftools") for m in sys.modules)), *steps)
"""

#: The steps of "load + prepare + run", as the child times them.
STEPS = ("manifest", "runner", "prepare", "run", "close")


def _wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system, every thread) and stdout of one child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, out


def _manifest(build_dir: Path, arch: str, runtime: str, tmp: Path, env: dict[str, str]) -> Path:
    manifest = build_dir / "lib" / arch / runtime / "runtime_binaries.json"
    if manifest.is_file():
        return manifest
    built = tmp / "build"
    subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", "-j2", f"arch={arch}", f"build_dir={built}"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return built / "lib" / arch / runtime / "runtime_binaries.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=REPO / "build")
    parser.add_argument("--arch", default="a5", choices=["a2a3", "a5"])
    parser.add_argument("--runtime", default="host_build_graph")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import compileall

    import simpler_build
    import simpler_build.cache
    import simpler_build.runtime

    for pkg in (simpler_build, simpler_build.cache, simpler_build.runtime):
        for directory in pkg.__path__:
            compileall.compile_dir(directory, quiet=1)

    with tempfile.TemporaryDirectory(prefix="simpler-first-run-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["SIMPLER_CACHE_DIR"] = str(Path(tmp) / "cache")
        env["SIMPLER_SIM_ROOT"] = str(Path(tmp) / "sim")
        manifest = _manifest(args.build_dir, args.arch, args.runtime, Path(tmp), env)
        run = [sys.executable, "-c", _CHILD, str(manifest), args.arch]
        floor_cmd = [sys.executable, "-c", "import numpy"]
        _wall(run, env)  # installs the inner SO on the simulated device; not timed
        _wall(floor_cmd, env)
        walls, floors, cpus, floor_cpus, pairs = [], [], [], [], []
        imports, work, elftools = [], [], set()
        steps: list[list[float]] = [[] for _ in STEPS]
        for _ in range(args.runs):
            wall, cpu, out = _wall(run, env)
            imp, rest, elf, *times = out.split()
            for step, value in zip(steps, times, strict=True):
                step.append(float(value))
            walls.append(wall)
            cpus.append(cpu)
            imports.append(float(imp))
            work.append(float(rest))
            elftools.add(bool(int(elf)))
            floor_wall, floor_cpu, _ = _wall(floor_cmd, env)
            floors.append(floor_wall)
            floor_cpus.append(floor_cpu)
            pairs.append(wall / floor_wall)

    wall, floor = statistics.median(walls), statistics.median(floors)
    cpu, floor_cpu = statistics.median(cpus), statistics.median(floor_cpus)
    result = {
        "arch": args.arch,
        "runtime": args.runtime,
        "runs": args.runs,
        "first_run_ms": wall * 1e3,
        "imports_ms": statistics.median(imports) * 1e3,
        "load_prepare_run_ms": statistics.median(work) * 1e3,
        "floor_import_numpy_ms": floor * 1e3,
        "ratio": wall / floor,
        # Steadier on a shared machine: each run against the floor run next to it, and CPU time.
        "paired_ratio_median": statistics.median(pairs),
        "cpu_ms": cpu * 1e3,
        "floor_cpu_ms": floor_cpu * 1e3,
        "cpu_ratio": cpu / floor_cpu,
        "pyelftools_loaded": any(elftools),
        # Medians of each step of "load + prepare + run" (the run is the first launch).
        "steps_ms": {
            name: statistics.median(v) * 1e3 for name, v in zip(STEPS, steps, strict=True)
        },
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(
            f"first run, new process {wall * 1e3:6.1f} ms (imports {result['imports_ms']:.1f} ms,"
            f" load + prepare + run {result['load_prepare_run_ms']:.1f} ms) | floor"
            f" `import numpy` {floor * 1e3:6.1f} ms | {wall / floor:4.2f}x (median of {args.runs};"
            f" pyelftools loaded: {'yes' if any(elftools) else 'no'})\n"
            f"  paired runs: median ratio {result['paired_ratio_median']:4.2f}x | CPU time"
            f" {cpu * 1e3:6.1f} ms vs {floor_cpu * 1e3:6.1f} ms: {cpu / floor_cpu:4.2f}x\n"
            "  steps (medians): "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in result["steps_ms"].items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
