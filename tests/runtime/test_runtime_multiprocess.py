"""Eight real processes bootstrap the same inner SO on the same simulated device at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import xxhash

WORKERS = 8

WORKER = r"""
import json, os, sys, time
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import chain_graph, chain_reference

manifest, go = sys.argv[1], sys.argv[2]
bins = RuntimeBinaries.from_manifest(manifest)
while not os.path.exists(go):          # start together: maximise the race
    time.sleep(0.001)
n = 2048
g = chain_graph(n)
rng = np.random.default_rng(os.getpid())
ok = True
with DeviceRunner(bins) as runner:
    prepared = runner.prepare(g)
    for _ in range(20):
        x, y, z = (rng.random(n, dtype=np.float32) for _ in range(3))
        (res,) = prepared(x, y, z)
        ok = ok and bool(np.allclose(res, chain_reference(x, y, z), rtol=1e-6))
    stats = runner.stats
print(json.dumps({"ok": ok, "bootstraps": stats["dispatcher_bootstraps"],
                  "registrations": stats["aicore_registrations"]}))
"""


def test_eight_processes_bootstrap_the_same_fingerprint(runtime_lib: Path, tmp_path: Path) -> None:
    manifest = runtime_lib / "a5" / "aicpu_build_graph" / "runtime_binaries.json"
    inner = runtime_lib / "a5" / "aicpu_build_graph" / "libsimpler_inner_aicpu_build_graph.so"
    go = tmp_path / "go"
    env = dict(os.environ)  # same SIMPLER_SIM_ROOT (this test's device filesystem) for all
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(manifest), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    time.sleep(1.0)  # let every interpreter reach the start line
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert all(r["ok"] for r in results), results
    assert all(r["registrations"] == 1 for r in results)
    assert 1 <= sum(r["bootstraps"] for r in results) <= WORKERS
    pre = Path(env["SIMPLER_SIM_ROOT"]) / "device0" / "preinstall"
    files = sorted(pre.iterdir())
    fp = xxhash.xxh3_64_hexdigest(inner.read_bytes())
    assert [f.name for f in files] == [f"simpler_inner_{fp}.so"]  # whole, no temp debris
    assert xxhash.xxh3_64_hexdigest(files[0].read_bytes()) == fp
