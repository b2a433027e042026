"""Simulated CANN device: real SOs really dlopened and called, HBM that runs out, CANN error codes.

The rt* functions keep CANN's names so host code reads like code written
against the real runtime; handles are Python objects instead of opaque
pointers.
"""

from .aicore import (
    KernelHandle,
    rtKernelLaunchWithHandle,
    rtKernelLaunchWithHandleV2,
    rtRegisterAllKernel,
)
from .binary import (
    BinHandle,
    FuncHandle,
    rtsBinaryLoadFromFile,
    rtsBinaryUnload,
    rtsFuncGetByName,
    rtsLaunchCpuKernel,
)
from .device import (
    Context,
    Device,
    MemcpyKind,
    Stream,
    get_device,
    reset_all_devices,
    rtCtxCreate,
    rtCtxDestroy,
    rtDeviceReset,
    rtDeviceResetForce,
    rtFree,
    rtMalloc,
    rtMemcpy,
    rtStreamCreate,
    rtStreamDestroy,
    rtStreamSynchronize,
)
from .errors import CannError, error_name
from .fs import device_dir, preinstall_dir, sim_root
from .loader import rtAicpuKernelLaunchExWithArgs
from .profiles import PROFILES, DeviceProfile, profile_for

__all__ = [
    "PROFILES",
    "BinHandle",
    "CannError",
    "Context",
    "Device",
    "DeviceProfile",
    "FuncHandle",
    "KernelHandle",
    "MemcpyKind",
    "Stream",
    "device_dir",
    "error_name",
    "get_device",
    "preinstall_dir",
    "profile_for",
    "reset_all_devices",
    "rtAicpuKernelLaunchExWithArgs",
    "rtCtxCreate",
    "rtCtxDestroy",
    "rtDeviceReset",
    "rtDeviceResetForce",
    "rtFree",
    "rtKernelLaunchWithHandle",
    "rtKernelLaunchWithHandleV2",
    "rtMalloc",
    "rtMemcpy",
    "rtRegisterAllKernel",
    "rtStreamCreate",
    "rtStreamDestroy",
    "rtStreamSynchronize",
    "rtsBinaryLoadFromFile",
    "rtsBinaryUnload",
    "rtsFuncGetByName",
    "rtsLaunchCpuKernel",
    "sim_root",
]
