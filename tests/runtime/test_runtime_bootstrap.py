"""The bootstrap path: once per content, distinct opTypes, verified preinstalls, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xxhash

from simpler_build.manifest import ManifestError
from simpler_build.runtime import (
    BinaryError,
    DeviceRunner,
    Graph,
    InnerSoLatchError,
    RuntimeBinaries,
    aicpu_op,
    sim,
)
from simpler_build.runtime.samples import chain_reference
from simpler_build.runtime.sim.errors import ACL_ERROR_RT_KERNEL_LOOKUP

N = 256


def _check_chain(runner: DeviceRunner, make_chain: Callable[..., Graph], runs: int = 3) -> None:
    prepared = runner.prepare(make_chain(n=N))
    rng = np.random.default_rng()
    for _ in range(runs):
        a, b, c = (rng.random(N, dtype=np.float32) for _ in range(3))
        (out,) = prepared(a, b, c)
        np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)


def _preinstalled(bins: RuntimeBinaries, device_id: int = 0) -> Path:
    fp = xxhash.xxh3_64_hexdigest(bins.inner_so.read_bytes())  # computed here, independently
    return sim.preinstall_dir(device_id, bins.arch) / f"simpler_inner_{fp}_{device_id}.so"


def test_preinstalled_name_is_xxh3_of_inner_so(load_bins: Callable[..., RuntimeBinaries]) -> None:
    bins = load_bins("a5")
    with DeviceRunner(bins) as runner:
        assert runner.stats["dispatcher_bootstraps"] == 1
    path = _preinstalled(bins)
    assert path.read_bytes() == bins.inner_so.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_two_runners_same_runtime_one_bootstrap(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    bins = load_bins("a2a3")
    with DeviceRunner(bins) as r1, DeviceRunner(bins) as r2:
        _check_chain(r1, make_chain)
        _check_chain(r2, make_chain)
        assert r1.stats["dispatcher_bootstraps"] + r2.stats["dispatcher_bootstraps"] == 1
        assert sim.get_device(0).stats["dispatcher_inits"] == 1
        assert aicpu_op.process_stats() == {"bootstraps": 1, "skipped_in_process": 1}


def test_concurrent_runners_in_threads_one_bootstrap(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    bins = load_bins("a5")
    runners: list[DeviceRunner] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def start() -> None:
        try:
            gate.wait()
            runners.append(DeviceRunner(bins))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    try:
        assert sum(r.stats["dispatcher_bootstraps"] for r in runners) == 1
        assert sim.get_device(0).stats["dispatcher_inits"] == 1
        for r in runners:
            _check_chain(r, make_chain, runs=1)
    finally:
        for r in runners:
            r.finalize()


def test_two_runtimes_two_bootstraps_distinct_op_types(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    # One inner SO per (process, device) (the latch, #923): the two runtimes run on the
    # two dies of one a2a3 chip, which share one preinstall directory.
    hbg, abg = load_bins("a2a3", "host_build_graph"), load_bins("a2a3", "aicpu_build_graph")
    assert hbg.inner_fingerprint != abg.inner_fingerprint
    with DeviceRunner(hbg, device_id=0) as r1, DeviceRunner(abg, device_id=1) as r2:
        _check_chain(r1, make_chain)
        _check_chain(r2, make_chain)
        assert r1.stats["dispatcher_bootstraps"] == r2.stats["dispatcher_bootstraps"] == 1
        for device_id, b in ((0, hbg), (1, abg)):
            ops = sim.get_device(device_id).op_types
            fp = b.inner_fingerprint
            assert set(ops) == {f"simpler_aicpu_init_{fp}", f"simpler_aicpu_exec_{fp}"}
        docs = [json.loads(r._op.json_path.read_text()) for r in (r1, r2)]
        assert set(docs[0]).isdisjoint(docs[1])
        assert _preinstalled(hbg, 0).parent == _preinstalled(abg, 1).parent  # one filesystem
        assert _preinstalled(hbg, 0).is_file() and _preinstalled(abg, 1).is_file()


def test_finalize_unloads_removes_json_and_a_new_runner_works(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    bins = load_bins("a2a3", "aicpu_build_graph")
    runner = DeviceRunner(bins)
    _check_chain(runner, make_chain)
    json_path = runner._op.json_path
    assert json_path is not None and json_path.is_file()
    runner.finalize()
    runner.finalize()  # idempotent
    assert not json_path.exists()
    assert sim.get_device(0) is None
    with DeviceRunner(bins) as again:
        _check_chain(again, make_chain)
        assert again.stats["dispatcher_bootstraps"] == 0  # the in-process set remembers


def test_preinstalled_file_from_another_process_skips_bootstrap(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    bins = load_bins("a5")
    with DeviceRunner(bins):
        pass
    aicpu_op.forget_bootstraps()  # as a fresh process would be
    with DeviceRunner(bins) as runner:
        _check_chain(runner, make_chain)
        assert runner.stats["dispatcher_bootstraps"] == 0
        assert runner.stats["dispatcher_probes"] == 1
        assert sim.get_device(0).stats["dispatcher_inits"] == 0
        assert aicpu_op.process_stats() == {"skipped_preinstalled": 1}


def _corrupt_in_place(path: Path, keep_mtime: bool) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte: still "present"
    with open(path, "r+b") as f:
        f.write(data)
    if keep_mtime:  # defeat any (path, inode, size, mtime) memo
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("remembered", [True, False], ids=["in-process-set", "fresh-process"])
@pytest.mark.parametrize("keep_mtime", [True, False], ids=["same-mtime", "new-mtime"])
def test_corrupted_preinstalled_file_is_reinstalled_never_run(
    remembered: bool,
    keep_mtime: bool,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
) -> None:
    bins = load_bins("a2a3")
    with DeviceRunner(bins):
        pass
    path = _preinstalled(bins)
    _corrupt_in_place(path, keep_mtime)
    assert xxhash.xxh3_64_hexdigest(path.read_bytes()) not in path.name
    if not remembered:
        aicpu_op.forget_bootstraps()
    with DeviceRunner(bins) as runner:
        _check_chain(runner, make_chain)
        assert runner.stats["dispatcher_bootstraps"] == 1
    assert path.read_bytes() == bins.inner_so.read_bytes()


def _tiny_dispatcher(tmp_path: Path) -> Path:
    """A dispatcher exporting two of the three entry points."""
    src = tmp_path / "tiny.c"
    src.write_text(
        "int DynTileFwkBackendKernelServerInit(void *a) { (void)a; return 0; }\n"
        "int DynTileFwkBackendKernelServer(void *a) { (void)a; return 0; }\n"
    )
    out = tmp_path / "libtiny_dispatcher.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


def _device_still_usable(bins: RuntimeBinaries, make_chain: Callable[..., Graph]) -> None:
    assert sim.get_device(0) is None  # the failed runner left nothing behind
    with DeviceRunner(bins) as runner:
        _check_chain(runner, make_chain, runs=1)


def test_dispatcher_missing_entry_point(
    tmp_path: Path, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    good = load_bins("a5")
    bad = RuntimeBinaries.from_paths(
        "a5", good.runtime, _tiny_dispatcher(tmp_path), good.inner_so, good.aicore
    )
    with pytest.raises(sim.CannError, match="StaticTileFwkBackendKernelServer") as info:
        DeviceRunner(bad)
    assert info.value.code == ACL_ERROR_RT_KERNEL_LOOKUP
    assert not sim.preinstall_dir(0).exists() or not any(sim.preinstall_dir(0).iterdir())
    _device_still_usable(good, make_chain)


def test_empty_inner_so(
    tmp_path: Path, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    good = load_bins("a2a3")
    empty = tmp_path / "libsimpler_inner_empty.so"
    empty.write_bytes(b"")
    with pytest.raises(BinaryError, match="empty"):
        RuntimeBinaries.from_paths("a2a3", good.runtime, good.dispatcher, empty, good.aicore)
    # Even unvalidated binaries (constructed directly) are refused before any device work.
    fps = {**good.fingerprints, "inner_so": xxhash.xxh3_64_hexdigest(b"")}
    unchecked = good.replace(inner_so=empty, fingerprints=fps)
    with pytest.raises(BinaryError, match="inner SO is empty") as info:
        DeviceRunner(unchecked)
    assert info.value.path == empty
    _device_still_usable(good, make_chain)


def test_wrong_arch_manifest_then_device_usable(
    runtime_lib: Path, load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    with pytest.raises(ManifestError, match="not the requested 'a2a3'"):
        RuntimeBinaries.from_manifest(runtime_lib / "a5" / "host_build_graph", arch="a2a3")
    _device_still_usable(load_bins("a2a3"), make_chain)


def test_inner_so_of_another_arch_is_caught_at_init(
    load_bins: Callable[..., RuntimeBinaries], make_chain: Callable[..., Graph]
) -> None:
    a2a3, a5 = load_bins("a2a3"), load_bins("a5")
    mixed = RuntimeBinaries.from_paths(
        "a2a3", a2a3.runtime, a2a3.dispatcher, a5.inner_so, a2a3.aicore
    )
    with pytest.raises(BinaryError, match="built for 72 AIV / 36 AIC cores"):
        DeviceRunner(mixed)
    # CANN latched the a5 inner SO for this process on device 0 (#923): refused, never run.
    with pytest.raises(InnerSoLatchError, match=a5.inner_fingerprint):
        DeviceRunner(a2a3)
    aicpu_op.forget_bootstraps()  # as a fresh process: the device itself is fine
    _device_still_usable(a2a3, make_chain)


def test_device_of_another_arch_is_refused_while_up(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    with DeviceRunner(load_bins("a5")):
        with pytest.raises(sim.CannError, match="up as an a5 chip"):
            DeviceRunner(load_bins("a2a3"))
        with DeviceRunner(load_bins("a2a3"), device_id=1) as other:
            assert other.stats["device_id"] == 1
