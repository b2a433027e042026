"""The cheap entry points pay only for what they use (issue 9, "Lean entry points").

Each command runs in a fresh interpreter whose `__import__` records every
import statement executed (which module asked for which) and every module
loaded.  The promises:

- `cache warm`, `fetch`, `get` and `stats` never load numpy or pyelftools,
  and the runtime's import path (and `RuntimeBinaries`) never loads pyelftools;
- no module of the cache read path (store, warm, fingerprint, index,
  transfer, resolve, manifest, elf, files) executes an
  import of dataclasses, inspect, typing or argparse;
- `cache warm` and `cache stats` in their usual forms load none of them at all
  (nor shutil): the CLI parses those forms without argparse.

Nothing here times anything: speed is bench/cache_bench.py's to measure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import make_build, run_env

from simpler_build.cache.store import ArtifactCache
from simpler_build.manifest import load_manifest

#: Modules of the read path that must not be the importer of a heavy module.
READ_PATH = frozenset(
    {
        "simpler_build.cache",
        "simpler_build.cache._entry",
        "simpler_build.cache._record",
        "simpler_build.cache.store",
        "simpler_build.cache.warm",
        "simpler_build.cache.fingerprint",
        "simpler_build.cache.index",
        "simpler_build.cache.transfer",
        "simpler_build.cache.resolve",
        "simpler_build.cache.atomic",
        "simpler_build.cache._flock",
        "simpler_build.manifest",
        "simpler_build.elf",
        "simpler_build.files",
    }
)
#: Costly at start-up (dataclasses pulls in inspect: ast, dis, tokenize).
HEAVY = ("dataclasses", "inspect", "typing", "argparse")
#: Never loaded at all on these paths.
NEVER = ("numpy", "elftools")

_RECORDER = r"""
import builtins, json, sys

asked = []
_real = builtins.__import__


def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        asked.append(((globals or {}).get("__name__", "?"), name))
    return _real(name, globals, locals, fromlist, level)


builtins.__import__ = _recording_import
try:
    exec(compile(sys.argv[1], "<command>", "exec"))
finally:
    builtins.__import__ = _real
    report = {"asked": asked, "loaded": sorted(sys.modules)}
    sys.stderr.write("\nIMPORTS " + json.dumps(report) + "\n")
"""


class Imports:
    """What a fresh process running some code imported."""

    def __init__(self, report: dict[str, list]) -> None:
        self.asked = [tuple(pair) for pair in report["asked"]]  # (importer, module)
        self.loaded = set(report["loaded"])

    def loaded_any(self, package: str) -> list[str]:
        return sorted(m for m in self.loaded if m == package or m.startswith(package + "."))

    def heavy_asked_by_read_path(self) -> set[tuple[str, str]]:
        return {
            (who, name)
            for who, name in self.asked
            if who in READ_PATH and name.partition(".")[0] in HEAVY
        }


def _imports(code: str, cache_dir: Path) -> Imports:
    """The imports `code` executed in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _RECORDER, code],
        capture_output=True,
        text=True,
        env=run_env(cache_dir),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stderr.rpartition("\nIMPORTS ")[2]
    return Imports(json.loads(line))


def _check_lean(imports: Imports) -> None:
    assert "simpler_build.cache.store" in imports.loaded  # the cache code really ran
    for name in NEVER:
        assert imports.loaded_any(name) == []
    assert imports.heavy_asked_by_read_path() == set()


@pytest.fixture
def warm_build(tmp_path: Path, cache_dir: Path) -> Path:
    """A build of 4 manifests, already warmed into `cache_dir`."""
    build = tmp_path / "build"
    make_build(build, size=20_000)
    from simpler_build.cache.warm import warm

    warm(ArtifactCache(cache_dir), [build])
    return build


@pytest.mark.parametrize("command", ["warm", "fetch", "stats"])
def test_cli_commands_load_nothing_heavy_from_the_read_path(
    warm_build: Path, cache_dir: Path, command: str
) -> None:
    args = [command] if command == "stats" else [command, str(warm_build)]
    imports = _imports(
        f"from simpler_build.cli import main\nassert main({['cache', *args]!r}) == 0\n",
        cache_dir,
    )
    _check_lean(imports)


def test_verified_get_loads_nothing_heavy(warm_build: Path, cache_dir: Path) -> None:
    manifest = load_manifest(warm_build / "a5" / "host_build_graph")
    imports = _imports(
        "from simpler_build.cache.store import ArtifactCache\n"
        f"assert ArtifactCache({str(cache_dir)!r}).get({manifest.inner_so.fingerprint!r})\n",
        cache_dir,
    )
    _check_lean(imports)


def test_runtime_import_and_binaries_load_no_pyelftools(warm_build: Path, cache_dir: Path) -> None:
    """The runtime reads ELF headers with struct; its import path never loads pyelftools.

    (RuntimeBinaries stays a dataclass: the runtime's graph and runner modules
    load dataclasses anyway, with numpy.)
    """
    imports = _imports(
        "import simpler_build.runtime\n"
        "from simpler_build.runtime.binaries import check_elf\n"
        "from pathlib import Path\n"
        f"check_elf(Path({str(warm_build / 'a5' / 'host_build_graph' / 'aicore_kernel.o')!r}),"
        " 'aicore')\n",
        cache_dir,
    )
    assert "simpler_build.runtime.binaries" in imports.loaded
    assert imports.loaded_any("elftools") == []
    # The worker (multiprocessing, sockets) loads only for DeviceRunner(isolate=True).
    assert imports.loaded_any("simpler_build.runtime.worker") == []
    assert imports.loaded_any("multiprocessing") == []
    assert imports.heavy_asked_by_read_path() == set()  # through resolve, manifest, files


#: Never loaded at all by `cache warm` and `cache stats` in their usual forms:
#: cache/cli.py's fast_parse answers them without argparse (gettext, shutil, ...).
NOT_AT_ALL = ("argparse", "dataclasses", "inspect", "typing", "shutil")


@pytest.mark.parametrize(
    "args", [["warm"], ["warm", "--json", "-v"], ["stats"], ["stats", "--json"]]
)
def test_usual_warm_and_stats_load_no_argparse_dataclasses_or_typing(
    warm_build: Path, cache_dir: Path, args: list[str]
) -> None:
    if args[0] == "warm":
        args = [*args, str(warm_build)]
    imports = _imports(
        f"from simpler_build.cli import main\nassert main({['cache', *args]!r}) == 0\n",
        cache_dir,
    )
    _check_lean(imports)
    for name in NOT_AT_ALL:
        assert imports.loaded_any(name) == [], name
