"""The leak DeviceRunner must never have, reproduced: register the AICore ELF on every run.

The arithmetic: after prepare the device holds `base` bytes; every run's
first AICore launch loads one more module, pinning an ELF of `elf` bytes
(registration alone costs nothing), so run k succeeds while
base + k * elf <= cap and the first failing run is (cap - base) // elf + 1.
It fails at the launch call (rtKernelLaunchWithHandleV2), not at registration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from simpler_build.manifest import load_manifest
from simpler_build.runtime import DeviceRunner, DeviceUnusableError, Graph, RuntimeBinaries, sim
from simpler_build.runtime.samples import chain_reference
from simpler_build.runtime.sim.errors import (
    ACL_ERROR_RT_DRV_INTERNAL_ERROR,
    ACL_ERROR_RT_MEMORY_ALLOCATION,
)


class PerRunRegistrationRunner(DeviceRunner):
    """Test-only: the historical bug -- rtRegisterAllKernel on every run, never cached."""

    def _kernel_handle(self) -> sim.KernelHandle:
        self._aicore = sim.rtRegisterAllKernel(self.ctx, self.bins.aicore)
        self._counts["aicore_registrations"] += 1
        return self._aicore


@pytest.mark.parametrize("arch", ["a2a3", "a5"])
def test_per_run_registration_fails_where_predicted_and_reset_recovers(
    arch: str,
    load_bins: Callable[..., RuntimeBinaries],
    make_chain: Callable[..., Graph],
    one_run_need: Callable[[RuntimeBinaries], int],
) -> None:
    bins = load_bins(arch)
    assert bins.manifest is not None
    elf = load_manifest(bins.manifest).binaries["aicore"].size  # the arithmetic's ELF size
    assert elf == bins.aicore.stat().st_size
    cap = one_run_need(bins) + 2 * elf
    rng = np.random.default_rng(4)
    leaky = PerRunRegistrationRunner(bins, hbm_bytes=cap)
    prepared = leaky.prepare(make_chain())
    base = int(leaky.stats["hbm_in_use"])
    failing_run = (cap - base) // elf + 1
    assert failing_run >= 2, "the cap must let at least one leaky run through"

    for run in range(1, failing_run):
        a, b, c = (rng.random(4096, dtype=np.float32) for _ in range(3))
        (out,) = prepared(a, b, c)
        np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)
        assert leaky.stats["hbm_in_use"] == base + run * elf  # one more pinned ELF per run

    before = leaky.stats["hbm_in_use"]
    sim.rtRegisterAllKernel(leaky.ctx, bins.aicore)  # registering without launching: free
    assert leaky.stats["hbm_in_use"] == before

    with pytest.raises(sim.CannError) as info:
        prepared(*(rng.random(4096, dtype=np.float32) for _ in range(3)))
    assert info.value.code == ACL_ERROR_RT_MEMORY_ALLOCATION == 207001
    assert info.value.call == "rtKernelLaunchWithHandleV2"  # the lazy module load
    assert leaky.stats["aicore_registrations"] == failing_run  # the last one never loaded
    assert leaky.stats["hbm_in_use"] == before

    # The broken driver: the next stream creation fails, in this context and in a new runner.
    with pytest.raises(sim.CannError) as info:
        sim.rtStreamCreate(leaky.ctx)
    assert info.value.code == ACL_ERROR_RT_DRV_INTERNAL_ERROR == 507899
    with pytest.raises(sim.CannError) as info:
        DeviceRunner(bins)
    assert info.value.code == 507899
    with pytest.raises(DeviceUnusableError, match="207001"):  # the runner names the first fault
        prepared(*(rng.random(4096, dtype=np.float32) for _ in range(3)))

    sim.rtDeviceReset(0)
    assert sim.get_device(0) is None
    with DeviceRunner(bins, hbm_bytes=cap) as healthy:
        again = healthy.prepare(make_chain())
        for _ in range(failing_run + 3):  # the cached handle outlives the leaky failure point
            a, b, c = (rng.random(4096, dtype=np.float32) for _ in range(3))
            (out,) = again(a, b, c)
            np.testing.assert_allclose(out, chain_reference(a, b, c), rtol=1e-6)
        assert healthy.stats["aicore_registrations"] == 1
    leaky.finalize()  # its context died with the reset; finalize stays harmless
