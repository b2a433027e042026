"""docs/ci.md cannot rot: its marked shell steps run here, as three CI jobs would.

A build job (cold cache), the same job again with the saved cache restored, and
a run-only job that has just the manifests and fetches every binary from a real
Redis server.  The YAML examples must run exactly the tested commands.  The
`install` step is the one not run here (the test uses this venv); bench/ci_recipe.py
runs it too, from a fresh clone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ci.md"
SOURCES = ("SConstruct", "site_scons", "dispatcher", "runtime")


def steps(text: str | None = None) -> dict[str, str]:
    """{name: shell} of every ```sh block preceded by `<!-- ci-step: NAME -->`."""
    found = re.findall(
        r"<!-- ci-step: ([a-z]+) -->\n```sh\n(.*?)```", text or DOC.read_text(), re.DOTALL
    )
    return dict(found)


def yaml_blocks() -> dict[str, str]:
    """{section title: its ```yaml block} of docs/ci.md."""
    out = {}
    for section in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        block = re.search(r"```yaml\n(.*?)```", body, re.DOTALL)
        if block:
            out[title.strip()] = block.group(1)
    return out


def _checkout(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(workdir: Path, names: tuple[str, ...], tmp: Path, **env: str) -> str:
    recipe = steps()
    script = "set -euo pipefail\n" + "\n".join(recipe[n] for n in names)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLER_")}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    base["SIMPLER_SIM_ROOT"] = str(tmp / "sim")
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{names} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_recipe_has_its_steps() -> None:
    assert set(steps()) == {"install", "env", "build", "push", "fetch"}
    assert set(yaml_blocks()) == {"GitHub Actions", "GitLab CI"}


def test_the_yaml_files_run_the_tested_commands() -> None:
    recipe = steps()
    for title, yaml in yaml_blocks().items():
        lines = {line.strip().removeprefix("- ").strip() for line in yaml.splitlines()}
        for name in ("install", "build", "push", "fetch"):
            for command in recipe[name].strip().splitlines():
                assert command in lines, (title, name, command)
        assert re.search(r"SIMPLER_CACHE_DIR: .*/\.simpler-cache\b", yaml), title
        assert re.search(r"SIMPLER_CACHE_MAX_SIZE: \"?2Gi\b", yaml), title
        assert "SIMPLER_REMOTE_STORAGE" in yaml, title
    gitlab = yaml_blocks()["GitLab CI"]
    assert "$CI_PROJECT_DIR/.simpler-cache" in gitlab and "- .simpler-cache/" in gitlab
    assert "path: .simpler-cache" in yaml_blocks()["GitHub Actions"]
    env = recipe["env"]
    assert 'SIMPLER_CACHE_DIR="$PWD/.simpler-cache"' in env and "SIMPLER_CACHE_MAX_SIZE=2Gi" in env


def test_the_recipe_builds_warms_restores_and_fetches(tmp_path: Path) -> None:
    with RedisServer() as server:
        remote = {"SIMPLER_REMOTE_STORAGE": server.url}
        # Job 1: a cold build job on the default branch.
        first = _checkout(tmp_path / "job1")
        out = _run(first, ("env", "build", "push"), tmp_path, **remote)
        assert re.search(r"^warm: \d+ added, \d+ already present", out, re.M), out
        assert re.search(r"^gc: .* \(max 2\.0 GiB\)$", out, re.M), out
        assert re.search(r"^push: \d+ pushed", out, re.M), out
        assert "scons" in out and "root size" in out  # stats: every part of the root

        # Job 2: the same job on another runner, with job 1's saved cache restored.
        second = _checkout(tmp_path / "job2")
        shutil.copytree(first / ".simpler-cache", second / ".simpler-cache", symlinks=True)
        out = _run(second, ("env", "build"), tmp_path)
        assert "warm: 0 added, 12 already present" in out, out
        assert "Retrieved" in out, "SCons's CacheDir under the root was restored too"

        # Job 3: run-only, with the manifests as artifacts and nothing cached.
        third = tmp_path / "job3"
        for manifest in (first / "build" / "lib").glob("*/*/runtime_binaries.json"):
            dest = third / manifest.relative_to(first)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(manifest, dest)
        assert len(list(third.glob("build/lib/*/*/runtime_binaries.json"))) == 4
        out = _run(third, ("env", "fetch"), tmp_path, **remote)
        pulled = re.search(r"^fetch: (\d+) pulled .* 0 missing", out, re.M)
        assert pulled and int(pulled.group(1)) > 0, out
        assert re.search(r"^verify: \d+ checked, 0 corrupt$", out, re.M), out
