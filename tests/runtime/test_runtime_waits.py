"""Device-side waits sleep instead of spinning (docs/simulated-device.md "Waiting").

A simulated device shares two host cores among its launch threads, the AICore
side and the host.  A thread that yield-spins on a device word stays runnable
and eats a core; one stuck behind a busy core waits a whole time slice to see
the word change.  So every wait in the device code (the AICore side waiting
for the exec, the exec waiting for the AICore side, scheduler threads waiting
for thread 0 or for a ready task) spins a few rounds, then sleeps until the
writer wakes it, reading the abort word at each poll.

A launch that can never finish waits out its op timeout (1 s here), and the
process is measured over that second, in two ways that do not depend on the
wall clock:

- voluntary context switches: a thread that sleeps blocks (one switch per
  sleep, about a thousand a second at the 1 ms abort poll); a thread that
  yield-spins never blocks, so it adds none however busy the machine is;
- CPU time: on an idle machine a spinning thread burns a whole core, a
  sleeping one a small part of it.  (On a busy machine a yield-spinner gets
  little CPU, which is why the switches are counted too.)

Each case runs in a fresh process with one BLAS thread, so nothing else of
the test process is counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: CPU seconds a whole 1-second wait may cost the process; spinning costs >= 1 when idle.
CPU_BUDGET = 0.2
#: Voluntary context switches a 1-second wait must show at least: sleeping makes about a
#: thousand per waiting thread, spinning about ten (the main thread's own waits).
MIN_SLEEPS = 100

_CHILD = r"""
import ctypes, resource, sys
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries, sim
from simpler_build.runtime.samples import chain_graph

manifest, arch, case = sys.argv[1:4]
runner = DeviceRunner(RuntimeBinaries.from_manifest(manifest, arch=arch), op_timeout=1.0)
prepared = runner.prepare(chain_graph(64))
ones = np.ones(64, np.float32)
prepared(ones, ones, ones)  # the handshake works with two streams

if case == "aicore-side-waits":  # resident, waiting for an exec queued behind it (#1852)
    runner.aicore_stream = runner.stream
    def call():
        prepared(ones, ones, ones)
else:  # "exec-waits": thread 0 for an AICore side never launched, the others for thread 0
    args = prepared.host_args
    args.epoch += 1
    def call():
        runner._op.launch(runner._op.exec_fn, ctypes.addressof(args), ctypes.sizeof(args),
                          runner.launch_threads)

def usage():
    u = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return u.ru_utime + u.ru_stime, u.ru_nvcsw

cpu0, sleeps0 = usage()
try:
    call()
    code = 0
except sim.CannError as exc:
    code = exc.code
cpu1, sleeps1 = usage()
print(code, cpu1 - cpu0, sleeps1 - sleeps0)
"""


@pytest.mark.parametrize("case", ["aicore-side-waits", "exec-waits"])
def test_a_launch_waiting_out_its_op_timeout_sleeps(
    case: str, runtime_lib: Path, fresh_device: Path
) -> None:
    arch = "a5"  # 7 launch threads: the most waiters
    manifest = runtime_lib / arch / "host_build_graph" / "runtime_binaries.json"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(manifest), arch, case],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    code, cpu, sleeps = proc.stdout.split()
    assert int(code) == 507046  # the wait really lasted the whole op timeout
    assert int(sleeps) >= MIN_SLEEPS, f"{case}: {sleeps} voluntary switches in the 1 s wait"
    assert float(cpu) < CPU_BUDGET, f"{case}: the 1 s wait cost {float(cpu):.2f} s of CPU"
