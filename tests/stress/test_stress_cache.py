"""Writers, readers, evictors and repairers on one cache root, SIGKILLed at random points.

Every worker is a real process running this file as a script.  It announces
each operation on stdout before it starts (`B`) and when it ends (`E`), so the
parent counts operations and kills a worker in the middle of one without
sleeping: the kill schedule is a number of begun operations, drawn from a
seeded RNG.  A killed worker is restarted with the operations it has left.

What must hold, however the kills fall:
- every byte a reader is served (through `get`, and read straight from the
  final object name) equals its source: 0 wrong bytes, 0 partial objects;
- a verify run during eviction never reports corruption (there is none);
- maintenance finds nothing unusable other than entries busy at that moment;
- at the end, verify is clean, nothing is quarantined, and one gc leaves no
  temp file and no orphan metadata.

The default run is a fixed, small number of operations (CI); `--stress-seconds`
or SIMPLER_STRESS_SECONDS makes it a longer, time-bounded run.  The figures are
printed (visible with `pytest -s`) and written to $SIMPLER_STRESS_REPORT as
JSON when that is set.

This module imports no test framework at top level: the workers import it too.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
#: Ops per worker in the fixed run: (role, count, ops each).
FIXED_PLAN = (("writer", 2, 150), ("reader", 3, 600), ("evictor", 2, 80), ("repairer", 2, 80))
#: Kills per worker at most in the fixed run (each is scheduled, so each happens).
FIXED_KILLS_PER_WORKER = 3
#: A hang guard only (a stuck run fails instead of blocking CI): no timing is asserted.
HANG_GUARD_SECONDS = 600.0
BOUND = 1_200_000  # evictors' --max-size: about half of the ~2.3 MB of all sources


# -- worker side --------------------------------------------------------------------------


def _say(*words: object) -> None:
    os.write(1, (" ".join(str(w) for w in words) + "\n").encode())


def _read_object(path: str) -> bytes | None:
    """Whole content at a final object name, without following a symlink; None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        parts = []
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _writer_op(cache: Any, bounded: Any, plan: dict[str, Any], rng: random.Random) -> str:
    from simpler_build.cache.warm import warm

    target = bounded if rng.random() < 0.5 else cache
    r = rng.random()
    if r < 0.25:
        warm(target, [Path(rng.choice(plan["manifests"]))])
        return "warm ok"
    fp, src = rng.choice(sorted(plan["sources"].items()))
    entry = (
        target.put(Path(src), arch="a5", runtime="stress")
        if r < 0.65
        else target.put(Path(src).read_bytes())
    )
    return "put ok" if entry.fingerprint == fp else "put wrong"


def _reader_op(cache: Any, expected: dict[str, bytes], rng: random.Random) -> str:
    fp = rng.choice(sorted(expected))
    want = expected[fp]
    path = cache.get(fp)
    if path is None:
        served = "miss"
    else:
        data = _read_object(str(path))  # evicted between get and open: an honest miss
        served = "evicted" if data is None else ("hit" if data == want else "wrong")
    raw = _read_object(cache.layout.object_str(fp))
    seen = "absent" if raw is None else ("whole" if raw == want else "partial")
    checked = len(want) if served in ("hit", "wrong") else 0
    return f"get {served} {seen} {checked} {_differing(data, want) if served == 'wrong' else 0}"


def _differing(data: bytes | None, want: bytes) -> int:
    """How many bytes of `data` are not the source's (missing or extra bytes count too)."""
    data = data or b""
    return sum(a != b for a, b in zip(data, want, strict=False)) + abs(len(data) - len(want))


def _unexpected(findings: list[Any]) -> int:
    """Findings other than 'this entry is busy right now' (which concurrency makes normal)."""
    return sum(1 for f in findings if "lock is held" not in f.reason)


def _evictor_op(cache: Any) -> str:
    report = cache.gc(max_bytes=BOUND)
    for f in report.findings:
        if "lock is held" not in f.reason:
            print(f"finding: {f.line()}", file=sys.stderr)
    swept = f"{len(report.temp_removed)} {len(report.orphan_meta_removed)}"
    return f"gc ok {len(report.evicted)} {_unexpected(report.findings)} {swept}"


def _repairer_op(cache: Any) -> str:
    report = cache.verify(repair=True)
    for bad in report.corrupt:
        print(f"corrupt: {bad.path}: {bad.problem}", file=sys.stderr)
    return f"verify {len(report.corrupt)} {len(report.gone)} {_unexpected(report.findings)}"


def worker_main(argv: list[str]) -> int:
    """`test_stress_cache.py ROLE CACHE_DIR PLAN_JSON SEED OPS DEADLINE WAIT`."""
    role, cache_dir, plan_file, seed, ops, deadline, wait = argv
    from simpler_build.cache.store import ArtifactCache

    plan = json.loads(Path(plan_file).read_text())
    rng = random.Random(int(seed))
    cache = ArtifactCache(cache_dir)
    bounded = ArtifactCache(cache_dir, max_bytes=BOUND)
    expected = {fp: Path(src).read_bytes() for fp, src in plan["sources"].items()}
    if wait == "1":
        _say("R")
        sys.stdin.readline()  # the start barrier: every first incarnation starts together
    done = 0
    while (done < int(ops)) if float(deadline) == 0 else (time.time() < float(deadline)):
        _say("B", role)
        try:
            if role == "writer":
                result = _writer_op(cache, bounded, plan, rng)
            elif role == "reader":
                result = _reader_op(cache, expected, rng)
            elif role == "evictor":
                result = _evictor_op(cache)
            else:
                result = _repairer_op(cache)
        except Exception as exc:  # reported to the parent, which fails the run
            result = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
        _say("E", role, result)
        done += 1
    _say("D")
    return 0


# -- parent side ----------------------------------------------------------------------------


@dataclass
class Incarnation:
    worker: int
    role: str
    proc: subprocess.Popen[bytes]
    ops_left: int
    kill_at: int | None  # begun operations after which it is SIGKILLed
    stderr: Path
    begun: int = 0
    ended: int = 0
    killed: bool = False
    buffer: bytes = b""


@dataclass
class Figures:
    ops: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    kills_by_role: Counter[str] = field(default_factory=Counter)
    interrupted_ops: int = 0
    wrong_bytes: int = 0
    wrong_objects: int = 0
    partial_objects: int = 0
    false_corrupt: int = 0
    unexpected_findings: int = 0
    errors: list[str] = field(default_factory=list)
    bytes_served: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "operations": sum(self.ops.values()),
            "operations_by_role": dict(self.ops),
            "results": dict(self.results),
            "kills": self.kills,
            "kills_by_role": dict(self.kills_by_role),
            "interrupted_operations": self.interrupted_ops,
            "wrong_bytes": self.wrong_bytes,
            "wrong_objects": self.wrong_objects,
            "partial_objects": self.partial_objects,
            "false_corrupt_reports": self.false_corrupt,
            "unexpected_findings": self.unexpected_findings,
            "bytes_served_and_checked": self.bytes_served,
            "errors": self.errors,
        }


def _record(figures: Figures, role: str, words: list[str]) -> None:
    figures.ops[role] += 1
    if words[0] == "error":
        figures.errors.append(f"{role}: {' '.join(words)}")
        return
    if role == "writer":
        figures.results[words[0] + "_" + words[1]] += 1
        if words[1] == "wrong":
            figures.errors.append(f"writer: put returned another fingerprint: {words}")
    elif role == "reader":
        served, seen, size, wrong = words[1], words[2], int(words[3]), int(words[4])
        figures.results["get_" + served] += 1
        figures.results["raw_" + seen] += 1
        figures.bytes_served += size
        figures.wrong_bytes += wrong
        figures.wrong_objects += served == "wrong"
        figures.partial_objects += seen == "partial"
    elif role == "evictor":
        figures.results["evicted"] += int(words[2])
        figures.unexpected_findings += int(words[3])
        figures.results["gc_swept_temp_files"] += int(words[4])
        figures.results["gc_swept_orphan_metadata"] += int(words[5])
    else:
        figures.false_corrupt += int(words[1])
        figures.results["verify_gone"] += int(words[2])
        figures.unexpected_findings += int(words[3])


def _make_sources(base: Path) -> dict[str, Any]:
    """Manifests with their binaries (what writers put and warm, what readers compare)."""
    sys.path.insert(0, str(HERE.parents[1] / "cache"))
    from cache_helpers import blob, make_manifest_set, write_manifest

    from simpler_build.manifest import load_manifest

    manifests, _ = make_manifest_set(base / "m", count=6, size=256 << 10)
    for k, size in enumerate((8 << 10, 64 << 10, 700 << 10)):  # sizes around the bound
        path, _fp = write_manifest(base / f"v{k}", "a2a3", f"var{k}", blob(5000 + k, size))
        manifests.append(path)
    sources: dict[str, str] = {}
    for manifest in manifests:
        for record in load_manifest(manifest).binaries.values():
            sources.setdefault(record.fingerprint, str(record.path))
    return {"manifests": [str(m) for m in manifests], "sources": sources}


def _spawn(
    worker: int,
    role: str,
    ops: int,
    kill_at: int | None,
    *,
    cache_dir: Path,
    plan_file: Path,
    logs: Path,
    seed: int,
    deadline: float,
    wait: bool,
) -> Incarnation:
    env = {k: v for k, v in os.environ.items() if k != "SIMPLER_CACHE_DIR"}
    stderr = logs / f"w{worker}-{seed}.err"
    args = [role, str(cache_dir), str(plan_file), str(seed), str(ops), repr(deadline)]
    proc = subprocess.Popen(
        [sys.executable, str(HERE), *args, "1" if wait else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr.open("wb"),
        env=env,
    )
    os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
    return Incarnation(worker, role, proc, ops, kill_at, stderr)


def run_stress(base: Path, seconds: float | None, seed: int = 8) -> dict[str, Any]:
    """Run the workers to completion (or for `seconds`); return the figures and final checks."""
    from simpler_build.cache.maintenance import LOCKED_TEMP_MIN_AGE
    from simpler_build.cache.store import ArtifactCache

    started = time.monotonic()
    rng = random.Random(seed)
    cache_dir = base / "cache"
    logs = base / "logs"
    logs.mkdir(parents=True)
    plan = _make_sources(base / "src")
    plan_file = base / "plan.json"
    plan_file.write_text(json.dumps(plan))
    deadline = 0.0 if seconds is None else time.time() + seconds
    figures = Figures()
    roles = [(role, ops) for role, count, ops in FIXED_PLAN for _ in range(count)]
    kills_left = dict.fromkeys(range(len(roles)), FIXED_KILLS_PER_WORKER)

    def kill_point(worker: int, ops_left: int) -> int | None:
        if seconds is not None:  # long run: kill about every 40 operations, at random
            return rng.randint(1, 80)
        if kills_left[worker] <= 0 or ops_left <= 1:
            return None
        return rng.randint(1, ops_left - 1)

    common = {"cache_dir": cache_dir, "plan_file": plan_file, "logs": logs, "deadline": deadline}
    live: dict[int, Incarnation] = {}
    sel = selectors.DefaultSelector()
    serial = 0
    for w, (role, ops) in enumerate(roles):
        serial += 1
        inc = _spawn(
            w, role, ops, kill_point(w, ops), seed=seed * 1000 + serial, wait=True, **common
        )
        live[w] = inc
        sel.register(inc.proc.stdout, selectors.EVENT_READ, inc)  # type: ignore[arg-type]
    ready = 0
    guard = time.monotonic() + HANG_GUARD_SECONDS + (seconds or 0)
    barrier_open = False
    try:
        while live:
            if time.monotonic() > guard:
                raise AssertionError(f"stress run hung; live workers: {sorted(live)}")
            for key, _ in sel.select(timeout=5.0):
                inc: Incarnation = key.data
                chunk = os.read(key.fd, 65536)
                if chunk:
                    inc.buffer += chunk
                    *lines, inc.buffer = inc.buffer.split(b"\n")
                    for line in lines:
                        words = line.decode(errors="replace").split() or ["?"]
                        if words == ["R"]:
                            ready += 1
                        elif words[0] == "B":
                            inc.begun += 1
                            if inc.kill_at is not None and inc.begun >= inc.kill_at:
                                inc.proc.send_signal(signal.SIGKILL)
                                inc.killed = True
                                inc.kill_at = None
                        elif words[0] == "E":
                            inc.ended += 1
                            _record(figures, inc.role, words[2:])
                    if ready == len(roles) and not barrier_open:
                        barrier_open = True
                        for other in live.values():
                            other.proc.stdin.write(b"go\n")  # type: ignore[union-attr]
                            other.proc.stdin.flush()  # type: ignore[union-attr]
                    continue
                # EOF: the incarnation ended (finished, or killed).
                sel.unregister(key.fileobj)
                code = inc.proc.wait(timeout=60)
                for pipe in (inc.proc.stdout, inc.proc.stdin):
                    pipe.close()  # type: ignore[union-attr]
                del live[inc.worker]
                if inc.killed and code == -signal.SIGKILL:
                    figures.kills += 1
                    figures.kills_by_role[inc.role] += 1
                    figures.interrupted_ops += inc.begun - inc.ended
                    kills_left[inc.worker] -= 1
                    left = inc.ops_left - inc.ended
                    if seconds is not None or left > 0:
                        serial += 1
                        nxt = _spawn(
                            inc.worker,
                            inc.role,
                            max(left, 1),
                            kill_point(inc.worker, left),
                            seed=seed * 1000 + serial,
                            wait=False,
                            **common,
                        )
                        live[inc.worker] = nxt
                        sel.register(nxt.proc.stdout, selectors.EVENT_READ, nxt)  # type: ignore[arg-type]
                elif code != 0:  # finishing before a late kill landed is fine (code 0)
                    figures.errors.append(
                        f"worker {inc.worker} ({inc.role}) exited {code}: "
                        + inc.stderr.read_text(errors="replace")[-2000:]
                    )
    finally:
        for inc in live.values():
            inc.proc.kill()
            inc.proc.wait()
    for err in logs.glob("*.err"):
        text = err.read_text(errors="replace")
        if "finding:" in text or "corrupt:" in text:
            figures.errors.append(f"{err.name}: {text[-2000:]}")

    # Final state: verify clean, nothing quarantined, one gc leaves no temp or orphan.
    cache = ArtifactCache(cache_dir)
    left = list(cache_dir.rglob(".tmp-*"))
    left_by_kills = len(left)
    # gc keeps a temp file younger than LOCKED_TEMP_MIN_AGE even when its writer is gone: it
    # cannot tell a killed writer from a live one between its create and its flock.  A kill
    # in the run's last second leaves such a file; let it age past that (a bounded wait).
    ages = [time.time() - p.lstat().st_mtime for p in left if p.exists()]
    if ages:
        time.sleep(max(0.0, LOCKED_TEMP_MIN_AGE - min(ages)) + 0.1)
    final_verify = cache.verify()
    final_gc = cache.gc()
    temps = sorted(str(p) for p in cache_dir.rglob(".tmp-*"))
    metas = {fp for fp, kind in cache._scan(kinds=("json",))}
    objects = {e.fingerprint for e in cache.ls()}
    stats = cache.stats()
    result = {
        **figures.to_json(),
        "runtime_seconds": round(time.monotonic() - started, 2),
        "mode": "fixed" if seconds is None else f"{seconds:g} s",
        "seed": seed,
        "final_verify_clean": final_verify.clean and not final_verify.findings,
        "final_gc_findings": [f.line() for f in final_gc.findings],
        "temp_files_before_final_gc": left_by_kills,
        "orphan_metadata_removed_by_final_gc": len(final_gc.orphan_meta_removed),
        "temp_files_after_gc": temps,
        "orphan_metadata_after_gc": sorted(metas - objects),
        "unknown_objects": sorted(objects - set(plan["sources"])),
        "quarantined": stats.quarantined,
        "entries_at_end": len(objects),
    }
    return result


def test_stress_cache_with_sigkill(tmp_path: Path, stress_seconds: float | None) -> None:
    result = run_stress(tmp_path, stress_seconds)
    summary = (
        f"\n[stress] {result['mode']}: {result['operations']} operations "
        f"{result['operations_by_role']}, {result['kills']} kills "
        f"{result['kills_by_role']} ({result['interrupted_operations']} operations cut short), "
        f"{result['wrong_bytes']} wrong bytes, {result['partial_objects']} partial objects, "
        f"{result['false_corrupt_reports']} false corrupt reports, "
        f"{result['bytes_served_and_checked']} bytes served and checked, "
        f"{result['temp_files_before_final_gc']} temp files left by kills (swept by the final gc), "
        f"runtime {result['runtime_seconds']} s\n[stress] results {result['results']}"
    )
    print(summary)
    if os.environ.get("SIMPLER_STRESS_REPORT"):
        Path(os.environ["SIMPLER_STRESS_REPORT"]).write_text(json.dumps(result, indent=2) + "\n")
    assert result["errors"] == [], "\n".join(result["errors"])
    assert result["wrong_bytes"] == result["wrong_objects"] == result["partial_objects"] == 0
    assert result["false_corrupt_reports"] == 0 and result["unexpected_findings"] == 0
    assert result["final_verify_clean"], result
    assert result["final_gc_findings"] == [], result["final_gc_findings"]
    assert result["temp_files_after_gc"] == [] and result["orphan_metadata_after_gc"] == []
    assert result["unknown_objects"] == [] and result["quarantined"] == 0
    assert result["kills"] > 0 and result["results"].get("get_hit", 0) > 0
    if stress_seconds is None:
        planned = sum(count * ops for _role, count, ops in FIXED_PLAN)
        assert result["operations"] == planned, "every planned operation completed"


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
