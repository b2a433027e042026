"""Real processes on the same simulated device at once: eight bootstrap the same inner SO;
three run multi-threaded schedulers side by side."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import xxhash
from runtime_workers import bootstrap_twice, run_processes, schedule_random_graph

WORKERS = 8


def test_eight_processes_bootstrap_the_same_fingerprint(
    runtime_lib: Path, fresh_device: Path
) -> None:
    """Racing processes each either upload the inner SO or find it installed and intact
    (the host cannot see the device filesystem, so several may upload); once it is
    installed, a fresh process never uploads it again."""
    manifest = runtime_lib / "a5" / "aicpu_build_graph" / "runtime_binaries.json"
    inner = runtime_lib / "a5" / "aicpu_build_graph" / "libsimpler_inner_aicpu_build_graph.so"
    ctx = mp.get_context("spawn")
    start, first_done = ctx.Barrier(WORKERS), ctx.Barrier(WORKERS)
    results = run_processes(
        [(bootstrap_twice, (str(manifest), start, first_done, seed)) for seed in range(WORKERS)]
    )
    firsts, seconds = [r[0] for r in results], [r[1] for r in results]

    for r in firsts + seconds:
        assert r["ok"] and r["registrations"] == 1, r
        assert r["dispatcher_inits"] == r["bootstraps"], r  # a skip never touched the dispatcher
    for r in firsts:  # exactly one of the two, in every racing process
        assert r["process"] in ({"bootstraps": 1}, {"skipped_preinstalled": 1}), r
    assert sum(r["bootstraps"] for r in firsts) >= 1, "somebody had to install it"
    for r in seconds:  # installed and intact: nobody uploads it again
        assert r["process"] == {"skipped_preinstalled": 1}, r

    pre = fresh_device / "device0" / "preinstall"
    fp = xxhash.xxh3_64_hexdigest(inner.read_bytes())
    files = sorted(pre.iterdir())
    assert [f.name for f in files] == [f"simpler_inner_{fp}_0.so"]  # whole, no temp debris
    assert xxhash.xxh3_64_hexdigest(files[0].read_bytes()) == fp


def test_processes_scheduling_at_once_agree_for_every_thread_count(
    runtime_lib: Path, fresh_device: Path
) -> None:
    """Three processes run the same 300-task graph with 1..7 scheduler threads each, all at
    once on one (per-process) a5 device and one device filesystem: one answer everywhere."""
    manifest = runtime_lib / "a5" / "aicpu_build_graph" / "runtime_binaries.json"
    start = mp.get_context("spawn").Barrier(3)
    results = run_processes([(schedule_random_graph, (str(manifest), start, 5, 300))] * 3)
    assert len({d for r in results for d in r}) == 1, results
