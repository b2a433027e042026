"""`simpler-build device gc`: old builds and killed writers' temp files go, live work is safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from simpler_build.runtime import sim

REPO = Path(__file__).resolve().parents[2]


def _pythonpath() -> str:
    """The repo for `tests`, after what is already there (a mutant's copy goes first)."""
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)


FP_OLD, FP_NEW = "0123456789abcdef", "fedcba9876543210"

#: A dispatcher mid-install: holds the preinstall lock shared (as every bootstrap does), has
#: its temp file half written, says "ready", waits for a line on stdin, then checks that its
#: temp file is still there and renames it into place, as the dispatcher does.
WRITER = r"""
import os, sys
from pathlib import Path
from simpler_build.runtime.sim.fs import PreinstallLock
pre = Path(sys.argv[1])
with PreinstallLock(pre):
    temp = pre / "simpler_inner_fedcba9876543210_0.so.tmp.AbC123"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"half")
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "go":
        alive = temp.exists()
        if alive:
            os.write(fd, b" and the rest")
            os.rename(temp, pre / "simpler_inner_fedcba9876543210_0.so")
        print("intact" if alive else "lost", flush=True)
    else:
        import time
        time.sleep(600)  # killed here
"""

#: Bootstraps as fresh processes would, running the chain graph each time, until it has
#: bootstrapped `boots` times (gc removed its SO in between), or `seconds` pass: a bound for a
#: hang. Stopping on a count, not after a fixed number of runs, keeps the test independent of
#: how fast a run is next to a gc process.
BOOTSTRAPPER = r"""
import json, sys, time
import numpy as np
from simpler_build.runtime import DeviceRunner, RuntimeBinaries, aicpu_op
from simpler_build.runtime.samples import chain_graph, chain_reference
bins = RuntimeBinaries.from_manifest(sys.argv[1], arch="a5")
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
rng = np.random.default_rng(0)
boots = runs = 0
while boots < want and time.monotonic() < deadline:
    aicpu_op.forget_bootstraps()
    with DeviceRunner(bins) as runner:
        prepared = runner.prepare(chain_graph(1024, 2.5, "chain"))
        a, b, c = (rng.random(1024, dtype=np.float32) for _ in range(3))
        (out,) = prepared(a, b, c)
        np.testing.assert_allclose(out, chain_reference(a, b, c, 2.5), rtol=1e-6)
        boots += runner.stats["dispatcher_bootstraps"]
    runs += 1
print(json.dumps({"bootstraps": boots, "runs": runs}))
"""


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SIMPLER_SIM_ROOT": str(root),
        "PYTHONPATH": _pythonpath(),
    }


def _gc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simpler_build", "device", "gc", *args],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fill(pre: Path) -> None:
    pre.mkdir(parents=True, exist_ok=True)
    for name in (
        f"simpler_inner_{FP_OLD}_0.so",
        f"simpler_inner_{FP_OLD}_1.so",
        f"simpler_inner_{FP_NEW}_0.so",
        f"simpler_inner_{FP_OLD}.so",  # the legacy content-only name
        f"simpler_inner_{FP_OLD}_0.so.tmp.Xy12Zw",
        "notes.txt",  # not the dispatcher's
    ):
        (pre / name).write_bytes(b"x" * 10)


def test_gc_removes_old_builds_and_temp_files_and_keeps_what_it_is_told(
    fresh_device: Path,
) -> None:
    pre = sim.preinstall_dir(0, "a2a3")
    _fill(pre)
    result = _gc(fresh_device, "--device", "1", "--keep", FP_NEW, "--json")  # die 1: chip 0
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema_version", "sim_root", "directories", "removed", "bytes_freed"}
    (entry,) = doc["directories"]
    assert entry["directory"] == str(pre) and entry["device"] == 0
    assert entry["removed_so"] == [
        f"simpler_inner_{FP_OLD}.so",
        f"simpler_inner_{FP_OLD}_0.so",
        f"simpler_inner_{FP_OLD}_1.so",
    ]
    assert entry["removed_temp"] == [f"simpler_inner_{FP_OLD}_0.so.tmp.Xy12Zw"]
    assert entry["kept"] == [f"simpler_inner_{FP_NEW}_0.so"]
    assert doc["removed"] == 4 and doc["bytes_freed"] == 40
    assert sorted(p.name for p in pre.iterdir()) == ["notes.txt", f"simpler_inner_{FP_NEW}_0.so"]
    # Without --device, every device's directory; without --keep, every SO.
    _fill(sim.preinstall_dir(3, "a5"))
    result = _gc(fresh_device, "-q")
    assert result.returncode == 0 and result.stdout == "", result
    assert sorted(p.name for p in pre.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in sim.preinstall_dir(3, "a5").iterdir()) == ["notes.txt"]


def test_gc_bad_arguments_get_one_line(fresh_device: Path) -> None:
    for args, problem in (
        (["--keep", "XYZ"], "argument --keep: invalid fingerprint 'XYZ'"),
        (["--keep", f"{FP_OLD}\n"], f"argument --keep: invalid fingerprint '{FP_OLD}\\n'"),
        (["--device", "-1"], "argument --device: invalid device id '-1': must be 0 or more"),
        (["--device", "one"], "argument --device: invalid device id 'one'"),
        (["--device", "1_0"], "argument --device: invalid device id '1_0'"),
        (["--device", "\u0663"], "argument --device: invalid device id '\u0663'"),
    ):
        result = _gc(fresh_device, *args)
        assert result.returncode == 2
        last = result.stderr.splitlines()[-1]
        assert last.startswith(f"simpler-build device gc: error: {problem}"), result.stderr
        assert "Traceback" not in result.stderr
    (fresh_device / "device0").mkdir(parents=True)
    (fresh_device / "device0" / "preinstall").write_text("not a directory")
    result = _gc(fresh_device, "--device", "0", "--json")
    assert result.returncode == 1 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["kind"] == "os" and error["path"].endswith("device0/preinstall")


def _waiting_for_flock(pid: int) -> bool:
    """Whether `pid` is blocked on a flock (/proc/locks lists waiters with `->`)."""
    with open("/proc/locks") as f:
        return any("->" in line and f" {pid} " in line for line in f)


def test_gc_waits_for_a_live_writer_and_sweeps_a_killed_one(fresh_device: Path) -> None:
    pre = sim.preinstall_dir(0, "a5")
    pre.mkdir(parents=True)
    env = _env(fresh_device)

    def writer() -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(pre)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    live = writer()
    gc = subprocess.Popen(
        [sys.executable, "-m", "simpler_build", "device", "gc", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # a bound for a hang, not a measurement
    while not _waiting_for_flock(gc.pid) and gc.poll() is None:
        assert time.monotonic() < deadline, "gc neither waited for the lock nor finished"
        time.sleep(0.01)
    assert live.stdin is not None and live.stdout is not None
    live.stdin.write("go\n")
    live.stdin.flush()
    assert live.stdout.readline().strip() == "intact"  # gc never touched a live writer's file
    live.wait(timeout=60)
    out, _ = gc.communicate(timeout=60)
    assert gc.returncode == 0
    (entry,) = json.loads(out)["directories"]
    assert entry["removed_temp"] == []  # it ran after the writer: its SO is an old build now
    assert entry["removed_so"] == [f"simpler_inner_{FP_NEW}_0.so"]

    killed = writer()
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert [p.name for p in pre.iterdir()] == [f"simpler_inner_{FP_NEW}_0.so.tmp.AbC123"]
    result = _gc(fresh_device, "--json")
    (entry,) = json.loads(result.stdout)["directories"]
    assert entry["removed_temp"] == [f"simpler_inner_{FP_NEW}_0.so.tmp.AbC123"]
    assert list(pre.iterdir()) == []


def test_gc_while_a_process_bootstraps_and_runs(runtime_lib: Path, fresh_device: Path) -> None:
    """Repeated gc under a process that bootstraps again and again: it never fails."""
    manifest = runtime_lib / "a5" / "host_build_graph"
    child = subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAPPER, str(manifest), "3", "120"],
        env=_env(fresh_device),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    removed: list[str] = []
    while child.poll() is None:
        result = _gc(fresh_device, "--device", "0", "--json")
        assert result.returncode == 0, result.stderr
        for entry in json.loads(result.stdout)["directories"]:
            removed += entry["removed_so"]
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    done = json.loads(out.strip().splitlines()[-1])
    # Every run passed, and after each SO gc removed, a later run's probe found it missing and
    # bootstrapped again. Each installed SO is removed at most once, and the last may be removed
    # after the last run, so removals never outnumber bootstraps.
    assert done["bootstraps"] == 3 and 2 <= len(removed) <= 3, (removed, done)
