"""Every `--json` output has exactly the top-level keys docs/json.md documents."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import make_build, run_env

from simpler_build.cache.cli import _COMMANDS
from tests.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "json.md"


def tables() -> dict[str, list[set[str]]]:
    """{section title: the key column of each of its tables} from docs/json.md."""
    out: dict[str, list[set[str]]] = {}
    title, current = "", None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            title, current = line[3:].strip().strip("`"), None
            out[title] = []
            continue
        m = re.match(r"^\| `([a-z_0-9]+)` \|", line)
        if m and title:
            if current is None:
                current = set()
                out[title].append(current)
            current.add(m.group(1))
        elif not line.startswith("|"):
            current = None
    return out


TABLES = tables()
DOCS = {title: found[0] for title, found in TABLES.items() if found}


def test_every_subcommand_is_documented() -> None:
    for sub in _COMMANDS:
        assert f"simpler-build cache {sub} --json" in DOCS, sub
    assert "simpler-build repro-check --json" in DOCS and "Errors" in DOCS


def _keys_of(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(json.loads(result.stdout))


def test_real_outputs_have_exactly_the_documented_keys(tmp_path: Path) -> None:
    make_build(tmp_path / "build", size=2000)
    env = run_env(tmp_path / "c")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "simpler_build", "cache", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with RedisServer() as server:
        runs = {
            "warm": run("warm", "--json"),
            "push": run("push", "--json", "--remote", server.url),
            "fetch": run("fetch", "--json", "--remote", server.url),
            "stats": run("stats", "--json"),
            "verify": run("verify", "--json"),
            "gc": run("gc", "--json"),
            "ls": run("ls", "--json"),
            "config": run("config", "--json"),
            "clear": run("clear", "--yes", "--json"),
        }
    assert sorted(runs) == sorted(_COMMANDS)
    for sub, result in runs.items():
        assert result.returncode == 0, (sub, result.stderr)
        keys = _keys_of(result)
        assert keys == DOCS[f"simpler-build cache {sub} --json"], sub
        assert json.loads(result.stdout)["schema_version"] == 1
        assert json.loads(result.stdout)["cache_root"] == str(tmp_path / "c")
    assert _keys_of(run("stats", "--zero", "--json")) == DOCS["simpler-build cache stats --json"]
    assert set(json.loads(runs["stats"].stdout)["parts"]) == {
        "store",
        "store_quarantine",
        "scons",
        "scons_quarantine",
        "other",
    }


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("gc", "--max-size", "x", "--json"), {"usage"}),
        (("warm", "nowhere", "--json"), {"path", "problem"}),
    ],
)
def test_errors_have_the_documented_keys(
    tmp_path: Path, args: tuple[str, ...], extra: set[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simpler_build", "cache", *args],
        cwd=tmp_path,
        env=run_env(tmp_path / "c"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    obj = json.loads(result.stderr)
    assert set(obj) == DOCS["Errors"]
    assert {"message", "kind", "exit_code"} | extra == set(obj["error"])
    assert set(obj["error"]) <= TABLES["Errors"][1]


def test_repro_check_report_keys_match_the_doc() -> None:
    tree = ast.parse((REPO / "core" / "repro.py").read_text())
    reports = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "report" for t in node.targets)
        and isinstance(node.value, ast.Dict)
    ]
    (report,) = reports
    keys = {k.value for k in report.keys if isinstance(k, ast.Constant)}
    assert keys == DOCS["simpler-build repro-check --json"]
