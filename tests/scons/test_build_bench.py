"""bench/build_bench.py's scaling row runs on this tree and on a git revision's (issue 9).

The row broke unnoticed once, when the kernel sources moved: it must find
runtime/SConscript's kernel list and build K generated kernels per arch at
any revision.  Figures are only checked for being measured, never for speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_kernels_row_builds_generated_kernels_here_and_at_a_revision() -> None:
    cmd = [sys.executable, str(REPO / "bench" / "build_bench.py"), "--only-kernels"]
    cmd += ["--kernels", "3", "--repeat", "1", "--before", "HEAD", "--json"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    row = json.loads(proc.stdout)["many_kernels"]
    assert row["kernels_per_arch"] == 3 and row["floor_empty_sconstruct_s"] > 0
    assert set(row["trees"]) == {"this tree", "before (HEAD)"}
    for figures in row["trees"].values():
        assert figures["noop_s"] > 0 and figures["noop_implicit_cache_s"] > 0
