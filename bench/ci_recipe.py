"""Time docs/ci.md as a new CI runner would follow it: from `git clone` to a green warm.

A simulated runner: a fresh clone of the repository (its committed HEAD) in a
temp directory, then the recipe's marked shell steps (`install`, `env`,
`build`) in one bash, exactly as docs/ci.md lists them (tests/test_ci_recipe.py
extracts them the same way).  Then the job again, on a second fresh clone with
the first job's `.simpler-cache` restored, as a CI cache would.  The floor,
measured in the same run, is what any job pays before the recipe starts:
`git clone` plus creating a venv.

Needs the network (or a warm pip cache) for `pip install`.  Figures are wall
times on this machine; the steps that share CPU with other work are noisy.

    python bench/ci_recipe.py [--source REPO] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = ("install", "env", "build")


def recipe(doc: Path) -> dict[str, str]:
    return dict(re.findall(r"<!-- ci-step: ([a-z]+) -->\n```sh\n(.*?)```", doc.read_text(), re.S))


def clone(source: Path, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(source), str(dest)], check=True)
    return time.perf_counter() - start


def run_job(workdir: Path, steps: dict[str, str], sim: Path) -> dict[str, float]:
    """Run the steps in one bash; return each step's seconds (from markers between them)."""
    parts = ["set -euo pipefail"]
    for name in STEPS:
        parts += [f'echo "@@ {name} $(date +%s.%N)"', steps[name]]
    parts.append('echo "@@ end $(date +%s.%N)"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMPLER_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env["SIMPLER_SIM_ROOT"] = str(sim)
    proc = subprocess.run(
        ["bash", "-c", "\n".join(parts)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        sys.exit(f"ci_recipe: the recipe failed in {workdir}:\n{proc.stdout}\n{proc.stderr}")
    marks = [
        (m.group(1), float(m.group(2)))
        for m in re.finditer(r"^@@ (\w+) ([\d.]+)$", proc.stdout, re.M)
    ]
    if "warm: " not in proc.stdout:
        sys.exit(f"ci_recipe: no warm summary in the output:\n{proc.stdout}")
    return {name: round(marks[i + 1][1] - t, 3) for i, (name, t) in enumerate(marks[:-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO, help="repository to clone")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    steps = recipe(args.source / "docs" / "ci.md")
    missing = [s for s in STEPS if s not in steps]
    if missing:
        sys.exit(f"ci_recipe: docs/ci.md has no ci-step {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="ci-recipe-") as tmp:
        work = Path(tmp)
        # Floor: what every job pays before the recipe starts.
        t_clone = clone(args.source, work / "floor")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(work / "floor-venv")], check=True)
        t_venv = time.perf_counter() - start
        shutil.rmtree(work / "floor")

        cold_clone = clone(args.source, work / "job1")
        cold = run_job(work / "job1", steps, work / "sim")
        warm_clone = clone(args.source, work / "job2")
        shutil.copytree(work / "job1" / ".simpler-cache", work / "job2" / ".simpler-cache")
        restored = run_job(work / "job2", steps, work / "sim")
    result = {
        "floor_seconds": {"git_clone": round(t_clone, 3), "venv": round(t_venv, 3)},
        "cold_cache": {"git_clone": round(cold_clone, 3), **cold},
        "restored_cache": {"git_clone": round(warm_clone, 3), **restored},
    }
    for key in ("cold_cache", "restored_cache"):
        result[key]["total"] = round(sum(result[key].values()), 3)
    result["floor_seconds"]["total"] = round(t_clone + t_venv, 3)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("clone -> green `simpler-build cache warm`, following docs/ci.md (seconds)")
    print(f"{'step':12} {'cold cache':>11} {'restored':>11} {'floor':>8}")
    floor = result["floor_seconds"]
    for step in ("git_clone", *STEPS, "total"):
        f = floor.get(step if step != "install" else "venv", "")
        print(
            f"{step:12} {result['cold_cache'][step]:11.2f} "
            f"{result['restored_cache'][step]:11.2f} {f!s:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
