"""A new process's first run pays only for what it uses (issue 9, "Lean entry points").

A fresh interpreter imports numpy, then records every import statement the
runtime executes (which module asked for which) and every module loaded,
while it imports `simpler_build.runtime`, loads a manifest, prepares the
chain graph and runs it once.  The promises:

- no module of `simpler_build.runtime` executes an import of dataclasses,
  inspect or typing, and the first run loads no dataclasses at all (numpy
  itself loads inspect and typing, so those are checked by importer);
- no pyelftools (not even a lookup of it), no worker machinery (multiprocessing) for an
  in-process runner, and, binaries beside their manifest, none of the cache's transfer code;
- no `json` package (its import compiles six patterns) and no `threading`;
- no enum class built and no name pattern compiled by the runtime (its ABI constants are
  plain ints with names; the device's names are checked with string operations);
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
import builtins, enum, importlib.machinery, re, sys

import numpy as np  # the floor: what the runtime needs anyway, loaded before recording

asked = []
_real = builtins.__import__


def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        asked.append(((globals or {}).get("__name__", "?"), name))
    return _real(name, globals, locals, fromlist, level)


searched = []  # top-level names looked up on sys.path (a find_spec of a module not loaded)
_real_find = importlib.machinery.PathFinder.find_spec.__func__


def _recording_find(cls, fullname, path=None, target=None):
    searched.append(fullname)
    return _real_find(cls, fullname, path, target)


compiled = []  # (module that asked, pattern) of every regex compile the first run makes
_real_compile = re._compile


def _recording_compile(pattern, flags):
    key = (type(pattern), pattern, flags)
    if key not in re._cache:
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "re":
            frame = frame.f_back
        who = "?" if frame is None else frame.f_globals.get("__name__", "?")
        compiled.append((who, str(pattern)))
    return _real_compile(pattern, flags)


def _enum_classes():
    seen, todo = set(), [enum.Enum]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


enums_before = _enum_classes()
before = set(sys.modules)
builtins.__import__ = _recording_import
importlib.machinery.PathFinder.find_spec = classmethod(_recording_find)
re._compile = _recording_compile
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
    importlib.machinery.PathFinder.find_spec = classmethod(_real_find)
    re._compile = _real_compile
report = {
    "asked": asked,
    "added": sorted(set(sys.modules) - before),
    "searched": searched,
    "compiled": compiled,
    "new_enums": sorted(f"{c.__module__}.{c.__qualname__}" for c in _enum_classes() - enums_before),
    "bootstraps": stats["dispatcher_bootstraps"],
    "probes": stats["dispatcher_probes"],
}
import json  # after the recording: the first run itself must not load it

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
    # Binaries beside their manifest: the artifact store is never opened (cache/resolve.py),
    # nor the code that moves binaries in (transfer, with its ELF reader) or the cache's errors.
    for module in ("store", "transfer", "errors"):
        assert _loaded(report, f"simpler_build.cache.{module}") == [], module
    assert _loaded(report, "simpler_build.elf") == []
    assert _loaded(report, "simpler_build.log") == []  # nothing to log to: logging is not loaded
    # The HBM pool's block search is written out: no C extension of `bisect` to load.
    assert _loaded(report, "bisect") == [] and _loaded(report, "_bisect") == []
    # JSON goes through its C scanner and encoder (simpler_build.jsonio), and the runtime
    # and the simulator lock with `_thread`: neither package's import is paid for.
    assert _loaded(report, "json") == []
    assert _loaded(report, "threading") == []


def test_a_first_run_builds_no_enum_and_compiles_no_pattern_of_its_own(
    warm_env: tuple[Path, dict[str, str]],
) -> None:
    """The ABI's constants are not enum classes and the device's and the manifest's name
    patterns are not compiled: building them cost every first run about 0.7 ms
    (runtime/abi.py, simpler_build.device, simpler_build.manifest)."""
    report = _first_run(*warm_env)
    assert report["new_enums"] == []
    compiled = report["compiled"]
    assert isinstance(compiled, list)
    ours = [
        (who, pattern)
        for who, pattern in compiled
        if who.startswith("simpler_build.runtime")
        or who in ("simpler_build.device", "simpler_build.manifest")
    ]
    assert ours == []


def test_the_runtime_never_looks_for_pyelftools(warm_env: tuple[Path, dict[str, str]]) -> None:
    """It reads ELF headers with struct, so it neither imports pyelftools nor asks whether it
    is installed (a find_spec of a module not loaded scans every sys.path entry)."""
    report = _first_run(*warm_env)
    searched = report["searched"]
    assert isinstance(searched, list) and searched  # the recorder saw the lookups there were
    assert [name for name in searched if name.partition(".")[0] == "elftools"] == []


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
    steps = row["steps_ms"]
    assert set(steps) == {"manifest", "runner", "prepare", "run", "close"}
    assert all(ms > 0 for ms in steps.values())
    assert sum(steps.values()) <= row["load_prepare_run_ms"]
