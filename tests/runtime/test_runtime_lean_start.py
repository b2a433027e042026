"""A new process's first run pays only for what it uses (issue 9, "Lean entry points").

A fresh interpreter imports numpy, then records every import statement the
runtime executes (which module asked for which) and every module loaded,
while it imports `simpler_build.runtime`, loads a manifest, prepares the
chain graph and runs it once.  The promises:

- no module of `simpler_build.runtime` executes an import of dataclasses,
  inspect or typing, and the first run loads no dataclasses at all (numpy
  itself loads inspect and typing, so those are checked by importer);
- no pyelftools, no worker machinery (multiprocessing) for an in-process runner;
- a first run whose launch helper is already built and whose inner SO is
  already installed on the device compiles nothing (no subprocess, no
  tempfile) and installs nothing (no bootstrap): it probes and loads.

Nothing here times anything: speed is bench/first_run_bench.py's to measure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Costly at start-up; `dataclasses` imports `inspect` (ast, dis, tokenize).
HEAVY = ("dataclasses", "inspect", "typing")

_RECORDER = r"""
import builtins, json, sys

import numpy as np  # the floor: what the runtime needs anyway, loaded before recording

asked = []
_real = builtins.__import__


def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        asked.append(((globals or {}).get("__name__", "?"), name))
    return _real(name, globals, locals, fromlist, level)


before = set(sys.modules)
builtins.__import__ = _recording_import
try:
    from simpler_build.runtime import DeviceRunner, RuntimeBinaries
    from simpler_build.runtime.samples import chain_graph, chain_reference

    n = 256
    a, b, c = (np.full(n, k, dtype=np.float32) for k in (1.0, 2.0, 3.0))
    with DeviceRunner(RuntimeBinaries.from_manifest(sys.argv[1])) as runner:
        (out,) = runner.prepare(chain_graph(n))(a, b, c)
        stats = runner.stats
    assert np.allclose(out, chain_reference(a, b, c))
finally:
    builtins.__import__ = _real
report = {
    "asked": asked,
    "added": sorted(set(sys.modules) - before),
    "bootstraps": stats["dispatcher_bootstraps"],
    "probes": stats["dispatcher_probes"],
}
print("IMPORTS " + json.dumps(report))
"""


def _first_run(manifest: Path, env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _RECORDER, str(manifest)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout.rpartition("IMPORTS ")[2])
    return report


def _loaded(report: dict[str, object], package: str) -> list[str]:
    added = report["added"]
    assert isinstance(added, list)
    return [m for m in added if m == package or m.startswith(package + ".")]


@pytest.fixture(scope="module")
def warm_env(
    tmp_path_factory: pytest.TempPathFactory, runtime_lib: Path
) -> tuple[Path, dict[str, str]]:
    """A manifest and the environment of a user's second process: a first one, run
    here, built the launch helper and installed the inner SO on the device."""
    tmp_path = tmp_path_factory.mktemp("warm-first-run")
    env = {
        **os.environ,
        "SIMPLER_SIM_ROOT": str(tmp_path / "sim"),
        "SIMPLER_SIM_NATIVE_DIR": str(tmp_path / "native"),
    }
    manifest = runtime_lib / "a5" / "host_build_graph" / "runtime_binaries.json"
    first = _first_run(manifest, env)
    assert first["bootstraps"] == 1  # this one installed the SO (and compiled the helper)
    assert "subprocess" in first["added"]  # type: ignore[operator]
    return manifest, env


def test_a_first_run_executes_no_dataclass_or_typing_import_in_the_runtime(
    warm_env: tuple[Path, dict[str, str]],
) -> None:
    report = _first_run(*warm_env)
    assert "simpler_build.runtime.runner" in report["added"]  # type: ignore[operator]
    asked = report["asked"]
    assert isinstance(asked, list)
    heavy = sorted(
        {
            (who, name)
            for who, name in asked
            if who.startswith("simpler_build.runtime") and name.partition(".")[0] in HEAVY
        }
    )
    assert heavy == []
    assert _loaded(report, "dataclasses") == []
    assert _loaded(report, "elftools") == []
    # The worker (multiprocessing, sockets) loads only for DeviceRunner(isolate=True).
    assert _loaded(report, "simpler_build.runtime.worker") == []
    assert _loaded(report, "multiprocessing") == []
    # Binaries beside their manifest: the artifact store is never opened (cache/resolve.py).
    assert _loaded(report, "simpler_build.cache.store") == []


def test_a_warm_first_run_compiles_and_installs_nothing(
    warm_env: tuple[Path, dict[str, str]],
) -> None:
    """The helper is built and the SO installed: the process probes, loads and runs."""
    report = _first_run(*warm_env)
    assert report["bootstraps"] == 0 and report["probes"] == 1
    for module in ("subprocess", "tempfile", "shlex"):
        assert _loaded(report, module) == [], module


def test_first_run_bench_reports_the_row_against_import_numpy(runtime_lib: Path) -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "first_run_bench.py"
    args = ["--runs", "1", "--json", "--build-dir", str(runtime_lib.parent)]
    proc = subprocess.run(
        [sys.executable, str(bench), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["first_run_ms"] > 0 and row["floor_import_numpy_ms"] > 0
    assert row["ratio"] == pytest.approx(row["first_run_ms"] / row["floor_import_numpy_ms"])
    assert row["paired_ratio_median"] > 0 and row["cpu_ms"] > 0 and row["floor_cpu_ms"] > 0
    assert row["cpu_ratio"] == pytest.approx(row["cpu_ms"] / row["floor_cpu_ms"])
    assert row["pyelftools_loaded"] is False
