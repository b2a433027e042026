"""Artifact-cache benchmark: hashing, memo, get, put, warm end to end, concurrency.

Run: python bench/cache_bench.py [--build-dir build] [--hash-mib 64] [--json]

Everything happens in a temporary cache directory (SIMPLER_CACHE_DIR is
overridden for every child); the user's real cache is never touched.  The
warm measurement uses the real build dir when it holds 4 manifests, else a
synthesized one of the same shape (2 arches x 2 runtimes).

Each end-to-end figure is printed next to its floor, measured in the same run
(issue 9): `cache warm` on a warm cache for 4 and 100 manifests against
`python -c pass` and a fresh process that only stats the same files, and a
verified `get` in a fresh process against `cp` of the object.  `--json`
prints every figure as one JSON object instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xxhash

from simpler_build.cache.fingerprint import clear_memo, fingerprint_file
from simpler_build.cache.store import ArtifactCache
from simpler_build.elf import shared_object_header
from simpler_build.manifest import MANIFEST_NAME, BinaryRecord, Manifest, dump_manifest

INNER_SIZE = 365_000  # the a5 inner SO, roughly
#: Every figure, for --json.
RESULTS: dict[str, object] = {}


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_hash(mib: int) -> str:
    data = os.urandom(1 << 20) * mib
    xxh = _best(lambda: xxhash.xxh3_64_hexdigest(data))
    sha = _best(lambda: hashlib.sha256(data).hexdigest())
    gbs = lambda t: len(data) / t / 1e9  # noqa: E731
    return (
        f"hash      XXH3-64 {gbs(xxh):6.2f} GB/s | SHA-256 {gbs(sha):5.2f} GB/s | "
        f"ratio {sha / xxh:5.1f}x ({mib} MiB, best of 3)"
    )


def bench_memo(work: Path) -> str:
    path = work / "memo.so"
    path.write_bytes(os.urandom(INNER_SIZE))
    clear_memo()
    t0 = time.perf_counter()
    fingerprint_file(path)
    miss = time.perf_counter() - t0
    n = 10_000
    t0 = time.perf_counter()
    for _ in range(n):
        fingerprint_file(path)
    hit = (time.perf_counter() - t0) / n
    return f"memo      hit {hit * 1e6:6.2f} us/call | miss (read + hash) {miss * 1e6:7.1f} us"


_FINGERPRINT_CHILD = r"""
import sys, time
from simpler_build.cache.fingerprint import fingerprint_file
files = sys.argv[1:]
t0 = time.perf_counter()
for f in files:
    fingerprint_file(f)
t1 = time.perf_counter()
for f in files:
    with open(f, "rb", buffering=0) as fh:
        fh.readall()
t2 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1}")
"""


def bench_fingerprint(work: Path, count: int = 16, size: int = 4 << 20) -> str:
    """fingerprint_file of 4 MiB files in a fresh process, against a raw read of the same files."""
    files = []
    for k in range(count):
        path = work / f"fp-{k}.so"
        path.write_bytes(os.urandom(size))
        files.append(str(path))
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT_CHILD, *files],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(tuple(float(x) for x in out.stdout.split()))
    fp_t = statistics.median(r[0] for r in runs)
    raw_t = statistics.median(r[1] for r in runs)
    mbs = lambda t: count * size / t / 1e6  # noqa: E731
    RESULTS["fingerprint_4mib"] = {"fingerprint_mb_s": mbs(fp_t), "raw_read_mb_s": mbs(raw_t)}
    return (
        f"fingerprint {count} x 4 MiB, fresh process {mbs(fp_t):8.0f} MB/s | floor raw read "
        f"{mbs(raw_t):8.0f} MB/s | {raw_t / fp_t:4.2f}x of raw read (median of 5)"
    )


_GET_CHILD = r"""
import sys, time
t0 = time.perf_counter()
from simpler_build.cache.store import ArtifactCache
cache = ArtifactCache(sys.argv[1])
t1 = time.perf_counter()
path = cache.get(sys.argv[2])
t2 = time.perf_counter()
assert path is not None
print(f"{(t2 - t1) * 1e6:.1f} {(t1 - t0) * 1e3:.1f}")
"""


def bench_put_get(work: Path) -> list[str]:
    cache = ArtifactCache(work / "cache-putget")
    blobs = [os.urandom(INNER_SIZE) for _ in range(20)]
    t0 = time.perf_counter()
    fps = [cache.put(b).fingerprint for b in blobs]
    put_new = (time.perf_counter() - t0) / len(blobs)
    t0 = time.perf_counter()
    for b in blobs:
        cache.put(b)
    put_again = (time.perf_counter() - t0) / len(blobs)
    t0 = time.perf_counter()
    for fp in fps:
        cache.get(fp)
    get_warm = (time.perf_counter() - t0) / len(fps)
    runs = []
    for fp in fps[:5]:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _GET_CHILD, str(cache.root), fp],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        runs.append((float(out[0]), float(out[1]), time.perf_counter() - t0))
    get_us = statistics.median(r[0] for r in runs)
    import_ms = statistics.median(r[1] for r in runs)
    wall = statistics.median(r[2] for r in runs)
    cp_walls = []
    for fp in fps[:5]:
        t0 = time.perf_counter()
        subprocess.run(["cp", str(cache.layout.object_path(fp)), str(work / "cp.so")], check=True)
        cp_walls.append(time.perf_counter() - t0)
    cp_wall = statistics.median(cp_walls)
    RESULTS["put_new_ms"] = put_new * 1e3
    RESULTS["put_present_us"] = put_again * 1e6
    RESULTS["get_in_process_us"] = get_warm * 1e6
    RESULTS["get_fresh_process"] = {
        "wall_ms": wall * 1e3,
        "get_us": get_us,
        "import_ms": import_ms,
        "floor_cp_ms": cp_wall * 1e3,
        "ratio": wall / cp_wall,
    }
    return [
        f"put       new {put_new * 1e3:6.2f} ms | already present {put_again * 1e6:6.1f} us "
        f"(365 KB, fsync'd, mean of {len(blobs)})",
        f"get       verified, fresh process {get_us:6.1f} us (median of 5; "
        f"import {import_ms:.1f} ms, process wall {wall * 1e3:.0f} ms) | "
        f"in-process {get_warm * 1e6:.1f} us",
        f"get e2e   fresh process {wall * 1e3:6.1f} ms | floor `cp` of the object "
        f"{cp_wall * 1e3:5.1f} ms | {wall / cp_wall:4.1f}x (median of 5)",
    ]


def _record(role: str, path: Path) -> BinaryRecord:
    return BinaryRecord(role, path, path.stat().st_size, fingerprint_file(path), None)


def synth_manifest(out: Path, arch: str, runtime: str, size: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "dispatcher": out / "libsimpler_aicpu_dispatcher.so",
        "inner_so": out / f"libsimpler_inner_{runtime}.so",
        "aicore": out / "aicore.o",
    }
    head = shared_object_header()  # warm takes only ELF shared objects
    for role, path in files.items():
        path.write_bytes(head + os.urandom(size if role == "inner_so" else 4096))
    manifest = Manifest(
        path=out / MANIFEST_NAME,
        arch=arch,
        runtime=runtime,
        mode="release",
        binaries={role: _record(role, p) for role, p in files.items()},
    )
    manifest.path.write_text(dump_manifest(manifest))
    return manifest.path


def warm_build_dir(requested: Path, work: Path) -> tuple[Path, str]:
    from simpler_build.manifest import find_manifests

    if requested.is_dir() and len(find_manifests(requested)) == 4:
        return requested, f"real build {requested}"
    build = work / "build"
    for arch, size in (("a2a3", 78_000), ("a5", INNER_SIZE)):
        for runtime in ("host_build_graph", "tensormap_and_ringbuffer"):
            synth_manifest(build / arch / runtime, arch, runtime, size)
    return build, "synthesized, 4 manifests"


_STAT_WALK = r"""
import os, sys
for path in open(sys.argv[1]).read().split("\n"):
    if path:
        os.stat(path)
"""


def _wall(cmd: list[str], env: dict[str, str] | None = None, runs: int = 7) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def synth_build(root: Path, count: int, size: int) -> Path:
    """`count` manifests (2 arches, `count // 2` runtimes each), 3 binaries each."""
    for k in range(count):
        arch = ("a2a3", "a5")[k % 2]
        synth_manifest(root / arch / f"rt{k // 2}", arch, f"rt{k // 2}", size)
    return root


def bench_warm_e2e(build: Path, label: str, work: Path, name: str) -> str:
    """`cache warm` on an already warm cache, next to its floors: `python -c pass`
    and a fresh process that only stats every manifest and binary."""
    from simpler_build.manifest import find_manifests, load_manifest

    exe = shutil.which("simpler-build")
    cmd = [exe] if exe else [sys.executable, "-m", "simpler_build.cli"]
    cmd += ["cache", "warm", str(build)]
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(work / f"cache-{name}")}
    manifests = find_manifests(build)
    files = [str(m) for m in manifests]
    files += [str(b.path) for m in manifests for b in load_manifest(m).binaries.values()]
    listing = work / f"{name}-files.txt"
    listing.write_text("\n".join(files))
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # fill the cache
    # Git's racy rule: the stat index trusts a file only 2 s after its last change.
    newest = max(max(os.stat(f).st_mtime, os.stat(f).st_ctime) for f in files)
    time.sleep(max(0.0, newest + 2.1 - time.time()))
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # hash once more, record
    times = _wall(cmd, env)
    bare = _wall([sys.executable, "-c", "pass"])
    walk = _wall([sys.executable, "-c", _STAT_WALK, str(listing)])
    best, med = min(times), statistics.median(times)
    RESULTS[f"warm_{name}"] = {
        "manifests": len(manifests),
        "label": label,
        "min_ms": best * 1e3,
        "median_ms": med * 1e3,
        "floor_python_pass_ms": statistics.median(bare) * 1e3,
        "floor_stat_walk_ms": statistics.median(walk) * 1e3,
        "ratio_python_pass": med / statistics.median(bare),
        "ratio_stat_walk": med / statistics.median(walk),
    }
    return (
        f"warm e2e  {len(manifests):4d} manifests {med * 1e3:6.1f} ms median of 7 "
        f"(min {best * 1e3:.1f}) | floors: `python -c pass` {statistics.median(bare) * 1e3:5.1f} ms"
        f" ({med / statistics.median(bare):4.2f}x), stat-only walk of the same "
        f"{len(files)} files {statistics.median(walk) * 1e3:5.1f} ms "
        f"({med / statistics.median(walk):4.2f}x) [{label}; already warm]"
    )


def _warm_worker(cache_dir: str, sources: list[str], start, out) -> None:
    from simpler_build.cache.warm import warm

    start.wait()
    t0 = time.monotonic()
    warm(ArtifactCache(cache_dir), [Path(s) for s in sources])
    out.put((t0, time.monotonic()))


def bench_concurrency(work: Path, count: int, size: int) -> list[str]:
    sources = [
        str(synth_manifest(work / "conc" / f"m{k}", "a5", f"rt{k}", size)) for k in range(count)
    ]
    ctx = mp.get_context("spawn")
    lines = []
    for procs in (1, 4, 16):
        cache_dir = work / f"cache-conc-{procs}"
        start, out = ctx.Barrier(procs), ctx.Queue()
        ps = [
            ctx.Process(target=_warm_worker, args=(str(cache_dir), sources, start, out))
            for _ in range(procs)
        ]
        for p in ps:
            p.start()
        spans = [out.get(timeout=300) for _ in ps]
        for p in ps:
            p.join()
        wall = max(e for _, e in spans) - min(s for s, _ in spans)
        # Every manifest names three distinct binaries; all three are cached.
        assert ArtifactCache(cache_dir).verify().checked == 3 * count
        RESULTS[f"warm_concurrent_x{procs}_s"] = wall
        lines.append(
            f"warm x{procs:<2}   {wall:6.3f} s for {count} manifests x 3 binaries "
            f"({size // 1000} KB inner SOs) into an empty cache"
            f" | {3 * count / wall:7.1f} objects/s | {count * size / wall / 1e6:6.1f} MB/s of SOs"
            f" | {3 * procs * count / wall:7.1f} puts/s"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=Path(__file__).parent.parent / "build")
    parser.add_argument("--hash-mib", type=int, default=64)
    parser.add_argument("--objects", type=int, default=32, help="SOs per concurrency run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    def say(line: str) -> None:
        RESULTS.setdefault("lines", []).append(line)  # type: ignore[union-attr]
        if not args.json:
            print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="simpler-cache-bench-") as tmp:
        work = Path(tmp)
        os.environ["SIMPLER_CACHE_DIR"] = str(work / "cache-default")
        RESULTS["python"] = sys.version.split()[0]
        RESULTS["cpus"] = os.cpu_count()
        say(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, temp dir {work}")
        say(bench_hash(args.hash_mib))
        say(bench_memo(work))
        say(bench_fingerprint(work))
        for line in bench_put_get(work):
            say(line)
        build, label = warm_build_dir(args.build_dir, work)
        say(bench_warm_e2e(build, label, work, "4"))
        many = synth_build(work / "build-100", 100, 14_000)
        say(bench_warm_e2e(many, "synthesized, 14 KB SOs", work, "100"))
        for line in bench_concurrency(work, args.objects, INNER_SIZE):
            say(line)
    if args.json:
        print(json.dumps(RESULTS, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
