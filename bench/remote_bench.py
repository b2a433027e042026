"""Remote-tier benchmark: a cold runner's fetch vs a clean build, pull throughput, overhead.

    python bench/remote_bench.py [--repeat N] [--jobs J] [--objects N] [--json]

Prints, each next to a floor or baseline measured in the same run:
  1. cold CI runner: `simpler-build cache fetch` of every binary an `arch=all`
     build names (manifests only, empty cache, local Redis) vs a cold clean
     `scons -jJ arch=all` (fresh build_dir and cache root);
  2. fetch throughput for N distinct 365 KB objects: pipelined `transfer.pull`
     vs one round trip per object (same verify + put) vs a plain file copy,
     plus pipelined `transfer.push`;
  3. overhead: `cache fetch` of 100 manifests on a warm cache vs the start-up
     of `python -c "import xxhash"`.

Starts its own redis-server on 127.0.0.1 (tests/redis_servers.py) and always
stops it.  Caches live in a temp dir; the user's cache and any configured
SIMPLER_REMOTE_STORAGE are never touched.  Medians of N repeats; loopback
round trips are ~50 us, so on a real network pipelining gains more than here.
Nothing is asserted on timing: this is a report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import xxhash

from simpler_build.cache.fingerprint import clear_memo, sha256_bytes
from simpler_build.cache.store import ArtifactCache
from simpler_build.cache.transfer import (
    Wanted,
    check_pulled,
    collect_manifests,
    pull,
    push,
    unique,
    wanted_of,
)
from simpler_build.elf import shared_object_header
from simpler_build.manifest import (
    MANIFEST_NAME,
    BinaryRecord,
    Manifest,
    dump_manifest,
    find_manifests,
)
from simpler_build.remote import RemoteStorage, meta_key, obj_key, parse_url
from simpler_build.remote.storage import batches

if TYPE_CHECKING:
    from tests.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the only address this bench ever talks to
OBJECT_SIZE = 365_000  # the a5 inner SO, roughly (as in cache_bench.py)
OVERHEAD_MANIFESTS = 100
T = TypeVar("T")


# -- helpers ----------------------------------------------------------------------------


def start_redis() -> RedisServer:
    """A throwaway redis-server on a free 127.0.0.1 port (the tests' own helper)."""
    sys.path.insert(0, str(REPO))
    from tests.redis_servers import RedisServer

    server = RedisServer()
    try:
        return server.start().wait_ready()
    except BaseException:
        server.stop()
        raise


def child_env(cache_dir: Path) -> dict[str, str]:
    """The environment of every timed child: bytecode caching on, no remote, private cache."""
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(cache_dir)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # timings include .pyc reuse, as users see them
    env.pop("SIMPLER_REMOTE_STORAGE", None)  # `scons` must not push; `fetch` gets --remote
    return env


def timed_run(cmd: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Wall seconds of one child; a failing child stops the bench with its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def cli() -> list[str]:
    """The installed `simpler-build` script next to this interpreter, as CI runs it."""
    exe = Path(sys.executable).with_name("simpler-build")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "simpler_build.cli"]


def distinct(sources: Sequence[Path]) -> list[Wanted]:
    return unique(w for m in collect_manifests(sources) for w in wanted_of(m))


def remote_for(server: RedisServer) -> RemoteStorage:
    return RemoteStorage(parse_url(server.url, "bench"))


def check_cached(cache_dir: Path, wanted: Sequence[Wanted]) -> None:
    """Outside the timing: a fetch that did not fill the cache must not report a figure."""
    cache = ArtifactCache(cache_dir)
    missing = [w.label() for w in wanted if not cache.contains(w.fingerprint)]
    if missing:
        raise RuntimeError(f"{cache_dir}: not filled: {', '.join(missing[:5])}")


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


# -- 1. cold CI runner ------------------------------------------------------------------


def scons_cmd(build_dir: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "SCons", "-Q", f"-j{jobs}", "arch=all", f"build_dir={build_dir}"]


def manifests_only(build_dir: Path, dest: Path) -> None:
    """Copy just the manifests, keeping their paths: what the build job hands to runners."""
    for src in find_manifests(build_dir):
        out = dest / src.relative_to(build_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)


def bench_cold_runner(work: Path, server: RedisServer, repeat: int, jobs: int) -> dict[str, Any]:
    # Untimed seed build: its binaries go to Redis, its manifests to the runners.  It also
    # writes SCons's .pyc files, so the timed builds start as a CI image would.
    seed = work / "seed"
    timed_run(scons_cmd(seed / "build", jobs), child_env(seed / "cache"), REPO)
    wanted = distinct([seed / "build"])
    remote = remote_for(server)
    pushed = push(ArtifactCache(seed / "cache"), wanted, [remote])
    remote.close()
    if pushed.unavailable or remote.errors:
        raise RuntimeError(f"seed push failed: {pushed.to_json()}")
    manifests = work / "manifests"
    manifests_only(seed / "build", manifests)
    fetch = [*cli(), "cache", "fetch", str(manifests), "--remote", server.url]
    timed_run(fetch, child_env(work / "fetch-warmup"), REPO)  # writes simpler_build's .pyc

    fetches, builds = [], []
    for i in range(repeat):
        cache_dir = work / f"fetch{i}"
        fetches.append(timed_run(fetch, child_env(cache_dir), REPO))
        check_cached(cache_dir, wanted)
        build_dir, build_cache = work / f"build{i}", work / f"build-cache{i}"
        builds.append(timed_run(scons_cmd(build_dir, jobs), child_env(build_cache), REPO))
        shutil.rmtree(build_dir)
        shutil.rmtree(build_cache)
    f, b = median(fetches), median(builds)
    return {
        "manifests": len(find_manifests(manifests)),
        "objects": len(wanted),
        "bytes": sum(w.size for w in wanted),
        "fetch_s": f,
        "clean_build_s": b,
        "build_over_fetch": b / f,
        "jobs": jobs,
    }


# -- 2. fetch throughput ----------------------------------------------------------------


def synth_objects(root: Path, n: int, size: int) -> tuple[Path, list[Path]]:
    """N distinct random objects plus schema-2 manifests naming them, 3 per manifest.

    ceil(N/3) manifests; the last one wraps round to object 0 so exactly N are distinct.
    Returns (manifest dir, object files).
    """
    # The objects live inside the manifests' tree: load_manifest refuses paths that leave it.
    mdir = root / "manifests"
    objs = mdir / "objects"
    objs.mkdir(parents=True)
    files, records = [], []
    head = shared_object_header()
    for k in range(n):
        data = head + os.urandom(size - len(head))  # push sends only ELF shared objects
        path = objs / f"{k:05d}.so"
        path.write_bytes(data)
        files.append(path)
        records.append((path, xxhash.xxh3_64_hexdigest(data), hashlib.sha256(data).hexdigest()))
    for m in range(-(-n // 3)):
        here = mdir / f"m{m:05d}"
        here.mkdir(parents=True)
        binaries = {}
        for r, role in enumerate(("dispatcher", "inner_so", "aicore")):
            path, fp, sha = records[(3 * m + r) % n]
            binaries[role] = BinaryRecord(role, path, size, fp, None, sha)
        manifest = Manifest(here / MANIFEST_NAME, "a5", f"rt{m}", "release", binaries)
        manifest.path.write_text(dump_manifest(manifest))
    return mdir, files


def pull_per_object(cache: ArtifactCache, wanted: Sequence[Wanted], port: int) -> None:
    """Baseline: `pull` without pipelining -- one GET per object, same verify + put.

    Like `pull`, it reads the server's metadata only when the manifest has no SHA-256.
    """
    client = redis.Redis(host=HOST, port=port)
    try:
        for w in wanted:
            data = client.get(obj_key(w.fingerprint))
            raw = client.get(meta_key(w.fingerprint)) if w.sha256 is None else None
            meta = json.loads(raw) if raw is not None else None
            problem = "missing" if data is None else check_pulled(w, data, meta)
            if problem is not None:
                raise RuntimeError(f"per-object baseline: {w.label()}: {problem}")
            w.put_into(cache, data, sha256_bytes(data))  # as `pull` does
    finally:
        client.close()


def gets_per_object(fps: Sequence[str], port: int) -> None:
    """Network only, one round trip per key (what pipelining removes)."""
    client = redis.Redis(host=HOST, port=port)
    try:
        for fp in fps:  # schema-2 manifests: the object only, as `pull` asks for it
            client.get(obj_key(fp))
    finally:
        client.close()


def ping_rtt(port: int, count: int = 200) -> float:
    """Median loopback round trip: what each request of the per-object baseline pays extra."""
    client = redis.Redis(host=HOST, port=port)
    try:
        client.ping()
        return median([timed(client.ping)[0] for _ in range(count)])
    finally:
        client.close()


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def copy_all(files: Sequence[Path], dest: Path) -> None:
    """Floor: the same bytes copied file to file, no hashing, no fsync."""
    dest.mkdir()
    for f in files:
        shutil.copyfile(f, dest / f.name)


def bench_throughput(work: Path, server: RedisServer, n: int, repeat: int) -> dict[str, Any]:
    root = work / "throughput"
    mdir, files = synth_objects(root, n, OBJECT_SIZE)
    wanted = distinct([mdir])
    if len(wanted) != n:
        raise RuntimeError(f"synthetic manifests name {len(wanted)} objects, not {n}")
    fps = [w.fingerprint for w in wanted]
    sizes = {w.fingerprint: w.size for w in wanted}
    scratch = ArtifactCache(root / "push-cache")  # push reads the files beside the manifests
    times: dict[str, list[float]] = {
        k: [] for k in ("push", "pull", "per_object", "copy", "get_many", "get_per_object")
    }
    with server.client() as admin:
        for i in range(repeat):
            admin.flushall()
            clear_memo()  # each push hashes its sources again, as a fresh process would
            remote = remote_for(server)
            t, pushed = timed(push, scratch, wanted, [remote])
            remote.close()
            if len(pushed.pushed) != n or admin.dbsize() != 2 * n:
                raise RuntimeError(f"push stored {admin.dbsize()} keys, expected {2 * n}")
            times["push"].append(t)

            remote = remote_for(server)
            cache_dir = root / f"pull{i}"
            t, pulled = timed(pull, ArtifactCache(cache_dir), wanted, [remote])
            remote.close()
            if len(pulled.pulled) != n:
                raise RuntimeError(f"pull got {len(pulled.pulled)} of {n} objects")
            check_cached(cache_dir, wanted)
            shutil.rmtree(cache_dir)
            times["pull"].append(t)

            cache_dir = root / f"per-object{i}"
            t, _ = timed(pull_per_object, ArtifactCache(cache_dir), wanted, server.port)
            check_cached(cache_dir, wanted)
            shutil.rmtree(cache_dir)
            times["per_object"].append(t)

            t, _ = timed(copy_all, files, root / f"copy{i}")
            shutil.rmtree(root / f"copy{i}")
            times["copy"].append(t)

            remote = remote_for(server)
            t, got = timed(remote.get_many, fps, sizes, ())
            remote.close()
            if len(got) != n:
                raise RuntimeError(f"get_many got {len(got)} of {n} objects")
            del got
            times["get_many"].append(t)
            times["get_per_object"].append(timed(gets_per_object, fps, server.port)[0])
    rate = {k: n / median(v) for k, v in times.items()}
    return {
        "objects": n,
        "object_bytes": OBJECT_SIZE,
        "round_trips": {"pipelined": len(list(batches(fps, sizes.get))), "per_object": n},
        "ping_rtt_us": ping_rtt(server.port) * 1e6,
        "objects_per_s": rate,
        "mb_per_s": {k: r * OBJECT_SIZE / 1e6 for k, r in rate.items()},
        "pipelined_over_per_object": rate["pull"] / rate["per_object"],
        "pull_over_copy": rate["pull"] / rate["copy"],
        "network_pipelined_over_per_object": rate["get_many"] / rate["get_per_object"],
    }


# -- 3. overhead ------------------------------------------------------------------------


def bench_overhead(work: Path, server: RedisServer, runs: int) -> dict[str, Any]:
    """`cache fetch` with nothing to do: what every CI shard pays on top of Python start-up."""
    src = sorted((work / "throughput" / "manifests").iterdir())[:OVERHEAD_MANIFESTS]
    mdir = work / "overhead-manifests"
    for d in src:
        (mdir / d.name).mkdir(parents=True)
        shutil.copyfile(d / MANIFEST_NAME, mdir / d.name / MANIFEST_NAME)
    wanted = distinct([mdir])
    cache_dir = work / "overhead-cache"
    remote = remote_for(server)
    pull(ArtifactCache(cache_dir), wanted, [remote])
    remote.close()
    check_cached(cache_dir, wanted)
    env = child_env(cache_dir)
    fetch = [*cli(), "cache", "fetch", str(mdir), "--remote", server.url]
    out = subprocess.run([*fetch, "--json"], env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)  # also writes any missing .pyc before the timed runs
    if report["pulled"] or len(report["present"]) != len(wanted):
        raise RuntimeError(f"overhead: the cache is not warm: {out.stdout[:500]}")
    floor = [sys.executable, "-c", "import xxhash"]
    timed_run(floor, env)
    fetch_t, floor_t = [], []
    for _ in range(runs):
        fetch_t.append(timed_run(fetch, env))
        floor_t.append(timed_run(floor, env))
    f, b = median(fetch_t), median(floor_t)
    return {
        "manifests": len(src),
        "objects": len(wanted),
        "runs": runs,
        "fetch_ms": f * 1e3,
        "import_xxhash_ms": b * 1e3,
        "above_floor_ms": (f - b) * 1e3,
        "fetch_over_floor": f / b,
    }


# -- report -----------------------------------------------------------------------------


def print_report(r: dict[str, Any]) -> None:
    c, t, o = r["cold_runner"], r["throughput"], r["overhead"]
    ops, mbs, rt = t["objects_per_s"], t["mb_per_s"], t["round_trips"]

    def tput(key: str) -> str:
        return f"{ops[key]:8.0f} objects/s  {mbs[key]:7.1f} MB/s"

    print(
        f"remote_bench: python {r['python']}, {r['cpus']} cpus, redis {r['redis']} on "
        f"{HOST}, median of {r['repeat']}, load average {r['load_average']:.2f}"
    )
    rows: list[tuple[str, str | None]] = [
        (f"1. cold CI runner: arch=all, {c['manifests']} manifests, {c['objects']} objects, "
         f"{c['bytes'] / 1e3:.0f} KB", None),
        ("  cache fetch, manifests only", f"{c['fetch_s']:8.3f} s   (empty cache, CLI process)"),
        (f"  clean build, scons -j{c['jobs']} (baseline)",
         f"{c['clean_build_s']:8.3f} s   (fetch is {c['build_over_fetch']:.1f}x faster)"),
        (f"2. fetch throughput: {t['objects']} distinct x {t['object_bytes'] // 1000} KB "
         "(verified + fsync'd into an empty cache)", None),
        ("  push, pipelined", tput("push")),
        ("  pull, pipelined", f"{tput('pull')}   ({rt['pipelined']} round trips)"),
        ("  pull, one round trip per object", f"{tput('per_object')}   ({rt['per_object']} round "
         f"trips; pipelined is {t['pipelined_over_per_object']:.2f}x)"),
        ("  local file copy (floor)", f"{tput('copy')}   (pull reaches "
         f"{t['pull_over_copy']:.2f}x of it)"),
        ("  network only, pipelined GETs", tput("get_many")),
        ("  network only, GETs per object", f"{tput('get_per_object')}   (pipelined is "
         f"{t['network_pipelined_over_per_object']:.2f}x)"),
        ("  loopback round trip (PING)", f"{t['ping_rtt_us']:8.1f} us   (each ms of real RTT "
         f"adds {rt['per_object'] - rt['pipelined']} ms to the per-object baseline)"),
        (f"3. overhead: cache fetch, warm cache, {o['manifests']} manifests "
         f"({o['objects']} objects), median of {o['runs']}", None),
        ("  simpler-build cache fetch", f"{o['fetch_ms']:8.1f} ms"),
        ('  python -c "import xxhash" (floor)', f"{o['import_xxhash_ms']:8.1f} ms   (fetch adds "
         f"{o['above_floor_ms']:.1f} ms, {o['fetch_over_floor']:.2f}x)"),
    ]  # fmt: skip
    for label, value in rows:
        print(label if value is None else f"{label:38}: {value}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same cleanup path as ^C


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="repeats per figure (medians)")
    p.add_argument("--jobs", type=int, default=2, help="scons -j for the clean-build baseline")
    p.add_argument("--objects", type=int, default=1000, help="distinct objects for throughput")
    p.add_argument("--overhead-runs", type=int, default=9, help="runs of the overhead pair")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.objects < 3 * OVERHEAD_MANIFESTS or args.overhead_runs < 1:
        p.error(f"need --repeat >= 1, --overhead-runs >= 1, --objects >= {3 * OVERHEAD_MANIFESTS}")
    signal.signal(signal.SIGTERM, _interrupt)
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="simpler-remote-bench-") as tmp:
            work = Path(tmp)
            os.environ["SIMPLER_CACHE_DIR"] = str(work / "cache-default")
            os.environ.pop("SIMPLER_REMOTE_STORAGE", None)
            server = start_redis()
            with server.client() as c:
                version = c.info("server")["redis_version"]
            report = {
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "redis": version,
                "repeat": args.repeat,
                "load_average": os.getloadavg()[0],  # other work on the machine skews figures
                "cold_runner": bench_cold_runner(work, server, args.repeat, args.jobs),
                "throughput": bench_throughput(work, server, args.objects, args.repeat),
                "overhead": bench_overhead(work, server, args.overhead_runs),
            }
    except KeyboardInterrupt:
        print("remote_bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
