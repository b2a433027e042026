"""Path A's rules: the registration fields, the latch of one inner SO per (process, device)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from simpler_build.runtime import DeviceRunner, InnerSoLatchError, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime.sim import errors


def _install(bins: RuntimeBinaries, device_id: int = 0) -> str:
    name = f"simpler_inner_{bins.inner_fingerprint}_{device_id}.so"
    pre = sim.preinstall_dir(device_id, bins.arch)
    pre.mkdir(parents=True, exist_ok=True)
    (pre / name).write_bytes(bins.inner_so.read_bytes())
    return name


def _doc(path: Path, so: str, op: str, **info: str) -> Path:
    fields = {"kernelSo": so, "functionName": "simpler_aicpu_init", **info}
    path.write_text(json.dumps({op: {"opInfo": fields}}))
    return path


PATH_A = {"opKernelLib": "AICPUKernel", "userDefined": "False"}


def test_the_runtime_registers_through_path_a(load_bins: Callable[..., RuntimeBinaries]) -> None:
    bins = load_bins("a5")
    with DeviceRunner(bins) as runner:
        assert runner._op.json_path is not None
        doc = json.loads(runner._op.json_path.read_text())
    fp = bins.inner_fingerprint
    assert set(doc) == {f"simpler_aicpu_init_{fp}", f"simpler_aicpu_exec_{fp}"}
    for entry in doc.values():
        assert entry["opInfo"]["opKernelLib"] == "AICPUKernel"
        assert entry["opInfo"]["userDefined"] == "False"
        assert entry["opInfo"]["kernelSo"] == f"simpler_inner_{fp}_0.so"


@pytest.mark.parametrize(
    "fields",
    [
        {"opKernelLib": "CUSTAICPUKernel", "userDefined": "True"},
        {"opKernelLib": "CUSTAICPUKernel", "userDefined": "False"},
        {"opKernelLib": "AICPUKernel", "userDefined": "True"},
    ],
)
def test_path_b_fields_are_refused_as_cann_does(
    fields: dict[str, str], load_bins: Callable[..., RuntimeBinaries], tmp_path: Path
) -> None:
    bins = load_bins("a5")
    so = _install(bins)
    ctx = sim.rtCtxCreate(0, "a5")
    try:
        with pytest.raises(sim.CannError) as info:
            sim.rtsBinaryLoadFromFile(ctx, _doc(tmp_path / "b.json", so, "OpB", **fields))
        assert info.value.code == errors.ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR == 507902
        assert "custom AICPU kernel directory" in str(info.value)
        assert ctx.device.hbm.in_use == 0 and not ctx.device.op_types
    finally:
        sim.rtCtxDestroy(ctx)


def test_the_simulator_latches_the_first_inner_so_per_process_and_device(
    load_bins: Callable[..., RuntimeBinaries], tmp_path: Path
) -> None:
    hbg, abg = load_bins("a5", "host_build_graph"), load_bins("a5", "aicpu_build_graph")
    first_so, second_so = _install(hbg), _install(abg)
    ctx = sim.rtCtxCreate(0, "a5")
    try:
        first = sim.rtsBinaryLoadFromFile(ctx, _doc(tmp_path / "1.json", first_so, "Op1", **PATH_A))
        second = sim.rtsBinaryLoadFromFile(
            ctx, _doc(tmp_path / "2.json", second_so, "Op2", **PATH_A)
        )
        # The second SO "loads" but its function is the first SO's (#923).
        assert sim.rtsFuncGetByName(second, "Op2").addr == sim.rtsFuncGetByName(first, "Op1").addr
        assert ctx.device.stats["latched_other_so"] == 1
        assert sim.binary.latched(0) == (hbg.inner_fingerprint, first_so)
        # Another device of the same process latches on its own.
        assert sim.binary.latched(1) is None
    finally:
        sim.rtCtxDestroy(ctx)


def test_two_runtimes_in_one_process_on_one_device_raise_the_latch_error(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    hbg, abg = load_bins("a2a3", "host_build_graph"), load_bins("a2a3", "aicpu_build_graph")
    with DeviceRunner(hbg) as first:
        device = first.ctx.device
        launches, inits = device.stats["cpu_kernel_launches"], device.stats["dispatcher_inits"]
        with pytest.raises(InnerSoLatchError) as info:
            DeviceRunner(abg)
        message = str(info.value)
        assert hbg.inner_fingerprint in message and abg.inner_fingerprint in message
        assert "isolate=True" in message
        assert info.value.latched_fingerprint == hbg.inner_fingerprint
        # Never runs the wrong runtime: nothing of the second SO was installed or launched.
        assert device.stats["cpu_kernel_launches"] == launches
        assert device.stats["dispatcher_inits"] == inits
    # Finalizing does not lift the latch: it lasts as long as the process.
    with pytest.raises(InnerSoLatchError):
        DeviceRunner(abg)
    # Another device is free, and the same runtime again is fine.
    with DeviceRunner(abg, device_id=2) as other, DeviceRunner(hbg) as again:
        assert other.stats["runtime"] == "aicpu_build_graph"
        assert again.stats["runtime"] == "host_build_graph"


def test_init_cross_check_catches_a_latch_the_runtime_did_not_record(
    load_bins: Callable[..., RuntimeBinaries], tmp_path: Path
) -> None:
    hbg, abg = load_bins("a5", "host_build_graph"), load_bins("a5", "aicpu_build_graph")
    ctx = sim.rtCtxCreate(0, "a5")
    try:  # someone else in this process loaded hbg through Path A, behind the runtime's back
        sim.rtsBinaryLoadFromFile(ctx, _doc(tmp_path / "1.json", _install(hbg), "Op1", **PATH_A))
        assert aicpu_op.loaded_inner_so(0) is None
        with pytest.raises(InnerSoLatchError, match="'host_build_graph'"):
            DeviceRunner(abg)
    finally:
        sim.rtCtxDestroy(ctx)
