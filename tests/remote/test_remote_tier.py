"""The remote tier end to end, against real redis-server processes on loopback.

Machine A builds and pushes; machine B, holding only the manifests, fetches
and runs.  The server is untrusted: poisoned values are refused, counted and
never cached.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import MANIFEST_NAME, load_manifest
from simpler_build.remote import meta_key, obj_key
from tests.cache.cache_helpers import run_processes
from tests.conftest import ARCHES, REPO, RUNTIMES, scons
from tests.redis_servers import RedisCluster, RedisServer
from tests.remote.remote_helpers import (
    cli,
    machine_env,
    manifests_only,
    objects_in,
    synthetic_build,
    temp_files,
    warnings_in,
)


def _distinct_binaries(build: Path) -> dict[str, int]:
    """{fingerprint: size} of every binary the build's manifests name."""
    out = {}
    for m in build.rglob(MANIFEST_NAME):
        for record in load_manifest(m).binaries.values():
            out[record.fingerprint] = record.size
    return out


def test_two_machines_build_push_then_fetch_and_run(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Machine A: its own HOME and cache root; the build itself pushes.
    a = machine_env(tmp_path / "A", remote=redis_server.url)
    build = tmp_path / "A" / "build"
    scons("-j2", "arch=all", f"build_dir={build}", cwd=REPO, env=a)
    binaries = _distinct_binaries(build)
    assert len(binaries) >= len(ARCHES) * (len(RUNTIMES) + 1)
    with redis_server.client() as r:
        for fp in binaries:
            assert r.exists(obj_key(fp)) and r.exists(meta_key(fp))
    again = cli("push", str(build), env=a)  # idempotent: nothing is sent twice
    assert again.returncode == 0, again.stderr
    assert f"push: 0 pushed (0 B), {len(binaries)} already present" in again.stdout

    # Machine B: a fresh cache root and a tree holding only the manifests.
    b = machine_env(tmp_path / "B", remote=redis_server.url)
    tree = manifests_only(build, tmp_path / "B" / "tree")
    assert not [p for p in tree.rglob("*") if p.is_file() and p.name != MANIFEST_NAME]
    fetched = cli("fetch", str(tree), env=b)
    assert fetched.returncode == 0, fetched.stderr
    for arch in ARCHES:
        run = subprocess.run(
            [
                sys.executable,
                "examples/vector_add.py",
                "--arch",
                arch,
                "--runs",
                "3",
                "--json",
                "--build-dir",
                str(tree),
            ],
            cwd=REPO,
            env=b,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["ok"] and report["checked_results"] == 6
    stats = json.loads(cli("stats", "--json", env=b).stdout)
    assert stats["remote_hits"] == len(binaries)
    assert stats["bytes_pulled"] == sum(binaries.values())
    assert (stats["remote_rejected"], stats["remote_errors"], stats["remote_misses"]) == (0, 0, 0)
    assert stats["hits"] >= 2 * 3  # the runs read every binary from the cache, verified


def test_read_only_remote_fetches_and_never_writes(redis_server: RedisServer, tmp_path: Path):
    blobs = synthetic_build(tmp_path / "build", 2, 4096)
    ro = f"{redis_server.url}|read-only"
    a = machine_env(tmp_path / "A", remote=ro)
    pushed = cli("push", str(tmp_path / "build"), env=a)
    assert pushed.returncode == 0, pushed.stderr
    assert f"{redis_server.url} is read-only; nothing pushed to it" in pushed.stdout
    with redis_server.client() as r:
        assert r.dbsize() == 0
    # Filled by a trusted writer, a read-only runner fetches.
    assert cli("push", "--remote", redis_server.url, str(tmp_path / "build"), env=a).returncode == 0
    b = machine_env(tmp_path / "B", remote=ro)
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    fetched = cli("fetch", str(tree), env=b)
    assert fetched.returncode == 0, fetched.stderr
    assert len(objects_in(tmp_path / "B" / "cache")) == len(blobs)


def test_a_percent_encoded_password_authenticates(redis_server: RedisServer, tmp_path: Path):
    """An ACL user whose password holds "@", ":" and "/" (written %40, %3A, %2F in the URL)
    pushes and fetches; the literal "%40..." was sent as the password and AUTH failed."""
    with redis_server.client() as r:
        r.execute_command("ACL", "SETUSER", "ci", "on", ">p@ss:w/rd", "~simpler:*", "+@all")
    url = f"redis://ci:p%40ss%3Aw%2Frd@127.0.0.1:{redis_server.port}"
    blobs = synthetic_build(tmp_path / "build", 1, 4096)
    pushed = cli("push", str(tmp_path / "build"), env=machine_env(tmp_path / "A", remote=url))
    assert pushed.returncode == 0 and warnings_in(pushed.stderr) == [], pushed.stderr
    assert "p@ss" not in pushed.stdout + pushed.stderr
    with redis_server.client(username="ci", password="p@ss:w/rd") as r:
        assert all(r.exists(obj_key(fp)) for fp in blobs)
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    fetched = cli("fetch", str(tree), env=machine_env(tmp_path / "B", remote=url))
    assert fetched.returncode == 0, fetched.stderr
    assert len(objects_in(tmp_path / "B" / "cache")) == len(blobs)


def test_values_above_max_size_are_not_pushed(redis_server: RedisServer, tmp_path: Path):
    small = synthetic_build(tmp_path / "build", 1, 1000)
    big = synthetic_build(tmp_path / "build" / "big", 1, 64 << 10, seed=1)
    env = machine_env(tmp_path / "A", remote=f"{redis_server.url}|max-size=16K")
    result = cli("push", str(tmp_path / "build"), env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "larger than" in line]
    assert len(lines) == 1 and all(fp in lines[0] for fp in big)  # reported once, one line
    with redis_server.client() as r:
        assert all(r.exists(obj_key(fp)) for fp in small)
        assert not any(r.exists(obj_key(fp)) for fp in big)


def _poison_setup(server: RedisServer, tmp_path: Path) -> tuple[Path, dict, dict[str, bytes]]:
    blobs = synthetic_build(tmp_path / "build", 1, 10_000)
    a = machine_env(tmp_path / "A", remote=server.url)
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    return tree, machine_env(tmp_path / "B", remote=server.url), blobs


def _assert_refused(result: subprocess.CompletedProcess, cache_dir: Path, fp: str) -> None:
    assert result.returncode == 1
    assert f"refused inner_so {fp}" in result.stderr
    assert f"inner_so {fp} (inner_so.bin) is available nowhere" in result.stderr
    assert "Traceback" not in result.stderr
    assert fp not in {p.name[len("simpler_inner_") : -3] for p in objects_in(cache_dir)}
    assert temp_files(cache_dir) == []
    assert ArtifactCache(cache_dir).stats().remote_rejected == 1


def test_poisoned_object_with_a_wrong_xxh3_is_refused(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    tree, b, _ = _poison_setup(redis_server, tmp_path)
    manifest = load_manifest(tree / "m0000")
    fp = manifest.inner_so.fingerprint
    with redis_server.client() as r:  # the bytes of another object under this key
        r.set(obj_key(fp), r.get(obj_key(manifest.aicore.fingerprint)))
    result = cli("fetch", str(tree), env=b)
    _assert_refused(result, tmp_path / "B" / "cache", fp)
    assert "content hashes to" in result.stderr
    # The two intact objects were still pulled.
    assert len(objects_in(tmp_path / "B" / "cache")) == 2


def test_poisoned_object_whose_xxh3_matches_but_sha256_does_not(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """An XXH3 collision: the server's bytes hash to the fingerprint, but they are
    not what the manifest's builder produced, so the SHA-256 differs."""
    tree, b, _ = _poison_setup(redis_server, tmp_path)
    path = tree / "m0000" / MANIFEST_NAME
    data = json.loads(path.read_text())
    fp = data["binaries"]["inner_so"]["fingerprint"]
    built = hashlib.sha256(b"what the trusted builder really produced").hexdigest()
    data["binaries"]["inner_so"]["sha256"] = built
    path.write_text(json.dumps(data))
    result = cli("fetch", str(tree), env=b)
    _assert_refused(result, tmp_path / "B" / "cache", fp)
    assert f"does not match {built} from the manifest" in result.stderr


def test_schema_1_manifest_trusts_the_servers_metadata_and_refuses_a_patched_one(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    tree, b, _ = _poison_setup(redis_server, tmp_path)
    path = tree / "m0000" / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["schema_version"] = 1
    for entry in data["binaries"].values():
        del entry["sha256"]
    path.write_text(json.dumps(data))
    fp = data["binaries"]["inner_so"]["fingerprint"]
    with redis_server.client() as r:
        meta = json.loads(r.get(meta_key(fp)))
        meta["sha256"] = "0" * 64
        r.set(meta_key(fp), json.dumps(meta))
    result = cli("fetch", str(tree), env=b)
    _assert_refused(result, tmp_path / "B" / "cache", fp)
    assert "trusting the server" in result.stderr
    with redis_server.client() as r:  # restored metadata: accepted, on the server's word
        r.set(
            meta_key(fp),
            json.dumps({**meta, "sha256": hashlib.sha256(r.get(obj_key(fp))).hexdigest()}),
        )
    assert cli("fetch", str(tree), env=b).returncode == 0
    assert len(objects_in(tmp_path / "B" / "cache")) == 3


def test_push_and_fetch_through_a_cluster(redis_cluster: RedisCluster, tmp_path: Path) -> None:
    blobs = synthetic_build(tmp_path / "build", 20, 2048)
    a = machine_env(tmp_path / "A", remote=redis_cluster.url)
    pushed = cli("push", str(tmp_path / "build"), env=a)
    assert pushed.returncode == 0, pushed.stderr
    assert f"push: {len(blobs)} pushed" in pushed.stdout
    holders = set()
    for i, node in enumerate(redis_cluster.nodes):
        with node.client() as r:
            if r.dbsize():
                holders.add(i)
    assert len(holders) == len(redis_cluster.nodes)  # the keys really are spread over slots
    b = machine_env(tmp_path / "B", remote=redis_cluster.url)
    fetched = cli("fetch", "--json", str(manifests_only(tmp_path / "build", tmp_path / "t")), env=b)
    assert fetched.returncode == 0, fetched.stderr
    assert len(json.loads(fetched.stdout)["pulled"]) == len(blobs)
    cache = ArtifactCache(tmp_path / "B" / "cache")
    assert cache.verify().clean
    for fp, data in blobs.items():
        assert cache.get(fp).read_bytes() == data


def _fetch_worker(cache_dir: str, tree: str, url: str, start: object) -> int:
    """One of many concurrent fetchers: wait for the others, pull, return how many it added."""
    from simpler_build.cache.store import ArtifactCache
    from simpler_build.cache.transfer import collect_manifests, pull, wanted_of
    from simpler_build.remote import open_remotes

    cache = ArtifactCache(cache_dir)
    wanted = [w for m in collect_manifests([tree]) for w in wanted_of(m)]
    start.wait()  # type: ignore[attr-defined]
    report = pull(cache, wanted, open_remotes(url))
    assert report.complete, [w.fingerprint for w in report.missing]
    return sum(1 for e in (cache.entry(w.fingerprint) for w in report.pulled) if e)


def test_16_processes_fetch_into_one_empty_cache(redis_server: RedisServer, tmp_path: Path):
    blobs = synthetic_build(tmp_path / "build", 4, 1 << 20)
    a = machine_env(tmp_path / "A", remote=redis_server.url)
    assert cli("push", str(tmp_path / "build"), env=a).returncode == 0
    tree = manifests_only(tmp_path / "build", tmp_path / "tree")
    cache_dir = tmp_path / "shared-cache"
    start = mp.get_context("spawn").Barrier(16)
    results = run_processes(
        [(_fetch_worker, (str(cache_dir), str(tree), redis_server.url, start))] * 16
    )
    assert len(results) == 16
    cache = ArtifactCache(cache_dir)
    stats = cache.stats()
    assert stats.added == len(blobs)  # every binary was written exactly once
    assert stats.entries == len(blobs) and cache.verify().clean
    for fp, data in blobs.items():
        assert cache.get(fp).read_bytes() == data  # no torn bytes
    assert temp_files(cache_dir) == []
