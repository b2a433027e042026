"""Artifact-cache benchmark: hashing, memo, get, put, warm end to end, concurrency.

Run: python bench/cache_bench.py [--build-dir build] [--hash-mib 64]

Everything happens in a temporary cache directory (SIMPLER_CACHE_DIR is
overridden for every child); the user's real cache is never touched.  The
warm measurement uses the real build dir when it holds 4 manifests, else a
synthesized one of the same shape (2 arches x 2 runtimes).
"""

from __future__ import annotations

import argparse
import hashlib
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
    return [
        f"put       new {put_new * 1e3:6.2f} ms | already present {put_again * 1e6:6.1f} us "
        f"(365 KB, fsync'd, mean of {len(blobs)})",
        f"get       verified, fresh process {get_us:6.1f} us (median of 5; "
        f"import {import_ms:.1f} ms, process wall {wall * 1e3:.0f} ms) | "
        f"in-process {get_warm * 1e6:.1f} us",
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


def bench_warm_e2e(build: Path, label: str, work: Path) -> str:
    exe = shutil.which("simpler-build")
    cmd = [exe] if exe else [sys.executable, "-m", "simpler_build.cli"]
    cmd += ["cache", "warm", str(build)]
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(work / "cache-warm")}
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    bare = _best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 5)
    return (
        f"warm e2e  {min(times):.3f} s min | {statistics.median(times):.3f} s median of 7 "
        f"(already warm; {label}; `{' '.join(Path(c).name for c in cmd[:1])} cache warm`; "
        f"bare python start {bare:.3f} s)"
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simpler-cache-bench-") as tmp:
        work = Path(tmp)
        os.environ["SIMPLER_CACHE_DIR"] = str(work / "cache-default")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, temp dir {work}")
        print(bench_hash(args.hash_mib), flush=True)
        print(bench_memo(work), flush=True)
        for line in bench_put_get(work):
            print(line, flush=True)
        build, label = warm_build_dir(args.build_dir, work)
        print(bench_warm_e2e(build, label, work), flush=True)
        for line in bench_concurrency(work, args.objects, INNER_SIZE):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
