"""Per-arch device profiles: HBM capacity, core counts and launch limits of the simulated chip.

Core counts, launch thread counts and block limits follow upstream simpler's
platform headers (docs/simulated-device.md).

Core counts match the build's arch profiles (site_scons/simpler_profiles.py),
so the runtime can cross-check what an inner SO reports it was built for.
Capacity is accounting over real host memory: by default the profile's HBM
capped by what the host can back (`host.py`), and set with
`SIMPLER_SIM_HBM_BYTES` or a constructor argument, e.g. to provoke
exhaustion in tests.
"""

from __future__ import annotations

import os

from simpler_build.cache._record import Record

from ..errors import OptionError
from . import host

HBM_BYTES_ENV = "SIMPLER_SIM_HBM_BYTES"
GIB = 1 << 30


class DeviceProfile(Record):
    """One arch's simulated chip; immutable, equal by value (a `Record`: no dataclass
    machinery on the runtime's import path)."""

    _fields = (
        "arch",
        "soc",
        "hbm_bytes",
        "aiv_cores",
        "aic_cores",
        "mix_aicore",
        "launch_aicpu_threads",
        "max_sched_threads",
        "max_block_dim",
        "soft_reset_clears_fault",
        "dies_per_chip",
        "device_count",
    )
    __slots__ = _fields
    arch: str
    soc: str
    hbm_bytes: int
    aiv_cores: int
    aic_cores: int
    mix_aicore: bool  # True when the AICore binary carries cube (matmul) kernels
    #: PLATFORM_MAX_AICPU_THREADS_JUST_FOR_LAUNCH: threads of every exec launch.
    launch_aicpu_threads: int
    #: Most active scheduler threads an exec may use (the rest of the launch idles).
    max_sched_threads: int
    #: PLATFORM_MAX_BLOCKDIM: blocks (1 AIC + 2 AIV each) a task may use; 0 means all.
    max_block_dim: int
    #: Whether rtDeviceReset clears a sticky fault (a5 needs rtDeviceResetForce, #1016).
    soft_reset_clears_fault: bool
    #: Topology: dies per chip.  The dies of one chip share one device filesystem, so
    #: one preinstall directory (a2a3: devices 2k and 2k+1; an a5 chip is one die).
    dies_per_chip: int
    device_count: int

    def __init__(
        self,
        arch: str,
        soc: str,
        hbm_bytes: int,
        aiv_cores: int,
        aic_cores: int,
        mix_aicore: bool,
        launch_aicpu_threads: int,
        max_sched_threads: int,
        max_block_dim: int,
        soft_reset_clears_fault: bool,
        dies_per_chip: int = 1,
        device_count: int = 16,
    ) -> None:
        self._assign(locals())  # written out: see Record._assign

    def chip_of(self, device_id: int) -> int:
        """The chip that device `device_id` is a die of."""
        return device_id // self.dies_per_chip

    def dies_of(self, chip: int) -> tuple[int, ...]:
        """The device ids of `chip`'s dies, which share its filesystem."""
        first = chip * self.dies_per_chip
        return tuple(range(first, first + self.dies_per_chip))

    def filesystem_of(self, device_id: int) -> int:
        """The device id whose directory holds `device_id`'s filesystem: its chip's first die."""
        return self.dies_of(self.chip_of(device_id))[0]


PROFILES: dict[str, DeviceProfile] = {
    "a2a3": DeviceProfile(
        "a2a3",
        "Ascend910B",
        64 * GIB,
        aiv_cores=48,
        aic_cores=24,
        mix_aicore=False,
        launch_aicpu_threads=6,
        max_sched_threads=4,
        max_block_dim=24,
        soft_reset_clears_fault=True,
        dies_per_chip=2,
    ),
    "a5": DeviceProfile(
        "a5",
        "Ascend950",
        128 * GIB,
        aiv_cores=72,
        aic_cores=36,
        mix_aicore=True,
        launch_aicpu_threads=7,
        max_sched_threads=7,
        max_block_dim=36,
        soft_reset_clears_fault=False,
        dies_per_chip=1,
    ),
}


def profile_for(arch: str) -> DeviceProfile:
    """The profile of `arch`; an OptionError (a ValueError) naming the known arches otherwise."""
    try:
        return PROFILES[arch]
    except KeyError:
        raise OptionError(f"unknown arch {arch!r} (known: {', '.join(sorted(PROFILES))})") from None


def hbm_capacity(profile: DeviceProfile, override: int | None = None) -> int:
    """Capacity in bytes: the explicit override, else SIMPLER_SIM_HBM_BYTES, else the profile's
    capped by the host (a 128 GiB device on a 16 GiB host is an OOM kill waiting to happen)."""
    if override is not None:
        value, source = override, "hbm_bytes"
    elif os.environ.get(HBM_BYTES_ENV):
        raw = os.environ[HBM_BYTES_ENV]
        try:
            value = int(raw, 0)
        except ValueError:
            raise OptionError(f"{HBM_BYTES_ENV}={raw!r} is not an integer byte count") from None
        source = HBM_BYTES_ENV
    else:
        cap = host.capacity_cap()
        return profile.hbm_bytes if cap is None else min(profile.hbm_bytes, cap)
    if value <= 0:
        raise OptionError(f"{source} must be a positive byte count, not {value}")
    return value
