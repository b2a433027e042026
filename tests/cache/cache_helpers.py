"""Shared helpers for the cache tests, importable by spawned worker processes.

Kept out of the test modules so a `spawn` child imports only this light
module (not pytest and the test file) before running its worker.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from simpler_build.cache.fingerprint import fingerprint_bytes, fingerprint_file
from simpler_build.manifest import (
    MANIFEST_NAME,
    BinaryRecord,
    Manifest,
    dump_manifest,
    load_manifest,
)

ARCHES = ("a2a3", "a5")
RUNTIMES = ("host_build_graph", "tensormap_and_ringbuffer")


def elf_header() -> bytes:
    """A 64-byte ELF header of a shared object for this host: what warm requires."""
    from simpler_build.elf import shared_object_header

    return shared_object_header()


def blob(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes (distinct per seed) behind an ELF header."""
    head = elf_header()
    return head + random.Random(seed).randbytes(max(0, size - len(head)))


def _record(role: str, path: Path) -> BinaryRecord:
    return BinaryRecord(
        role=role,
        path=path,
        size=path.stat().st_size,
        fingerprint=fingerprint_file(path),
        build_id=f"{role}-{path.stem}"[:40],
    )


def write_manifest(
    out_dir: Path, arch: str, runtime: str, inner: bytes, tag: str = ""
) -> tuple[Path, str]:
    """A build output dir with dispatcher, inner SO, AICore ELF and its manifest.

    Returns (manifest path, inner SO fingerprint); `binaries_of` gives all three.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "dispatcher": out_dir / "libsimpler_aicpu_dispatcher.so",
        "inner_so": out_dir / f"libsimpler_inner_{runtime}{tag}.so",
        "aicore": out_dir / "aicore_kernel.o",
    }
    files["dispatcher"].write_bytes(elf_header() + b"dispatcher-" + arch.encode())
    files["inner_so"].write_bytes(inner)
    files["aicore"].write_bytes(elf_header() + b"aicore-" + arch.encode())
    path = out_dir / MANIFEST_NAME
    manifest = Manifest(
        path=path,
        arch=arch,
        runtime=runtime,
        mode="release",
        binaries={role: _record(role, p) for role, p in files.items()},
    )
    path.write_text(dump_manifest(manifest))
    return path, fingerprint_bytes(inner)


def make_build(build: Path, size: int = 300_000, seed: int = 0) -> dict[str, bytes]:
    """A build dir like `scons arch=all`: 2 arches x 2 runtimes = 4 manifests.

    Returns {fingerprint: bytes} of every distinct binary (4 inner SOs, and
    a dispatcher and an AICore ELF per arch).
    """
    out: dict[str, bytes] = {}
    for i, arch in enumerate(ARCHES):
        for j, runtime in enumerate(RUNTIMES):
            data = blob(seed * 100 + i * 10 + j, size)
            path, _fp = write_manifest(build / arch / runtime, arch, runtime, data)
            out.update(binaries_of(path))
    return out


def binaries_of(manifest: Path) -> dict[str, bytes]:
    """{fingerprint: bytes} of every binary a manifest names (all three are cached)."""
    out = {}
    for record in load_manifest(manifest).binaries.values():
        out[record.fingerprint] = record.path.read_bytes()
    return out


def make_manifest_set(base: Path, count: int, size: int) -> tuple[list[Path], dict[str, bytes]]:
    """`count` manifests with distinct inner SOs (one per directory).

    Returns the manifests and {fingerprint: bytes} of every distinct binary
    they name (the inner SOs plus one dispatcher and one AICore ELF per arch).
    """
    manifests: list[Path] = []
    blobs: dict[str, bytes] = {}
    for k in range(count):
        data = blob(1000 + k, size)
        path, _fp = write_manifest(base / f"m{k}", ARCHES[k % 2], f"rt{k}", data)
        manifests.append(path)
        blobs.update(binaries_of(path))
    return manifests, blobs


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


# -- workers run in spawned processes ---------------------------------------------------


def slow_down_writes(chunk_delay: float, chunk_size: int = 64 << 10) -> None:
    """Write in small, slow chunks so a non-atomic publish would be visible to readers."""
    from simpler_build.cache import atomic

    real = atomic._write_chunk

    def slow(fd: int, chunk: memoryview) -> None:
        real(fd, chunk)
        time.sleep(chunk_delay)

    atomic.CHUNK = chunk_size
    atomic._write_chunk = slow


def warm_worker(
    cache_dir: str,
    sources: list[str],
    start: object,
    chunk_delay: float = 0.0,
    writers_done: object = None,
) -> int:
    """Wait for the common start, warm, return how many SOs this process added; count
    this writer in `writers_done` (a shared int) when it stops, however it stops."""
    from simpler_build.cache.store import ArtifactCache
    from simpler_build.cache.warm import warm

    if chunk_delay:
        slow_down_writes(chunk_delay)
    start.wait()  # type: ignore[attr-defined]
    try:
        report = warm(ArtifactCache(cache_dir), [Path(s) for s in sources])
    finally:
        if writers_done is not None:
            with writers_done.get_lock():  # type: ignore[attr-defined]
                writers_done.value += 1  # type: ignore[attr-defined]
    return len(report.added)


def get_loop_worker(
    cache_dir: str, expected: dict[str, int], start: object, writers_done: object, writers: int
) -> dict[str, int]:
    """Call get in a loop while the writers run -- until every object has been served
    complete, or for one last round once all `writers` have stopped (a count, not a
    duration) -- checking every byte seen, both via the returned path and by reading
    the final object name directly."""
    from simpler_build.cache.fingerprint import fingerprint_bytes
    from simpler_build.cache.store import ArtifactCache

    cache = ArtifactCache(cache_dir)
    counts = {"none": 0, "complete": 0, "bad": 0, "raw_seen": 0, "calls": 0}
    served: set[str] = set()
    start.wait()  # type: ignore[attr-defined]
    while len(served) < len(expected):
        last_round = writers_done.value == writers  # type: ignore[attr-defined]
        for fp, size in expected.items():
            path = cache.get(fp)
            counts["calls"] += 1
            if path is None:
                counts["none"] += 1
            else:
                data = path.read_bytes()
                ok = len(data) == size and fingerprint_bytes(data) == fp
                counts["complete" if ok else "bad"] += 1
                if ok:
                    served.add(fp)
            raw = cache.layout.object_path(fp)
            try:
                data = raw.read_bytes()
            except FileNotFoundError:
                continue
            counts["raw_seen"] += 1
            if len(data) != size or fingerprint_bytes(data) != fp:
                counts["bad"] += 1
        if last_round:
            break
    counts["served"] = len(served)
    return counts


PAUSED_WRITER = r"""
import os, sys
from pathlib import Path
from simpler_build.cache import atomic
from simpler_build.cache.store import ArtifactCache

ready = int(sys.argv[3])
real = atomic._write_chunk
written = 0

def pause_mid_object(fd, chunk):
    # Only the object is big; its metadata is written whole before it.
    global written
    real(fd, chunk)
    if len(chunk) == atomic.CHUNK:
        written += len(chunk)
        if written == 4 * atomic.CHUNK:
            os.write(ready, b"!")  # handshake: mid-write now, and it stays that way
            sys.stdin.read()  # until killed

atomic._write_chunk = pause_mid_object
ArtifactCache(sys.argv[1]).put(Path(sys.argv[2]), arch="a5", runtime="slow")
"""


def run_env(cache_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SIMPLER_CACHE_DIR", None)
    if cache_dir is not None:
        env["SIMPLER_CACHE_DIR"] = str(cache_dir)
    return env


def _run_and_report(queue: object, index: int, fn: object, args: tuple) -> None:
    try:
        result = ("ok", fn(*args))  # type: ignore[operator]
    except BaseException as exc:
        result = ("error", repr(exc))
    queue.put((index, result))  # type: ignore[attr-defined]


def run_processes(calls: list[tuple[object, tuple]], timeout: float = 120.0) -> list[object]:
    """Run each (fn, args) in its own spawned process; return results in order.

    Synchronisation primitives must be in args (they are inherited at spawn).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_run_and_report, args=(queue, i, fn, args))
        for i, (fn, args) in enumerate(calls)
    ]
    for p in procs:
        p.start()
    results: dict[int, object] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < len(procs):
            index, (status, value) = queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if status != "ok":
                raise AssertionError(f"worker {index} failed: {value}")
            results[index] = value
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return [results[i] for i in range(len(procs))]
