"""Device topology and the preinstall directory: die pairs, per-device names (#890), the probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from simpler_build.runtime import RuntimeBinaries, sim
from simpler_build.runtime.sim.profiles import profile_for

REPO = Path(__file__).resolve().parents[2]


def _pythonpath() -> str:
    """The repo for `tests`, after what is already there (a mutant's copy goes first)."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)


#: One process: `iterations` fresh bootstraps (as many new processes would) on die `device`,
#: each running the chain graph.  It records every CANN error; a fault while running is
#: followed by one more call, which the faulted device refuses (the cascade).  It stops once
#: any process has seen that cascade (`stop` exists), or after `iterations`.
CHILD = r"""
import json, os, sys
from pathlib import Path
from simpler_build.runtime import DeviceRunner, DeviceUnusableError, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime.samples import chain_graph
import numpy as np

manifest, device, iterations, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bins = RuntimeBinaries.from_manifest(manifest, arch="a2a3")
codes, faults, done, stats = [], [], 0, {}
rng = np.random.default_rng(device)
for _ in range(iterations):
    if os.path.exists(stop):
        break
    aicpu_op.forget_bootstraps()
    try:
        with DeviceRunner(bins, device_id=device) as runner:
            try:
                prepared = runner.prepare(chain_graph(4096, 2.5, "chain"))
                for _ in range(3):
                    prepared(*(rng.random(4096, dtype=np.float32) for _ in range(3)))
            except sim.CannError as exc:
                codes.append(exc.code)
                faults.append(str(exc))
                try:  # the cascade: the faulted device refuses the next call
                    sim.rtMalloc(runner.ctx, 64)
                except sim.CannError as again:
                    codes.append(again.code)
            s = runner.stats
            stats = {k: s[k] for k in ("dispatcher_probes", "dispatcher_bootstraps")}
    except (sim.CannError, DeviceUnusableError) as exc:  # a fault while starting up
        fault = exc if isinstance(exc, sim.CannError) else exc.fault
        codes.append(fault.code)
        faults.append(str(fault))
    if 507899 in codes:  # a fault and its cascade seen: enough for every process
        Path(stop).touch()
        break
    done += 1
print(json.dumps({"codes": codes, "faults": faults, "done": done, "stats": stats}))
"""


def _children(
    manifest: Path, root: Path, devices: list[int], iterations: int, legacy: bool
) -> list[dict]:
    env = {
        **os.environ,
        "SIMPLER_SIM_ROOT": str(root),
        "PYTHONPATH": _pythonpath(),
    }
    env.pop("SIMPLER_SIM_LEGACY_PREINSTALL_NAME", None)
    if legacy:
        env["SIMPLER_SIM_LEGACY_PREINSTALL_NAME"] = "1"
    stop = root / "stop"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(manifest), str(d), str(iterations), str(stop)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in devices
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_topology_a2a3_dies_share_a_filesystem_a5_chips_do_not() -> None:
    a2a3, a5 = profile_for("a2a3"), profile_for("a5")
    assert a2a3.dies_of(a2a3.chip_of(3)) == (2, 3)
    assert a5.dies_of(a5.chip_of(3)) == (3,)
    assert sim.preinstall_dir(2, "a2a3") == sim.preinstall_dir(3, "a2a3")
    assert sim.preinstall_dir(2, "a5") != sim.preinstall_dir(3, "a5")


def test_a_second_process_probes_and_skips_the_bootstrap(
    runtime_lib: Path, fresh_device: Path
) -> None:
    manifest = runtime_lib / "a2a3" / "host_build_graph"
    first, second = (_children(manifest, fresh_device, [1], 1, False)[0] for _ in range(2))
    assert first["stats"] == {"dispatcher_probes": 1, "dispatcher_bootstraps": 1}, first
    assert second["stats"] == {"dispatcher_probes": 1, "dispatcher_bootstraps": 0}, second


def test_per_device_names_end_the_die_race_that_the_legacy_name_had(
    runtime_lib: Path, fresh_device: Path, load_bins: Callable[..., RuntimeBinaries]
) -> None:
    """#890: processes bootstrapping on both dies of one a2a3 chip, twice over."""
    manifest = runtime_lib / "a2a3" / "host_build_graph"
    dies = [0, 1, 0, 1]
    legacy = _children(manifest, fresh_device / "legacy", dies, 40, legacy=True)
    codes = [c for r in legacy for c in r["codes"]]
    # A die ran code the other die was rewriting in place: the mapped pages went (SIGBUS).
    faults = [f for r in legacy for f in r["faults"]]
    assert any("507018" in f and "returned -7" in f for f in faults), legacy
    assert 507899 in codes, legacy  # and the faulted device refuses what follows
    fixed = _children(manifest, fresh_device / "fixed", dies, 15, legacy=False)
    assert [r["codes"] for r in fixed] == [[]] * len(dies), fixed
    assert all(r["done"] == 15 for r in fixed), fixed
    fp = load_bins("a2a3").inner_fingerprint
    installed = sorted(
        p.name for p in (fresh_device / "fixed" / "device0" / "preinstall").iterdir()
    )
    assert installed == [f"simpler_inner_{fp}_0.so", f"simpler_inner_{fp}_1.so"]
