"""Workers the runtime tests run in spawned processes, and the helper that runs them.

Kept out of the test modules so a `spawn` child imports only this light
module (not pytest and a test file) before running its worker.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable
from typing import Any

N = 2048
RUNS = 20


def _run_chain(manifest: str, seed: int) -> dict[str, Any]:
    """One runner, RUNS checked runs of the chain graph; what it and the process did."""
    import numpy as np

    from simpler_build.runtime import DeviceRunner, RuntimeBinaries, aicpu_op
    from simpler_build.runtime.samples import chain_graph, chain_reference

    bins = RuntimeBinaries.from_manifest(manifest)
    rng = np.random.default_rng(seed)
    ok = True
    with DeviceRunner(bins) as runner:
        prepared = runner.prepare(chain_graph(N))
        for _ in range(RUNS):
            x, y, z = (rng.random(N, dtype=np.float32) for _ in range(3))
            (res,) = prepared(x, y, z)
            ok = ok and bool(np.allclose(res, chain_reference(x, y, z), rtol=1e-6))
        stats = runner.stats
        inits = runner.ctx.device.stats["dispatcher_inits"]
    return {
        "ok": ok,
        "bootstraps": stats["dispatcher_bootstraps"],
        "registrations": stats["aicore_registrations"],
        "dispatcher_inits": inits,
        "process": aicpu_op.process_stats(),
    }


def bootstrap_twice(manifest: str, start: Any, first_done: Any, seed: int) -> list[dict[str, Any]]:
    """Race the other workers to a first runner, then -- once every worker's first runner
    has finished, so the file is certainly installed -- start again as a fresh process would."""
    from simpler_build.runtime import aicpu_op

    start.wait()
    first = _run_chain(manifest, seed)
    first_done.wait()
    aicpu_op.forget_bootstraps()
    return [first, _run_chain(manifest, seed + 1)]


def schedule_random_graph(manifest: str, start: Any, seed: int, tasks: int) -> list[str]:
    """Run one seeded random graph of `tasks` tasks with every active thread count, once all
    workers are ready; the digest of the output of each count."""
    import hashlib

    import numpy as np

    from simpler_build.runtime import DeviceRunner, Graph, RuntimeBinaries

    rng = np.random.default_rng(seed)
    g = Graph("random")
    bufs = [g.input(f"in{i}", 16) for i in range(3)]
    temps = [g.temp(f"t{i}", 16) for i in range(8)]
    out = g.output("out", 16)
    for i in range(tasks):
        dst = out if i == tasks - 1 else temps[rng.integers(len(temps))]
        a, b = (bufs[rng.integers(len(bufs))] for _ in range(2))
        if rng.integers(2):
            g.add(dst, a, b, block_dim=int(rng.integers(4)))
        else:
            g.adds(dst, a, float(rng.integers(-3, 4)), block_dim=int(rng.integers(4)))
        if dst not in bufs:
            bufs.append(dst)
    values = [np.linspace(-1, 1, 16, dtype=np.float32) * (i + 1) for i in range(3)]
    bins = RuntimeBinaries.from_manifest(manifest)
    start.wait()
    digests = []
    for threads in range(1, 8):
        with DeviceRunner(bins, aicpu_threads=threads) as runner:
            (got,) = runner.prepare(g)(*values)
        digests.append(hashlib.sha256(got.tobytes()).hexdigest())
    return digests


def _report(results: Any, index: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:
        outcome = ("error", repr(exc))
    results.put((index, outcome))


def run_processes(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """Run each (fn, args) in its own spawned process; results in call order.

    Synchronisation primitives go in `args` (spawned children inherit them).
    The queue timeout only keeps a hung worker from hanging the suite.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_report, args=(results, i, fn, args))
        for i, (fn, args) in enumerate(calls)
    ]
    for p in procs:
        p.start()
    got: dict[int, Any] = {}
    try:
        while len(got) < len(procs):
            try:
                index, (status, value) = results.get(timeout=300)
            except queue_mod.Empty:
                missing = sorted(set(range(len(procs))) - set(got))
                raise AssertionError(f"workers {missing} hung") from None
            if status != "ok":
                raise AssertionError(f"worker {index} failed: {value}")
            got[index] = value
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return [got[i] for i in range(len(procs))]
