"""Artifact-cache benchmark: hashing, memo, get, put, warm end to end, concurrency.

Run: python bench/cache_bench.py [--build-dir build] [--hash-mib 64] [--max-manifests N]
                                [--only ROW,...] [--json]

Everything happens in a temporary cache directory (SIMPLER_CACHE_DIR is
overridden for every child); the user's real cache is never touched.  The
warm measurement uses the real build dir when it holds 4 manifests, else a
synthesized one of the same shape (2 arches x 2 runtimes).

Each end-to-end figure is printed next to its floor, measured in the same run
(issue 9): `cache warm` on a warm cache for 4, 100 and 1,000 manifests with
14 KB and 4 MiB inner SOs against `python -c pass` and a fresh process that
only stats the same files; `fingerprint_file` in a fresh process against a
raw read of the same files (both a new buffer per file and one reused
buffer); and a verified `get` in a fresh process against `cp` of the object.
`--json` prints every figure as one JSON object instead.

Fresh processes run with bytecode cached, as an installed package does:
PYTHONDONTWRITEBYTECODE is dropped for the children and the package is
compiled first (into its __pycache__ directories) so no run pays for
compiling.  The 1,000 x 4 MiB row writes 4 GiB of SOs and caches them (8 GiB
in the temp dir); `--max-manifests 100` leaves it out.
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
#: Interleaved runs of each warm row (--runs): more on a loaded machine.
RUNS = 9


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
import os, sys, time
from simpler_build.cache.fingerprint import fingerprint_file
order, spare, files = sys.argv[1], sys.argv[2], sys.argv[3:]


def fingerprint():
    for f in files:
        fingerprint_file(f)  # each file once: the per-process memo never answers


def read_new_buffer():
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            fh.readall()


def read_reused_buffer():
    buf = bytearray(max(os.path.getsize(f) for f in files))
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            fh.readinto(buf)


for name in order.split(","):  # warm up the process on a file that is not timed
    files, timed = [spare], files
    globals()[name]()
    files = timed
times = {}
for name in order.split(","):
    t0 = time.perf_counter()
    globals()[name]()
    times[name] = time.perf_counter() - t0
print(times["fingerprint"], times["read_new_buffer"], times["read_reused_buffer"])
"""
_FP_ORDERS = (
    "fingerprint,read_new_buffer,read_reused_buffer",
    "read_reused_buffer,read_new_buffer,fingerprint",
)


def bench_fingerprint(work: Path, size: int, count: int, label: str) -> str:
    """fingerprint_file of `count` files of `size` bytes in a fresh process, against raw
    reads of the same files (a new buffer per file, and one reused buffer) in that
    process; the order alternates between runs so neither side always reads first, and
    each runs once untimed on a spare file first (a process's first pass pays for
    warming its allocator and caches)."""
    files = []
    for k in range(count + 1):
        path = work / f"fp-{label}-{k}.so"
        path.write_bytes(os.urandom(size))
        files.append(str(path))
    runs = []
    for i in range(10):
        out = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT_CHILD, _FP_ORDERS[i % 2], *files],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(tuple(float(x) for x in out.stdout.split()))
    fp_t, new_t, reused_t = (statistics.median(r[k] for r in runs) for k in range(3))
    raw_t = min(new_t, reused_t)
    mbs = lambda t: count * size / t / 1e6  # noqa: E731
    RESULTS[f"fingerprint_{label}"] = {
        "files": count,
        "fingerprint_mb_s": mbs(fp_t),
        "raw_read_new_buffer_mb_s": mbs(new_t),
        "raw_read_reused_buffer_mb_s": mbs(reused_t),
        "ratio_to_faster_raw_read": raw_t / fp_t,
    }
    return (
        f"fingerprint {count} x {label}, fresh process {mbs(fp_t):7.0f} MB/s | floor raw read"
        f" {mbs(new_t):6.0f} MB/s (new buffer), {mbs(reused_t):6.0f} MB/s (reused buffer)"
        f" | {raw_t / fp_t:4.2f}x the faster read (median of 10)"
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


_BODY: dict[int, bytes] = {}


def _so_bytes(size: int) -> bytes:
    """An ELF shared object header and `size` bytes, distinct from every other call's.

    The bulk is one random block per size, shared by every file; 64 fresh
    random bytes after the header make each file's content (and fingerprint)
    its own.  So a thousand 4 MiB SOs cost one 4 MiB `urandom`, not 4 GiB.
    """
    body = _BODY.get(size)
    if body is None:
        body = _BODY[size] = os.urandom(size)
    return shared_object_header() + os.urandom(64) + body[64:]


def synth_manifest(out: Path, arch: str, runtime: str, size: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "dispatcher": out / "libsimpler_aicpu_dispatcher.so",
        "inner_so": out / f"libsimpler_inner_{runtime}.so",
        "aicore": out / "aicore.o",
    }
    for role, path in files.items():  # warm takes only ELF shared objects
        path.write_bytes(_so_bytes(size if role == "inner_so" else 4096))
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


#: The same warm through the library alone: what `cache warm` costs without the CLI
#: module's own imports and argument parsing (cache/cli.py is measured as it is).
_LIBRARY_WARM = r"""
import sys
from simpler_build.cache.store import ArtifactCache
from simpler_build.cache.warm import warm
report = warm(ArtifactCache(), [sys.argv[1]])
print(f"warm: {len(report.added)} added, {len(report.present)} already present")
"""

_STAT_WALK = r"""
import os, sys
for path in open(sys.argv[1]).read().split("\n"):
    if path:
        os.stat(path)
"""


def _wall(cmd: list[str], env: dict[str, str] | None = None, runs: int = 9) -> list[float]:
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


def bench_warm_e2e(
    build: Path, label: str, work: Path, name: str, default_root: bool = False
) -> str:
    """`cache warm` on an already warm cache, next to its floors: `python -c pass`
    and a fresh process that only stats every manifest and binary.

    `default_root`: no SIMPLER_CACHE_DIR, as on a user's machine; the root is the
    user cache directory under a private HOME (`<work>/home-<name>/.cache/simpler-build`).
    """
    from simpler_build.manifest import find_manifests, load_manifest

    exe = shutil.which("simpler-build")
    cmd = [exe] if exe else [sys.executable, "-m", "simpler_build.cli"]
    cmd += ["cache", "warm", str(build)]
    if default_root:
        home = work / f"home-{name}"
        env = {
            k: v for k, v in os.environ.items() if k not in ("SIMPLER_CACHE_DIR", "XDG_CACHE_HOME")
        }
        env["HOME"] = str(home)
        cache_dir = home / ".cache" / "simpler-build"
        label += ", default cache root"
    else:
        env = {**os.environ, "SIMPLER_CACHE_DIR": str(work / f"cache-{name}")}
        cache_dir = Path(env["SIMPLER_CACHE_DIR"])
    manifests = find_manifests(build)
    files = [str(m) for m in manifests]
    files += [str(b.path) for m in manifests for b in load_manifest(m).binaries.values()]
    listing = work / f"{name}-files.txt"
    listing.write_text("\n".join(files))
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # fill the cache
    # Git's racy rule: the stat index trusts a file only 2 s after its last change.
    # The cache's own objects and metadata too: the index records a published entry
    # once both files have settled (cache/FORMAT.md, "Stat index").
    time.sleep(2.1)
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # hash once more, record
    # Interleaved, so a change in machine load hits the command and its floors alike.
    library = [sys.executable, "-c", _LIBRARY_WARM, str(build)]
    times, bare, walk, lib = [], [], [], []
    for _ in range(RUNS):
        times += _wall(cmd, env, runs=1)
        lib += _wall(library, env, runs=1)
        bare += _wall([sys.executable, "-c", "pass"], runs=1)
        walk += _wall([sys.executable, "-c", _STAT_WALK, str(listing)], runs=1)
    best, med = min(times), statistics.median(times)
    index = (cache_dir / "stat-index-v1.log").read_text().count("\n")
    RESULTS[f"warm_{name}"] = {
        "stat_index_lines": index,
        "manifests": len(manifests),
        "label": label,
        "min_ms": best * 1e3,
        "median_ms": med * 1e3,
        "floor_python_pass_ms": statistics.median(bare) * 1e3,
        "floor_stat_walk_ms": statistics.median(walk) * 1e3,
        "ratio_python_pass": med / statistics.median(bare),
        "ratio_stat_walk": med / statistics.median(walk),
        "library_median_ms": statistics.median(lib) * 1e3,
        "library_ratio_python_pass": statistics.median(lib) / statistics.median(bare),
        "library_ratio_stat_walk": statistics.median(lib) / statistics.median(walk),
    }
    return (
        f"warm e2e  {len(manifests):4d} manifests {med * 1e3:6.1f} ms median of {RUNS} "
        f"(min {best * 1e3:.1f}) | floors: `python -c pass` {statistics.median(bare) * 1e3:5.1f} ms"
        f" ({med / statistics.median(bare):4.2f}x), stat-only walk of the same "
        f"{len(files)} files {statistics.median(walk) * 1e3:5.1f} ms "
        f"({med / statistics.median(walk):4.2f}x) [{label}; already warm]\n"
        f"          library only (no CLI) {statistics.median(lib) * 1e3:6.1f} ms"
        f" ({statistics.median(lib) / statistics.median(bare):4.2f}x `python -c pass`,"
        f" {statistics.median(lib) / statistics.median(walk):4.2f}x the stat walk)"
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


def compile_package() -> None:
    """Write the package's bytecode, so fresh processes load it as an install does.

    Found with find_spec, not imported: the runtime needs the `runtime` extra."""
    import compileall
    from importlib.util import find_spec

    for name in (
        "simpler_build",
        "simpler_build.cache",
        "simpler_build.remote",
        "simpler_build.runtime",
    ):
        spec = find_spec(name)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=1)


WARM_SIZES = ((14_000, "14 KB"), (4 << 20, "4 MiB"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=Path(__file__).parent.parent / "build")
    parser.add_argument("--hash-mib", type=int, default=64)
    parser.add_argument("--objects", type=int, default=32, help="SOs per concurrency run")
    parser.add_argument(
        "--max-manifests", type=int, default=1000, help="largest warm row (4, 100 or 1000)"
    )
    parser.add_argument(
        "--only",
        metavar="ROWS",
        help="comma-separated rows to run (default: all): hash, memo, fingerprint, get, "
        "warm-build, warm-4x14KB ... warm-1000x4MiB, concurrency",
    )
    parser.add_argument(
        "--runs", type=int, default=9, help="interleaved runs per warm row (median)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    global RUNS
    RUNS = args.runs
    only = set(args.only.split(",")) if args.only else None

    def want(row: str) -> bool:
        return only is None or row in only

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # children load cached bytecode
    compile_package()

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
        if want("hash"):
            say(bench_hash(args.hash_mib))
        if want("memo"):
            say(bench_memo(work))
        if want("fingerprint"):
            say(bench_fingerprint(work, INNER_SIZE, 256, "365 KB"))
            say(bench_fingerprint(work, 4 << 20, 64, "4 MiB"))
        if want("get"):
            for line in bench_put_get(work):
                say(line)
        if want("warm-build"):
            build, label = warm_build_dir(args.build_dir, work)
            say(bench_warm_e2e(build, label, work, "4"))
            say(bench_warm_e2e(build, label, work, "4-default-root", default_root=True))
        for count in (4, 100, 1000):
            if count > args.max_manifests:
                continue
            for size, size_label in WARM_SIZES:
                name = f"{count}x{size_label.replace(' ', '')}"
                if not want(f"warm-{name}"):
                    continue
                many = synth_build(work / f"build-{name}", count, size)
                say(bench_warm_e2e(many, f"synthesized, {size_label} SOs", work, name))
                shutil.rmtree(many)
                shutil.rmtree(work / f"cache-{name}")
        if want("concurrency"):
            for line in bench_concurrency(work, args.objects, INNER_SIZE):
                say(line)
    if args.json:
        print(json.dumps(RESULTS, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
