"""A remote that fails never fails a build or a run: one warning, then the local cache.

Every failure is real: servers are SIGKILLed, SIGSTOPped or out of memory.
The only error is a binary available nowhere, named in one line.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import load_manifest
from simpler_build.remote import open_remotes
from simpler_build.runtime import BinaryError, RuntimeBinaries
from tests.conftest import REPO, scons
from tests.redis_servers import RedisCluster, RedisServer
from tests.remote.remote_helpers import (
    cli,
    cli_popen,
    machine_env,
    manifests_only,
    objects_in,
    synthetic_build,
    temp_files,
    warnings_in,
)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)


def _check_cache(cache_dir: Path, blobs: dict[str, bytes]) -> int:
    """Every published object is whole and right, and nothing is half-written."""
    cache = ArtifactCache(cache_dir)
    assert cache.verify().clean
    for entry in cache.ls():
        assert entry.path.read_bytes() == blobs[entry.fingerprint]
    assert temp_files(cache_dir) == []
    return len(cache.ls())


def test_server_down_before_the_build(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.kill()
    env = machine_env(tmp_path, remote=redis_server.url)
    build = tmp_path / "build"
    proc = scons("-j2", "arch=all", f"build_dir={build}", cwd=REPO, env=env)
    assert proc.returncode == 0
    assert len(warnings_in(proc.stderr)) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    cache = ArtifactCache(tmp_path / "cache")
    for m in build.rglob("runtime_binaries.json"):
        for record in load_manifest(m).binaries.values():
            assert cache.contains(record.fingerprint)
    assert cache.stats().remote_errors >= 1


def test_server_killed_mid_fetch(redis_server: RedisServer, tmp_path: Path) -> None:
    """42 objects of 8 MiB, one pipeline each; the server dies once the first objects land."""
    blobs = synthetic_build(tmp_path / "build", 14, 8 << 20)
    a = machine_env(tmp_path / "A", remote=redis_server.url)
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    b = machine_env(tmp_path / "B", remote=redis_server.url, SIMPLER_REMOTE_TIMEOUT="30")
    cache_dir = tmp_path / "B" / "cache"

    fetch = cli_popen("fetch", str(tree), env=b)
    try:
        _wait_for(lambda: objects_in(cache_dir) or fetch.poll() is not None, 60, "a first object")
        redis_server.kill()
        out, err = fetch.communicate(timeout=60)
    finally:
        if fetch.poll() is None:
            fetch.kill()
    assert fetch.returncode == 1, out + err
    assert len(warnings_in(err)) == 1 and "Traceback" not in err
    missing = [line for line in err.splitlines() if "is available nowhere" in line]
    assert missing, err
    have = _check_cache(cache_dir, blobs)
    assert 0 < have < len(blobs) and have + len(missing) == len(blobs)

    # The server comes back (empty); the builder pushes again; the fetch completes.
    redis_server.start().wait_ready()
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    again = cli("fetch", str(tree), env=b)
    assert again.returncode == 0, again.stderr
    assert _check_cache(cache_dir, blobs) == len(blobs)


def test_hung_server_times_out_with_one_warning(redis_server: RedisServer, tmp_path: Path):
    blobs = synthetic_build(tmp_path / "build", 2, 1000)
    a = machine_env(tmp_path / "A", remote=redis_server.url)
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    redis_server.pause()
    try:
        b = machine_env(tmp_path / "B", remote=f"{redis_server.url}|timeout=0.3")
        result = cli("fetch", str(tree), env=b, timeout=60)
        assert result.returncode == 1
        assert len(warnings_in(result.stderr)) == 1 and "Timeout" in result.stderr
        assert result.stderr.count("is available nowhere") == len(blobs)
        # The runtime: no hang, one clear BinaryError naming the command that fills it.
        with pytest.raises(BinaryError, match="is available nowhere") as info:
            RuntimeBinaries.from_manifest(
                tree / "m0000",
                cache=ArtifactCache(tmp_path / "C"),
                remotes=open_remotes(f"{redis_server.url}|timeout=0.3"),
            )
        assert "simpler-build cache fetch" in str(info.value)
    finally:
        redis_server.resume()


def test_out_of_memory_server_is_a_warning(redis_server_factory, tmp_path: Path) -> None:
    server = redis_server_factory(config={"maxmemory": "2mb", "maxmemory-policy": "noeviction"})
    synthetic_build(tmp_path / "build", 3, 1 << 20)
    env = machine_env(tmp_path, remote=server.url)
    result = cli("push", str(tmp_path / "build"), env=env)
    assert result.returncode == 0, result.stderr
    (warning,) = warnings_in(result.stderr)
    assert "OutOfMemoryError: command not allowed when used memory > 'maxmemory'" in warning
    assert f"could not write to {server.url}" in result.stdout
    assert ArtifactCache(tmp_path / "cache").stats().remote_errors >= 1


def test_a_cluster_node_dies_while_8_processes_fetch(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    blobs = synthetic_build(tmp_path / "build", 40, 256 << 10)
    a = machine_env(tmp_path / "A", remote=redis_cluster.url)
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    procs = []
    for i in range(8):
        env = machine_env(tmp_path / f"B{i}", remote=redis_cluster.url)
        procs.append((tmp_path / f"B{i}" / "cache", cli_popen("fetch", str(tree), env=env)))
    try:
        _wait_for(
            lambda: (
                any(objects_in(c) for c, _ in procs) or all(p.poll() is not None for _, p in procs)
            ),
            60,
            "a first fetched object",
        )
        redis_cluster.kill_node(1)
        outcomes = []
        for cache_dir, proc in procs:
            _out, err = proc.communicate(timeout=120)
            assert "Traceback" not in err
            have = _check_cache(cache_dir, blobs)  # no wrong bytes, nothing torn
            missing = [line for line in err.splitlines() if "is available nowhere" in line]
            if proc.returncode == 0:
                assert have == len(blobs) and not missing
            else:
                assert proc.returncode == 1 and missing, err
                assert have + len(missing) == len(blobs)
            outcomes.append(proc.returncode)
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    assert len(outcomes) == 8


def test_stats_json_has_the_remote_counters(tmp_path: Path) -> None:
    env = machine_env(tmp_path)
    stats = json.loads(cli("stats", "--json", env=env).stdout)
    for key in (
        "remote_hits",
        "remote_misses",
        "remote_errors",
        "remote_rejected",
        "bytes_pulled",
        "bytes_pushed",
    ):
        assert stats[key] == 0
