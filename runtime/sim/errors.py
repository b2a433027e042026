"""CANN runtime error codes the simulated device raises, and the exception carrying them.

Codes and names are CANN's own (rt_error_codes.h) so that logs read like a
real device's; the one simulation extension is marked.
"""

from __future__ import annotations

from simpler_build.errors import DeviceError

ACL_ERROR_RT_PARAM_INVALID = 107000
ACL_ERROR_RT_INVALID_DEVICEID = 107001
ACL_ERROR_RT_FILE_OPEN = 107009  # unreadable / missing file
ACL_ERROR_RT_INVALID_HANDLE = 107017  # stale or foreign handle
ACL_ERROR_RT_MEMORY_ALLOCATION = 207001  # HBM exhausted
ACL_ERROR_RT_AICORE_EXCEPTION = 507015  # an AICore kernel returned non-zero
ACL_ERROR_RT_STREAM_SYNC_TIMEOUT = 507046  # a launch outlived the op timeout (poisons the device)
ACL_ERROR_RT_AICPU_EXCEPTION = 507018  # an AICPU kernel returned non-zero (poisons the device)
ACL_ERROR_RT_KERNEL_LOOKUP = 507027  # a required symbol is missing
ACL_ERROR_RT_KERNEL_DUPLICATE = 507028  # an opType registered twice with other content
ACL_ERROR_RT_DRV_INTERNAL_ERROR = 507899  # a faulted (unusable) device refuses the call
#: The AICPU could not load an op's info: Path B's custom AICPU directory lacks the op.
ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR = 507902
#: Simulation extension: a kernel SO whose bytes do not match the fingerprint in its name.
ACL_ERROR_RT_KERNEL_SO_CORRUPT = 507950

_NAMES = {
    value: name
    for name, value in globals().items()
    if name.startswith("ACL_ERROR_RT_") and isinstance(value, int)
}


def error_name(code: int) -> str:
    """CANN name of `code` (or 'UNKNOWN')."""
    return _NAMES.get(code, "UNKNOWN")


class CannError(DeviceError):
    """A failed runtime call: `.code` is the CANN error code, `.call` the rt* call name."""

    def __init__(self, code: int, call: str, detail: str) -> None:
        self.code = code
        self.call = call
        self.detail = detail
        super().__init__(f"{call} failed with {code} ({error_name(code)}): {detail}")
