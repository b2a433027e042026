"""LoadAicpuOp: get an inner AICPU runtime SO onto the device once, and its entry points once.

docs/architecture.md "The preinstall protocol": the dispatcher preinstalls the inner SO as
`simpler_inner_<fp>_<device_id>.so` (upstream #890); the host then loads a Path A
op-registration JSON whose opTypes carry the fingerprint (two runtimes never
collide) and resolves `simpler_aicpu_init` / `simpler_aicpu_exec` a single time.
The bootstrap is skipped when this process already did it for the same file (a
thread-safe set), or when the device-side probe -- a cheap launch of the
dispatcher's `DynTileFwkBackendKernelServer` -- says the file is installed and
intact.  A preinstalled file that turns out corrupt at load time is
re-bootstrapped once; it is never run.

CANN latches the first inner SO a process loads through Path A on a device
(upstream #923): a second, different one would silently run the first.  So a
second inner SO on the same device in the same process is refused with
`InnerSoLatchError` before anything of it is installed or launched, and
Init's runtime-name cross-check catches a latch the process did not see coming.

Nothing is left behind by a crash: the op JSON is an anonymous file, and the
dispatcher's temp files of a writer that was killed are swept by the next
process that looks at the preinstall directory (`sim.fs.PreinstallLock`), or by
`simpler-build device gc`.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import io
import os
import warnings
from collections import Counter
from pathlib import Path

from simpler_build import jsonio
from simpler_build.cache.fingerprint import fingerprint_bytes, fingerprint_file
from simpler_build.errors import DeviceError
from simpler_build.files import read_regular

from . import sim
from .abi import ABI_VERSION, AICPU_EXEC, AICPU_INIT, DeviceArgs, InitArgs, LoaderKernelArgs
from .binaries import BinaryError, RuntimeBinaries
from .sim.binary import PATH_A_KERNEL_LIB
from .sim.errors import ACL_ERROR_RT_FILE_OPEN, ACL_ERROR_RT_KERNEL_SO_CORRUPT
from .sim.fs import PreinstallLock, installed_name, legacy_names
from .sim.sharedlib import anonymous_file, path_of

#: rtAicpuKernelLaunchExWithArgs kernel type of the extend-kernels (KFC) loader.
KERNEL_TYPE_AICPU_KFC = 5
_LOADER_ENTRY = "DynTileFwkBackendKernelServerInit"
_PROBE_ENTRY = "DynTileFwkBackendKernelServer"
# dispatcher/device_args.h: DeviceArgs.flags bits and probe_answer values.
FLAG_LEGACY_NAME, FLAG_PROBE = 1, 2
PROBE_INSTALLED, PROBE_MISSING = 1, 2

_BootKey = tuple[str, str]  # (preinstall directory, installed file name)
_bootstrapped: set[_BootKey] = set()
_key_locks: dict[_BootKey, _thread.LockType] = {}
_registry_lock = _thread.allocate_lock()
_process_stats: Counter[str] = Counter()
#: device id -> (pid, fingerprint, runtime) of the first inner SO this process loaded there.
_path_a_loaded: dict[int, tuple[int, str, str]] = {}


class InnerSoLatchError(DeviceError):
    """A second inner SO in one process on one device: CANN would run the first (#923)."""

    def __init__(self, device_id: int, wanted: str, runtime: str, latched: str | None, ran: str):
        self.device_id = device_id
        self.fingerprint = wanted
        self.latched_fingerprint = latched
        first = f"inner SO {latched} ({ran})" if latched else f"an inner SO of runtime {ran!r}"
        super().__init__(
            f"device {device_id}: this process already loaded {first} through Path A, and CANN "
            f"latches the first one: inner SO {wanted} ({runtime}) would silently run it. "
            f"Use DeviceRunner(..., isolate=True) to run each runtime in its own worker "
            f"process, or another device id"
        )


def _key_lock(key: _BootKey) -> _thread.LockType:
    with _registry_lock:
        return _key_locks.setdefault(key, _thread.allocate_lock())


def process_stats() -> dict[str, int]:
    """Process-wide bootstrap counters: bootstraps and why the others were skipped."""
    with _registry_lock:
        return dict(_process_stats)


def forget_bootstraps() -> None:
    """Forget this process's bootstraps and Path A loads, as a fresh process would (tests only)."""
    with _registry_lock:
        _bootstrapped.clear()
        _process_stats.clear()
        _path_a_loaded.clear()
    sim.binary.forget_latches()


def loaded_inner_so(device_id: int) -> tuple[str, str] | None:
    """(fingerprint, runtime) of the inner SO this process loaded first on `device_id`."""
    with _registry_lock:
        entry = _path_a_loaded.get(device_id)
    return None if entry is None or entry[0] != os.getpid() else (entry[1], entry[2])


def op_types(fingerprint: str) -> dict[str, str]:
    """opType -> function name; the fingerprint suffix keeps two runtimes apart on a device."""
    return {
        f"simpler_aicpu_init_{fingerprint}": AICPU_INIT,
        f"simpler_aicpu_exec_{fingerprint}": AICPU_EXEC,
    }


class LoadAicpuOp:
    """The loaded inner runtime of one runner: cached function handles and its op JSON."""

    def __init__(self, ctx: sim.Context, stream: sim.Stream, bins: RuntimeBinaries) -> None:
        self.ctx = ctx
        self.stream = stream
        self.bins = bins
        self.device_id = ctx.device.device_id
        self.fingerprint = fingerprint_file(bins.inner_so)
        if self.fingerprint != bins.inner_fingerprint:
            raise BinaryError(
                bins.inner_so,
                f"inner SO changed since it was validated ({bins.inner_fingerprint} -> "
                f"{self.fingerprint})",
            )
        first = loaded_inner_so(self.device_id)
        if first is not None and first[0] != self.fingerprint:
            # Nothing of this SO is installed or launched: CANN would run the first one.
            raise InnerSoLatchError(
                self.device_id, self.fingerprint, bins.runtime, first[0], first[1]
            )
        self.legacy = legacy_names()
        self.preinstall_dir = sim.preinstall_dir(self.device_id, ctx.device.profile.arch)
        self.installed_name = installed_name(self.fingerprint, self.device_id, self.legacy)
        self.key: _BootKey = (str(self.preinstall_dir), self.installed_name)
        self.bootstraps = 0
        self.probes = 0
        self.launches = 0
        self.json_path: Path | None = None
        self._json: io.FileIO | None = None
        self.binary: sim.BinHandle | None = None
        try:
            # The shared lock covers install and load: `device gc` (exclusive) waits for both.
            with _key_lock(self.key), PreinstallLock(self.preinstall_dir) as lock:
                if lock.swept:
                    with _registry_lock:
                        _process_stats["swept_temp_files"] += len(lock.swept)
                self._ensure_preinstalled(lock)
                self.json_path = self._write_op_json()
                self.binary = self._load(lock)
            init_op, exec_op = op_types(self.fingerprint)
            self.init_fn = sim.rtsFuncGetByName(self.binary, init_op)
            self.exec_fn = sim.rtsFuncGetByName(self.binary, exec_op)
            self.info = self._init(first)
        except BaseException:
            self.finalize()
            raise

    # -- bootstrap ---------------------------------------------------------------------------
    @property
    def preinstalled_path(self) -> Path:
        return self.preinstall_dir / self.installed_name

    def _ensure_preinstalled(self, lock: PreinstallLock, force: bool = False) -> None:
        """Install the inner SO unless this process did, or the device-side probe says it is.

        The legacy content-only name predates the probe: every process bootstraps once.
        """
        if not force:
            with _registry_lock:
                if self.key in _bootstrapped:
                    _process_stats["skipped_in_process"] += 1
                    return
        # Before the dispatcher opens the name (probe or Init): a FIFO there would hang it.
        replaced = lock.make_room(self.preinstalled_path)
        if replaced is not None:
            with _registry_lock:
                _process_stats["replaced_special_files"] += 1
            warnings.warn(
                f"{self.preinstalled_path}: was {replaced}, not an installed SO; replaced it",
                RuntimeWarning,
                stacklevel=2,
            )
        if not force and not self.legacy and self._probe():
            with _registry_lock:
                _bootstrapped.add(self.key)
                _process_stats["skipped_preinstalled"] += 1
            return
        self._bootstrap()
        with _registry_lock:
            _bootstrapped.add(self.key)
            _process_stats["bootstraps"] += 1
        self.bootstraps += 1

    def _read_dispatcher(self) -> bytes:
        dispatcher = read_regular(self.bins.dispatcher)  # a FIFO: an error naming it, no hang
        expected = self.bins.fingerprints.get("dispatcher")
        if expected is not None and fingerprint_bytes(dispatcher) != expected:
            raise BinaryError(
                self.bins.dispatcher, f"dispatcher no longer hashes to {expected}; not loading it"
            )
        return dispatcher

    def _dispatch(self, entry: str, da: DeviceArgs, inner: bytes | None) -> DeviceArgs:
        """One launch of a dispatcher entry point; returns DeviceArgs as the device left it."""
        dispatcher = self._read_dispatcher()
        directory = os.fsencode(self.preinstall_dir) + b"\0"
        blocks: list[int] = []

        def to_device(data: bytes, tag: str) -> int:
            addr = sim.rtMalloc(self.ctx, len(data), tag)
            blocks.append(addr)
            sim.rtMemcpy(
                self.ctx, addr, len(data), _host(data), len(data), sim.MemcpyKind.HOST_TO_DEVICE
            )
            return addr

        try:
            da.aicpu_so_bin = to_device(dispatcher, "dispatcher SO")
            da.aicpu_so_len = len(dispatcher)
            if inner is not None:
                da.inner_so_bin = to_device(inner, "inner SO bundle")
                da.inner_so_len = len(inner)
            da.device_id = self.device_id
            da.preinstall_dir = to_device(directory, "preinstall dir")
            if self.legacy:
                da.flags |= FLAG_LEGACY_NAME
            da_addr = to_device(bytes(da), "DeviceArgs")
            ka = LoaderKernelArgs(device_args=da_addr)
            sim.rtAicpuKernelLaunchExWithArgs(KERNEL_TYPE_AICPU_KFC, entry, 1, ka, self.stream)
            sim.rtStreamSynchronize(self.stream)
            out = DeviceArgs()
            size = ctypes.sizeof(DeviceArgs)
            d2h = sim.MemcpyKind.DEVICE_TO_HOST
            sim.rtMemcpy(self.ctx, ctypes.addressof(out), size, da_addr, size, d2h)
            return out
        finally:
            for addr in blocks:
                with contextlib.suppress(sim.CannError):
                    sim.rtFree(self.ctx, addr)

    def _probe(self) -> bool:
        """Ask the device whether the installed file is there and intact: one cheap launch.

        The host cannot read the device's filesystem; the dispatcher can.  No inner
        SO bytes travel, only the fingerprint and length to check the file against.
        """
        da = DeviceArgs()
        da.inner_so_fp = int(self.fingerprint, 16)
        da.inner_so_len = os.stat(self.bins.inner_so).st_size
        da.flags = FLAG_PROBE
        self.probes += 1
        answer: int = self._dispatch(_PROBE_ENTRY, da, None).probe_answer
        if answer not in (PROBE_INSTALLED, PROBE_MISSING):
            raise DeviceError(
                f"{self.bins.dispatcher}: the probe launch answered {answer}, not "
                f"{PROBE_INSTALLED} (installed) or {PROBE_MISSING} (missing)"
            )
        return answer == PROBE_INSTALLED

    def _bootstrap(self) -> None:
        """Steps 1-4: copy both SOs to the device; the dispatcher preinstalls the inner one.

        Init's 0 is the device's word that the file is installed; a non-zero return is
        an AICPU exception (507018) raised by the launch.
        """
        inner = read_regular(self.bins.inner_so)
        if not inner:
            raise BinaryError(self.bins.inner_so, "inner SO is empty")
        # The bytes that go to the device are the ones hashed (docs/architecture.md: every
        # byte the runtime loads is checked against the manifest at load time).
        if fingerprint_bytes(inner) != self.fingerprint:
            raise BinaryError(self.bins.inner_so, "inner SO changed while being bootstrapped")
        self._dispatch(_LOADER_ENTRY, DeviceArgs(), inner)

    # -- op registration ---------------------------------------------------------------------
    def _write_op_json(self) -> Path:
        """The op-registration JSON, as an anonymous file open until finalize().

        It has no name in any directory, so no crash, Ctrl-C or missing
        finalize() can leave it behind; `/proc/self/fd/N` reaches it meanwhile.
        """
        so = self.installed_name
        doc = {
            op: {
                "opInfo": {
                    "opKernelLib": PATH_A_KERNEL_LIB,
                    "engine": "DNN_VM_AICPU",
                    "kernelSo": so,
                    "functionName": fn,
                    "computeCost": "100",
                    "flagAsync": "False",
                    "flagPartial": "False",
                    "userDefined": "False",
                    "runtime": self.bins.runtime,
                    "fingerprint": self.fingerprint,
                }
            }
            for op, fn in op_types(self.fingerprint).items()
        }
        data = jsonio.dumps(doc).encode()
        self._json = anonymous_file(f"simpler_aicpu_{self.fingerprint}.json", data)
        return Path(path_of(self._json))

    def _load(self, lock: PreinstallLock) -> sim.BinHandle:
        assert self.json_path is not None
        try:
            binary = sim.rtsBinaryLoadFromFile(self.ctx, self.json_path)
        except sim.CannError as exc:
            stale = exc.code in (ACL_ERROR_RT_FILE_OPEN, ACL_ERROR_RT_KERNEL_SO_CORRUPT)
            if not stale:
                raise
            # The preinstalled file vanished or was damaged after we trusted it: install it again.
            with _registry_lock:
                _bootstrapped.discard(self.key)
                _process_stats["rebootstraps"] += 1
            self._ensure_preinstalled(lock, force=True)
            binary = sim.rtsBinaryLoadFromFile(self.ctx, self.json_path)
        with _registry_lock:  # CANN latched it if it is this process's first on the device
            _path_a_loaded.setdefault(
                self.device_id, (os.getpid(), self.fingerprint, self.bins.runtime)
            )
            if _path_a_loaded[self.device_id][0] != os.getpid():  # inherited over a fork
                _path_a_loaded[self.device_id] = (os.getpid(), self.fingerprint, self.bins.runtime)
        return binary

    def _init(self, first: tuple[str, str] | None) -> InitArgs:
        """Call simpler_aicpu_init once and check the SO is the runtime and arch we expect.

        Its by-value argument is the device address of the InitArgs block it fills.  A
        runtime name other than ours means the code that ran is not the SO we loaded: a
        latch this process did not know of (`first` is what it knew before the load).
        """
        args = InitArgs(abi_version=ABI_VERSION, device_id=self.device_id)
        size = ctypes.sizeof(InitArgs)
        addr = sim.rtMalloc(self.ctx, size, "InitArgs")
        try:
            h2d = sim.MemcpyKind.HOST_TO_DEVICE
            sim.rtMemcpy(self.ctx, addr, size, ctypes.addressof(args), size, h2d)
            where = ctypes.c_uint64(addr)
            self.launch(self.init_fn, ctypes.addressof(where), ctypes.sizeof(where))
            sim.rtMemcpy(
                self.ctx, ctypes.addressof(args), size, addr, size, sim.MemcpyKind.DEVICE_TO_HOST
            )
        finally:
            with contextlib.suppress(sim.CannError):  # a poisoned device: reset frees it
                sim.rtFree(self.ctx, addr)
        name = args.runtime_name.decode(errors="replace")
        profile = self.ctx.device.profile
        if name != self.bins.runtime:
            raise InnerSoLatchError(
                self.device_id,
                self.fingerprint,
                self.bins.runtime,
                first[0] if first is not None and first[1] == name else None,
                name,
            )
        if (args.aiv_cores, args.aic_cores) != (profile.aiv_cores, profile.aic_cores):
            raise BinaryError(
                self.bins.inner_so,
                f"inner SO was built for {args.aiv_cores} AIV / {args.aic_cores} AIC cores; "
                f"an {profile.arch} device has {profile.aiv_cores} / {profile.aic_cores}",
            )
        return args

    # -- launches ----------------------------------------------------------------------------
    def launch(self, func: sim.FuncHandle, args: int, size: int, threads: int = 1) -> None:
        """One rtsLaunchCpuKernel of `threads` threads on a cached handle, synchronised.

        `args` is a host block, copied at launch; 507018 / 507046 are raised here.
        """
        self.launches += 1
        sim.rtsLaunchCpuKernel(func, threads, self.stream, args, size)
        sim.rtStreamSynchronize(self.stream)

    def finalize(self) -> None:
        """Unload the binary and drop the op JSON; safe to call twice or after a device reset.

        A step is forgotten only once it completed, so a call interrupted (Ctrl-C)
        part-way is finished by the next one.
        """
        if self.binary is not None:
            with contextlib.suppress(sim.CannError):  # already gone with a reset context
                sim.rtsBinaryUnload(self.binary)
            self.binary = None
        self.json_path = None
        if self._json is not None:
            self._json.close()  # idempotent: a resumed call may close it again
            self._json = None


def _host(data: bytes) -> int:
    """Host address of immutable bytes (valid while `data` is referenced)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
