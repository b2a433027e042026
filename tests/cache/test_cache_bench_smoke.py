"""bench/cache_bench.py's warm rows run, with the user's default cache root too (issue 9).

Figures are only checked for being measured and consistent, never for speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, BuiltTree


def test_the_warm_rows_run_with_a_set_and_a_default_cache_root(built_tree: BuiltTree) -> None:
    cmd = [sys.executable, str(REPO / "bench" / "cache_bench.py"), "--only", "warm-build"]
    cmd += ["--build-dir", str(built_tree.build_dir), "--runs", "1", "--json"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    for name in ("warm_4", "warm_4-default-root"):
        row = report[name]
        assert row["manifests"] == 4 and row["stat_index_lines"] > 0, name
        assert row["median_ms"] > 0 and row["floor_python_pass_ms"] > 0, name
        assert row["ratio_python_pass"] == pytest.approx(
            row["median_ms"] / row["floor_python_pass_ms"]
        )
    assert "default cache root" in report["warm_4-default-root"]["label"]
