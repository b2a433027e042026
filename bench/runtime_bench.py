#!/usr/bin/env python3
"""Runtime benchmark: what caching the handles buys, and that nothing leaks.

Prints, in one run:
  1. per-task launch overhead with cached handles vs a baseline that registers
     the AICore binary on every run (the historical bug; given ample HBM);
  2. first-run latency (runner creation + prepare + first run) with a cold
     device filesystem, with a preinstalled file left by another process, and
     with the in-process fingerprint set;
  3. device memory growth over 10,000 runs of one prepared graph (must be 0);
  4. per-task time of a graph of 500 independent tasks with 1 and with the
     platform's maximum of active AICPU scheduler threads (issue 10), against
     the single-threaded time of the same run;
  5. the launch path (issue 9): per-task time of the 3-task chain, of a
     500-task chain and of the 500-independent-task graph against the floor, a bare ctypes call of
     `simpler_aicpu_exec` in the same SO on the same device blocks (one thread,
     no stream, no launch threads), and the fixed per-run cost between them;
     and each run split into the device model's own cost (both launches made
     straight through the C launch layer: the AICore side's thread and the
     exec's launch threads, no Python) and the rest (runtime + simulator in
     Python);
  6. the first run in a new process (interpreter, imports, runner, prepare,
     run) and `import simpler_build.runtime` alone, against
     `python -c "import numpy"` measured in the same run.

Uses temporary SIMPLER_CACHE_DIR / SIMPLER_SIM_ROOT; needs a build
(`scons arch=all`) or --build-dir.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _scratch import built_manifest, private_roots  # bench/ is on sys.path

from simpler_build.cache.fingerprint import clear_memo
from simpler_build.runtime import DeviceRunner, Graph, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime.abi import CpuKernelFn, CpuLaunch
from simpler_build.runtime.samples import chain_graph, chain_reference
from simpler_build.runtime.sim import profile_for

REPO = Path(__file__).resolve().parents[1]


class PerRunRegistrationRunner(DeviceRunner):
    """Baseline only: registers the AICore binary on every run (never do this)."""

    def _kernel_handle(self) -> sim.KernelHandle:
        self._aicore = sim.rtRegisterAllKernel(self.ctx, self.bins.aicore)
        self._counts["aicore_registrations"] += 1
        return self._aicore


def _inputs(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random(n, dtype=np.float32) for _ in range(3)]


def time_runs(runner: DeviceRunner, runs: int, n: int) -> float:
    """Seconds per task over `runs` runs of the 3-task chain (results checked once)."""
    prepared = runner.prepare(chain_graph(n))
    a, b, c = _inputs(n)
    (out,) = prepared(a, b, c)  # warm-up; also checks correctness
    assert np.allclose(out, chain_reference(a, b, c), rtol=1e-6)
    t0 = time.perf_counter()
    for _ in range(runs):
        prepared(a, b, c)
    return (time.perf_counter() - t0) / (runs * len(prepared.graph.tasks))


def launch_overhead(bins: RuntimeBinaries, runs: int, baseline_runs: int, n: int) -> dict:
    with DeviceRunner(bins) as runner:
        cached = time_runs(runner, runs, n)
        cached_regs = runner.stats["aicore_registrations"]
    elf = bins.aicore.stat().st_size
    ample = (1 << 30) + (baseline_runs + 16) * elf  # the baseline must not run out of HBM
    with PerRunRegistrationRunner(bins, hbm_bytes=ample) as runner:
        baseline = time_runs(runner, baseline_runs, n)
        baseline_regs = runner.stats["aicore_registrations"]
    return {
        "cached_us_per_task": cached * 1e6,
        "per_run_registration_us_per_task": baseline * 1e6,
        "ratio": baseline / cached,
        "cached_registrations": cached_regs,
        "baseline_registrations": baseline_regs,
    }


def _first_run(bins: RuntimeBinaries, n: int) -> tuple[float, int]:
    a, b, c = _inputs(n)
    t0 = time.perf_counter()
    with DeviceRunner(bins) as runner:
        (out,) = runner.prepare(chain_graph(n))(a, b, c)
        elapsed = time.perf_counter() - t0
        bootstraps = int(runner.stats["dispatcher_bootstraps"])
    assert np.allclose(out, chain_reference(a, b, c), rtol=1e-6)
    return elapsed, bootstraps


def _preinstall_in_other_process(manifest: Path) -> None:
    code = (
        "import sys\nfrom simpler_build.runtime import DeviceRunner, RuntimeBinaries\n"
        "DeviceRunner(RuntimeBinaries.from_manifest(sys.argv[1])).finalize()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(manifest)], check=True, env=os.environ)


def first_run_latency(bins: RuntimeBinaries, manifest: Path, reps: int, n: int) -> dict:
    """Median over `reps` fresh device filesystems of the three first-run situations."""
    cold, other, in_process = [], [], []
    for rep in range(reps):
        root = Path(tempfile.mkdtemp(prefix=f"sim-rep{rep}-"))
        os.environ["SIMPLER_SIM_ROOT"] = str(root)
        try:
            aicpu_op.forget_bootstraps()
            clear_memo()
            t, boots = _first_run(bins, n)
            assert boots == 1
            cold.append(t)
            shutil.rmtree(root)
            _preinstall_in_other_process(manifest)
            aicpu_op.forget_bootstraps()
            t, boots = _first_run(bins, n)
            assert boots == 0
            other.append(t)
            t, boots = _first_run(bins, n)
            assert boots == 0
            in_process.append(t)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "cold_device_fs_ms": statistics.median(cold) * 1e3,
        "preinstalled_by_other_process_ms": statistics.median(other) * 1e3,
        "in_process_fingerprint_set_ms": statistics.median(in_process) * 1e3,
    }


def memory_growth(bins: RuntimeBinaries, runs: int, n: int) -> dict:
    a, b, c = _inputs(n)
    with DeviceRunner(bins) as runner:
        prepared = runner.prepare(chain_graph(n))
        prepared(a, b, c)
        after_first = int(runner.stats["hbm_in_use"])
        for _ in range(runs - 1):
            (out,) = prepared(a, b, c)
        assert np.allclose(out, chain_reference(a, b, c), rtol=1e-6)
        stats = runner.stats
    return {
        "runs": runs,
        "hbm_after_first_run": after_first,
        "hbm_after_last_run": stats["hbm_in_use"],
        "growth_bytes": int(stats["hbm_in_use"]) - after_first,
        "aicore_registrations": stats["aicore_registrations"],
    }


def independent_graph(tasks: int, n: int) -> Graph:
    """`tasks` independent additions (no hazards between them): all ready at once."""
    g = Graph(f"independent{tasks}")
    a, b = g.input("a", n), g.input("b", n)
    for i in range(tasks - 1):
        g.add(g.temp(f"t{i}", n), a, b)
    g.add(g.output("out", n), a, b)
    return g


def long_chain_graph(tasks: int, n: int) -> Graph:
    """`tasks` additions, each needing the one before: one ready task at a time."""
    g = Graph(f"chain{tasks}")
    a, b = g.input("a", n), g.input("b", n)
    prev = a
    for i in range(tasks - 1):
        t = g.temp(f"t{i}", n)
        g.add(t, prev, b)
        prev = t
    g.add(g.output("out", n), prev, b)
    return g


def scheduler_threads(bins: RuntimeBinaries, tasks: int, runs: int, n: int) -> dict:
    """Seconds per task with 1 and with the most active scheduler threads, same graph, same run."""
    most = profile_for(bins.arch).max_sched_threads
    a, b, _ = _inputs(n)
    per_task = {}
    for threads in (1, most):
        with DeviceRunner(bins, aicpu_threads=threads) as runner:
            prepared = runner.prepare(independent_graph(tasks, n))
            (out,) = prepared(a, b)
            assert np.array_equal(out, a + b) and prepared.last_threads == threads
            t0 = time.perf_counter()
            for _ in range(runs):
                prepared(a, b)
            per_task[threads] = (time.perf_counter() - t0) / (runs * tasks)
    return {
        "tasks": tasks,
        "runs": runs,
        "max_threads": most,
        "one_thread_us_per_task": per_task[1] * 1e6,
        "max_threads_us_per_task": per_task[most] * 1e6,
        "speedup": per_task[1] / per_task[most],
    }


#: Issue 9's targets for the launch path and the first run.
TARGET_US_PER_TASK = 2.0
TARGET_X_FLOOR = 6.0
TARGET_X_IMPORT_NUMPY = 1.2


def _timed(fn: object, runs: int, reps: int = 5) -> float:
    """Median over `reps` batches of seconds per call of `fn` (called `runs` times a batch)."""
    batches = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(runs):
            fn()  # type: ignore[operator]
        batches.append((time.perf_counter() - t0) / runs)
    return statistics.median(batches)


def bare_exec(runner: DeviceRunner, prepared: object) -> object:
    """The floor: `simpler_aicpu_exec` called straight through ctypes, one thread, no stream.

    It runs the prepared graph's real task array in device memory; the AICore
    side's half of the handshake is written by hand (aicore_ready = epoch).
    """
    args, state_addr = prepared.host_args, prepared.state_addr  # type: ignore[attr-defined]
    exec_fn = CpuKernelFn(runner._op.exec_fn.addr)
    abort = ctypes.c_uint32(0)
    launch = CpuLaunch(block_idx=0, block_dim=1, abort=ctypes.addressof(abort))
    private = type(args)()  # by value, as a launch passes it: the exec writes its scratch
    size, src, dst = ctypes.sizeof(args), ctypes.addressof(args), ctypes.addressof(private)
    ready = sim_state_field(state_addr, "aicore_ready")
    keep = (private, abort)  # addresses only below: the closure must keep the memory alive

    def call() -> None:
        args.epoch = args.epoch % 0xFFFFFFFF + 1
        ready.value = args.epoch
        ctypes.memmove(dst, src, size)
        rc = exec_fn(dst, ctypes.byref(launch))
        if rc != 0 or keep[0].magic != args.magic:
            raise RuntimeError(f"bare simpler_aicpu_exec returned {rc}")

    return call


def device_floor(runner: DeviceRunner, prepared: object) -> tuple[object, object]:
    """The device model's own cost of a run: both launches straight through the C launch layer.

    The threads do a run's whole device-side work -- the AICore side on one
    thread, the exec on the platform's launch threads, their handshake in
    device memory, the tasks -- with no Python stream, check or copy around
    them: what issue 10's execution model costs on this host, below which no
    run can go.  Returns (call, close).
    """
    from simpler_build.runtime.sim import native
    from simpler_build.runtime.sim.device import LaunchRecord, LaunchThread

    lib = native.helper()
    args, main = prepared.host_args, prepared.main_args  # type: ignore[attr-defined]
    state = sim_state_field(prepared.state_addr, "epoch")  # type: ignore[attr-defined]
    exec_copy, main_copy = type(args)(), type(main)()  # by value, as a launch passes them
    blocks = runner.launch_threads
    threads = [LaunchThread() for _ in range(1 + blocks)]
    aicore_threads = (ctypes.c_void_p * 1)(threads[0].ptr)
    exec_threads = (ctypes.c_void_p * blocks)(*(t.ptr for t in threads[1:]))
    aicore_rec, exec_rec = LaunchRecord(1), LaunchRecord(blocks)
    main_fn, exec_fn = runner._aicore.main, runner._op.exec_fn.addr  # type: ignore[union-attr]
    copies = (
        (ctypes.addressof(exec_copy), ctypes.addressof(args), ctypes.sizeof(args)),
        (ctypes.addressof(main_copy), ctypes.addressof(main), ctypes.sizeof(main)),
    )
    (exec_dst, exec_src, exec_size), (main_dst, main_src, main_size) = copies
    start, wait = lib.simlaunch_launch_start, lib.simlaunch_launch_wait
    keep = (exec_copy, main_copy)  # addresses only below: the closure keeps the memory alive

    def call() -> None:
        assert keep
        args.epoch = main.epoch = args.epoch % 0xFFFFFFFF + 1
        ctypes.memmove(exec_dst, exec_src, exec_size)
        ctypes.memmove(main_dst, main_src, main_size)
        start(aicore_rec.ptr, aicore_threads, main_fn, main_dst, 1)
        start(exec_rec.ptr, exec_threads, exec_fn, exec_dst, blocks)
        if wait(exec_rec.ptr, 10.0) or wait(aicore_rec.ptr, 10.0) or state.value != args.epoch:
            raise RuntimeError("the device floor's run did not finish")

    def close() -> None:
        for thread in threads:
            thread.stop()
        aicore_rec.free()
        exec_rec.free()

    return call, close


def sim_state_field(state_addr: int, name: str) -> ctypes.c_uint32:
    from simpler_build.runtime.abi import ExecState

    return ctypes.c_uint32.from_address(state_addr + getattr(ExecState, name).offset)


def launch_path(bins: RuntimeBinaries, runs: int, n: int, tasks: int, thread_runs: int) -> dict:
    """Per-task time of the cached-handle run against the bare ctypes call, same run."""
    rows = {}
    a, b, c = _inputs(n)
    with DeviceRunner(bins) as runner:
        for label, graph, inputs, count in (
            ("chain3", chain_graph(n), (a, b, c), runs),
            (f"chain{tasks}", long_chain_graph(tasks, n), (a, b), thread_runs),
            (f"independent{tasks}", independent_graph(tasks, n), (a, b), thread_runs),
        ):
            prepared = runner.prepare(graph)
            prepared(*inputs)
            ntasks = len(graph.tasks)
            run = _timed(lambda p=prepared, i=inputs: p(*i), count)
            floor_call = bare_exec(runner, prepared)
            floor_call()
            floor = _timed(floor_call, count)
            device_call, close = device_floor(runner, prepared)
            try:
                device_call()  # type: ignore[operator]
                device = _timed(device_call, count)
            finally:
                close()  # type: ignore[operator]
            prepared(*inputs)  # the device state is the runner's again
            per_task, floor_task = run / ntasks * 1e6, floor / ntasks * 1e6
            rows[label] = {
                "tasks": ntasks,
                "us_per_task": per_task,
                "bare_ctypes_us_per_task": floor_task,
                "x_floor": per_task / floor_task,
                "fixed_us_per_run": (run - floor) * 1e6,
                "us_per_run": run * 1e6,
                "device_model_us_per_run": device * 1e6,
                "runtime_us_per_run": (run - device) * 1e6,
                "meets_2us": per_task <= TARGET_US_PER_TASK,
                "meets_6x": per_task <= TARGET_X_FLOOR * floor_task,
            }
    return rows


def _wall(argv: list[str], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=os.environ, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


FIRST_RUN = """import sys
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph
with DeviceRunner(RuntimeBinaries.from_manifest(sys.argv[1])) as runner:
    runner.prepare(chain_graph(64))(*[np.ones(64, np.float32)] * 3)
"""


def new_process(manifest: Path, reps: int) -> dict:
    """Wall time of fresh interpreters: the first run, the runtime's import, `import numpy`."""
    py = sys.executable
    _preinstall_in_other_process(manifest)  # the everyday case: the device already has it
    subprocess.run([py, "-c", FIRST_RUN, str(manifest)], check=True, env=os.environ)
    numpy_s = _wall([py, "-c", "import numpy"], reps)
    first_s = _wall([py, "-c", FIRST_RUN, str(manifest)], reps)
    import_s = _wall([py, "-c", "import simpler_build.runtime"], reps)
    return {
        "import_numpy_ms": numpy_s * 1e3,
        "first_run_ms": first_s * 1e3,
        "import_runtime_ms": import_s * 1e3,
        "first_run_x_numpy": first_s / numpy_s,
        "meets_1_2x": first_s <= TARGET_X_IMPORT_NUMPY * numpy_s,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="a5", choices=["a2a3", "a5"])
    p.add_argument("--runtime", default="host_build_graph")
    p.add_argument("--build-dir", type=Path, default=REPO / "build")
    p.add_argument("--runs", type=int, default=2000, help="timed runs with cached handles")
    p.add_argument("--baseline-runs", type=int, default=300, help="timed per-run-registration runs")
    p.add_argument("--growth-runs", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=5, help="repetitions of each first-run figure")
    p.add_argument("--n", type=int, default=64, help="elements per vector (small: overhead-bound)")
    p.add_argument("--tasks", type=int, default=500, help="independent tasks of the thread figure")
    p.add_argument("--thread-runs", type=int, default=20, help="timed runs of that graph")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    manifest = built_manifest(args.build_dir, args.arch, args.runtime)
    if manifest is None:
        return 2
    with private_roots():
        bins = RuntimeBinaries.from_manifest(manifest, arch=args.arch)
        report = {
            "arch": args.arch,
            "runtime": args.runtime,
            "aicore_elf_bytes": bins.aicore.stat().st_size,
            "launch": launch_overhead(bins, args.runs, args.baseline_runs, args.n),
            "first_run": first_run_latency(bins, manifest, args.reps, args.n),
            "memory": memory_growth(bins, args.growth_runs, args.n),
            "scheduler_threads": scheduler_threads(bins, args.tasks, args.thread_runs, args.n),
            "launch_path": launch_path(bins, args.runs, args.n, args.tasks, args.thread_runs),
            "new_process": new_process(manifest, args.reps),
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        la, fr, mem = report["launch"], report["first_run"], report["memory"]
        other = fr["preinstalled_by_other_process_ms"]
        print(f"runtime bench: {args.arch}/{args.runtime}, AICore ELF "
              f"{report['aicore_elf_bytes']} B, {args.n} elements per vector")  # fmt: skip
        rows = [
            ("launch overhead per task", None),
            ("  cached handles", f"{la['cached_us_per_task']:9.2f} us  ({args.runs} runs, "
             f"{la['cached_registrations']} registration)"),
            ("  register per run (baseline)", f"{la['per_run_registration_us_per_task']:9.2f} us  "
             f"({args.baseline_runs} runs, {la['baseline_registrations']} registrations)"),
            ("  ratio", f"{la['ratio']:9.2f} x"),
            (f"first-run latency (median of {args.reps}: runner + prepare + first run)", None),
            ("  cold device filesystem", f"{fr['cold_device_fs_ms']:9.2f} ms"),
            ("  preinstalled by another process", f"{other:9.2f} ms"),
            ("  in-process fingerprint set", f"{fr['in_process_fingerprint_set_ms']:9.2f} ms"),
        ]  # fmt: skip
        for label, value in rows:
            print(label if value is None else f"{label:34}{value}")
        print(f"device memory growth over {mem['runs']} runs")
        print(f"  after run 1 {mem['hbm_after_first_run']} B, after run {mem['runs']} "
              f"{mem['hbm_after_last_run']} B: growth {mem['growth_bytes']} B "
              f"({mem['aicore_registrations']} registration)")  # fmt: skip
        st = report["scheduler_threads"]
        print(
            f"per task, {st['tasks']} independent tasks ({st['runs']} runs), "
            "against one scheduler thread (baseline)"
        )
        print(f"  {'1 thread (baseline)':32}{st['one_thread_us_per_task']:9.2f} us")
        print(f"  {str(st['max_threads']) + ' threads':32}{st['max_threads_us_per_task']:9.2f} us"
              f"  ({st['speedup']:.2f} x)")  # fmt: skip
        print(
            f"launch path per task (target <= {TARGET_US_PER_TASK:g} us and <= "
            f"{TARGET_X_FLOOR:g}x the bare ctypes call of simpler_aicpu_exec, same run)"
        )
        for label, row in report["launch_path"].items():
            verdict = "met" if row["meets_2us"] and row["meets_6x"] else "NOT met"
            print(f"  {label + ' (' + str(row['tasks']) + ' tasks)':32}{row['us_per_task']:9.2f} us"
                  f"  floor {row['bare_ctypes_us_per_task']:.3f} us ({row['x_floor']:.1f} x), "
                  f"fixed per run {row['fixed_us_per_run']:.1f} us: {verdict}")  # fmt: skip
            model, rest = row["device_model_us_per_run"], row["runtime_us_per_run"]
            print(f"  {'':32}per run {row['us_per_run']:.1f} us = the device model alone "
                  f"{model:.1f} us (C launch layer, no Python) + the runtime's and "
                  f"simulator's Python {rest:.1f} us")  # fmt: skip
        npr = report["new_process"]
        verdict = "met" if npr["meets_1_2x"] else "NOT met"
        print(f"new process, median of {args.reps} (target: first run <= "
              f"{TARGET_X_IMPORT_NUMPY:g}x `import numpy`)")  # fmt: skip
        print(f"  {'import numpy (floor)':32}{npr['import_numpy_ms']:9.2f} ms")
        print(f"  {'import simpler_build.runtime':32}{npr['import_runtime_ms']:9.2f} ms")
        print(f"  {'first run (runner+prepare+run)':32}{npr['first_run_ms']:9.2f} ms"
              f"  ({npr['first_run_x_numpy']:.2f} x): {verdict}")  # fmt: skip
    return 0 if report["memory"]["growth_bytes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
