"""Programs the worker tests run in spawned processes (a light module: no pytest, no test file)."""

from __future__ import annotations

from typing import Any


def two_runtimes_program(manifests: list[str], seed: int) -> list[bool]:
    """One program with an isolated runner per runtime on device 0: is each result correct?"""
    import numpy as np

    from simpler_build.runtime import DeviceRunner, RuntimeBinaries
    from simpler_build.runtime.samples import chain_graph, chain_reference

    rng = np.random.default_rng(seed)
    runners = [
        DeviceRunner(RuntimeBinaries.from_manifest(m), device_id=0, isolate=True) for m in manifests
    ]
    ok = [True] * len(runners)
    try:
        prepared = [r.prepare(chain_graph(512)) for r in runners]
        for _ in range(10):
            for i, p in enumerate(prepared):
                a, b, c = (rng.standard_normal(512, dtype=np.float32) for _ in range(3))
                (out,) = p(a, b, c)
                ok[i] = ok[i] and bool(np.allclose(out, chain_reference(a, b, c), rtol=1e-6))
    finally:
        for r in runners:
            r.finalize()
    return ok


def report_worker_then_wait(manifest: str, pids: Any) -> None:
    """Start an isolated runner, report its worker's pid, then wait to be killed."""
    import time

    from simpler_build.runtime import DeviceRunner, RuntimeBinaries
    from simpler_build.runtime.samples import vector_add_graph

    runner = DeviceRunner(RuntimeBinaries.from_manifest(manifest), isolate=True)
    runner.prepare(vector_add_graph(16))
    pids.put(runner.pid)
    time.sleep(3600)
