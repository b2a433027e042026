"""examples/vector_add.py, bench/runtime_bench.py and bench/worker_bench.py run end to end on
the real build (a bench that rots is found here, not when its figures are next needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize(
    ("arch", "runtime"), [("a2a3", "host_build_graph"), ("a5", "aicpu_build_graph")]
)
def test_vector_add_example_json(runtime_lib: Path, arch: str, runtime: str) -> None:
    proc = _run(
        "examples/vector_add.py",
        *("--arch", arch, "--runtime", runtime, "--runs", "25", "--json"),
        *("--build-dir", str(runtime_lib.parent)),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["checked_results"] == 50
    stats = report["stats"]
    assert (stats["arch"], stats["runtime"]) == (arch, runtime)
    assert stats["aicore_registrations"] == 1
    assert stats["aicpu_launches"] == 51  # 50 graph runs + one simpler_aicpu_init
    assert stats["aicore_launches"] == 25 * (1 + 3)


def test_vector_add_example_without_build_says_run_scons(tmp_path: Path) -> None:
    proc = _run("examples/vector_add.py", "--arch", "a5", "--build-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "runtime_binaries.json not found" in proc.stderr
    assert "scons arch=a5" in proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        (("--device", "99"), {}, "device id 99 outside 0..15"),
        ((), {"SIMPLER_SIM_HBM_BYTES": "abc"}, "SIMPLER_SIM_HBM_BYTES='abc' is not an integer"),
    ],
)
def test_vector_add_example_errors_are_one_line(
    runtime_lib: Path, args: tuple[str, ...], env: dict[str, str], problem: str
) -> None:
    """Any error of the package (here a device's and an option's) is one line, no traceback."""
    build_dir = str(runtime_lib.parent)
    proc = _run("examples/vector_add.py", "--arch", "a5", *args, "--build-dir", build_dir, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert problem in proc.stderr


def test_bench_smoke(runtime_lib: Path) -> None:
    proc = _run(
        "bench/runtime_bench.py",
        *("--arch", "a2a3", "--runs", "50", "--baseline-runs", "20", "--growth-runs", "300"),
        *("--reps", "1", "--tasks", "40", "--thread-runs", "3"),
        *("--json", "--build-dir", str(runtime_lib.parent)),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    threads = report["scheduler_threads"]
    assert (threads["tasks"], threads["max_threads"]) == (40, 4)
    assert threads["one_thread_us_per_task"] > 0 and threads["max_threads_us_per_task"] > 0
    assert report["memory"]["growth_bytes"] == 0
    assert report["launch"]["baseline_registrations"] == 21
    assert report["launch"]["cached_registrations"] == 1
    assert set(report["first_run"]) == {
        "cold_device_fs_ms",
        "preinstalled_by_other_process_ms",
        "in_process_fingerprint_set_ms",
    }


def test_worker_bench_smoke(runtime_lib: Path) -> None:
    proc = _run(
        "bench/worker_bench.py",
        *("--arch", "a2a3", "--runs", "3", "--batches", "1", "--reps", "1", "--sizes", "64"),
        *("--json", "--build-dir", str(runtime_lib.parent)),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (row,) = report["per_call"]
    assert row["n"] == 64 and row["runs_done"] == {"in_process": 4, "isolated": 4}
    assert row["in_process_us"] > 0 and row["isolated_us"] > 0
    assert set(report["startup"]) == {"in_process_ms", "isolated_ms"}
