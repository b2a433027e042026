"""How much memory the host can back the simulated HBM with.

Simulated HBM is real host memory, and the profiles' 64/128 GiB are more than
many hosts have.  Linux overcommits, so a host allocation that "succeeds" can
still wake the OOM killer later, on a shared machine in someone else's
process.  The device therefore never asks the host for what it cannot give:

* the default capacity is the profile's, capped at `PHYSICAL_FRACTION` of
  the host's memory (physical RAM, or the cgroup's `memory.max` when lower);
* an allocation of `CHECK_FROM_BYTES` or more is refused when it exceeds
  `AVAILABLE_FRACTION` of what the host has available right now
  (`MemAvailable`, or what the cgroup has left);
* a host allocation that fails anyway is the device's own 207001,
  never a bare `MemoryError`.

An explicit capacity (`hbm_bytes=`, `SIMPLER_SIM_HBM_BYTES`) is taken as
given; the two allocation-time rules still hold for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from simpler_build.files import read_regular

PHYSICAL_FRACTION = 0.5
AVAILABLE_FRACTION = 0.75
CHECK_FROM_BYTES = 64 << 20
_PROC_LIMIT = 1 << 20  # bytes read at most from one /proc or cgroup file


def _read_int(path: Path) -> int | None:
    """An integer file such as cgroup's memory.max ("max" and unreadable: None)."""
    try:
        text = read_regular(path, max_size=_PROC_LIMIT).decode("ascii").strip()
        return int(text)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _cgroup_dir() -> Path | None:
    """This process's cgroup v2 directory, when there is one."""
    try:
        lines = read_regular("/proc/self/cgroup", max_size=_PROC_LIMIT).decode().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if line.startswith("0::"):
            return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    return None


def _cgroup_limit() -> tuple[int, int] | None:
    """(memory.max, memory.current) of this process's cgroup, when it is limited."""
    cgroup = _cgroup_dir()
    if cgroup is None:
        return None
    limit = _read_int(cgroup / "memory.max")
    if limit is None:  # unlimited ("max") or no such file: its usage does not matter
        return None
    return limit, _read_int(cgroup / "memory.current") or 0


def physical_bytes() -> int | None:
    """Memory this process can ever have: physical RAM, or its cgroup's limit when lower."""
    try:
        ram: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        ram = None
    cgroup = _cgroup_limit()
    if cgroup is not None:
        ram = cgroup[0] if ram is None else min(ram, cgroup[0])
    return ram if ram and ram > 0 else None


def available_bytes() -> int | None:
    """Memory the host can give now: MemAvailable, or what the cgroup has left when lower."""
    available: int | None = None
    try:
        meminfo = read_regular("/proc/meminfo", max_size=_PROC_LIMIT).decode()
    except (OSError, UnicodeDecodeError):
        meminfo = ""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                available = int(fields[1]) * 1024
            break
    cgroup = _cgroup_limit()
    if cgroup is not None:
        left = max(cgroup[0] - cgroup[1], 0)
        available = left if available is None else min(available, left)
    return available


def capacity_cap() -> int | None:
    """The most HBM a device may have by default on this host (None: unknown, no cap)."""
    physical = physical_bytes()
    return None if physical is None else int(physical * PHYSICAL_FRACTION)


def refusal(size: int) -> str | None:
    """Why the host should not be asked for `size` bytes now, or None when it may be."""
    if size < CHECK_FROM_BYTES:
        return None
    available = available_bytes()
    if available is not None and size > available * AVAILABLE_FRACTION:
        return f"the host has {available} bytes available, too few for {size}"
    return None
