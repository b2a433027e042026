"""The built dispatcher's Init, called through ctypes with a real DeviceArgs block."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
import xxhash

from simpler_build.runtime.abi import DISPATCHER_ENTRY_POINTS, DeviceArgs
from simpler_build.runtime.abi import LoaderKernelArgs as KernelArgs
from tests.conftest import ARCHES, BuiltTree


class Bundle:
    """Keeps every buffer the argument blocks point at alive."""

    def __init__(self, inner: bytes, preinstall_dir: Path) -> None:
        self.inner = ctypes.create_string_buffer(inner, len(inner) or 1)
        self.len = len(inner)
        self.dir = ctypes.create_string_buffer(os.fsencode(preinstall_dir))
        self.dargs = DeviceArgs(
            inner_so_bin=ctypes.addressof(self.inner),
            inner_so_len=len(inner),
            preinstall_dir=ctypes.addressof(self.dir),
        )
        self.kargs = KernelArgs(device_args=ctypes.addressof(self.dargs))

    @property
    def pointer(self) -> ctypes.c_void_p:
        return ctypes.c_void_p(ctypes.addressof(self.kargs))

    def probe(self, lib: ctypes.CDLL, entry: str = "DynTileFwkBackendKernelServer") -> int:
        """The device-side probe: 1 installed and intact, 2 missing; the entry returns 0."""
        self.dargs.flags, self.dargs.probe_answer = 2, 0
        self.dargs.inner_so_fp = int(xxhash.xxh3_64_hexdigest(self.inner.raw[: self.len]), 16)
        self.dargs.inner_so_len = self.len
        try:
            assert getattr(lib, entry)(self.pointer) == 0
            return int(self.dargs.probe_answer)
        finally:
            self.dargs.flags = 0


@pytest.fixture(params=ARCHES)
def dispatcher(request: pytest.FixtureRequest, built_tree: BuiltTree) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(built_tree.dispatcher(request.param)), mode=os.RTLD_LOCAL)
    for name in DISPATCHER_ENTRY_POINTS:
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_int
    return lib


def test_init_preinstalls_inner_so_under_its_fingerprint(
    dispatcher: ctypes.CDLL, built_tree: BuiltTree, tmp_path: Path
):
    inner = built_tree.inner_so("a5", "host_build_graph").read_bytes()
    bundle = Bundle(inner, tmp_path / "preinstall")
    # Without the probe flag, the kernel servers keep their upstream contract: 0, no answer.
    assert dispatcher.DynTileFwkBackendKernelServer(bundle.pointer) == 0
    assert dispatcher.StaticTileFwkBackendKernelServer(bundle.pointer) == 0
    assert bundle.dargs.probe_answer == 0
    assert bundle.probe(dispatcher) == 2, "not installed yet"
    assert dispatcher.DynTileFwkBackendKernelServerInit(bundle.pointer) == 0
    fp = xxhash.xxh3_64_hexdigest(inner)
    expected = tmp_path / "preinstall" / f"simpler_inner_{fp}_0.so"  # the die is in the name
    assert sorted(p.name for p in expected.parent.iterdir()) == [expected.name], "no temp file"
    assert expected.read_bytes() == inner
    assert bundle.probe(dispatcher) == 1
    assert bundle.probe(dispatcher, "StaticTileFwkBackendKernelServer") == 1
    bundle.dargs.device_id = 1  # the other die of the chip has not installed its own yet
    assert bundle.probe(dispatcher) == 2
    bundle.dargs.device_id = 0
    # Idempotent: a second Init keeps the same, intact file.
    assert dispatcher.DynTileFwkBackendKernelServerInit(bundle.pointer) == 0
    assert expected.read_bytes() == inner


def test_init_replaces_a_corrupt_preinstalled_file(dispatcher: ctypes.CDLL, tmp_path: Path):
    inner = b"\x7fELF" + bytes(range(256)) * 64
    bundle = Bundle(inner, tmp_path)
    target = tmp_path / f"simpler_inner_{xxhash.xxh3_64_hexdigest(inner)}_0.so"
    target.write_bytes(inner[:100])
    assert bundle.probe(dispatcher) == 2
    assert dispatcher.DynTileFwkBackendKernelServerInit(bundle.pointer) == 0
    assert target.read_bytes() == inner


def test_init_rejects_null_and_empty(dispatcher: ctypes.CDLL, tmp_path: Path):
    init = dispatcher.DynTileFwkBackendKernelServerInit
    assert init(None) == 1
    assert init(ctypes.c_void_p(ctypes.addressof(KernelArgs()))) == 1, "null device_args"
    empty = Bundle(b"", tmp_path)
    assert init(empty.pointer) == 1
    assert list(tmp_path.iterdir()) == []


def test_failed_write_returns_1_and_leaves_nothing(dispatcher: ctypes.CDLL, tmp_path: Path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert dispatcher.DynTileFwkBackendKernelServerInit(Bundle(b"abc", not_a_dir).pointer) == 1
    assert not_a_dir.read_text() == "x"

    # The final name is taken by a directory: the rename fails after the temp file was
    # written, and the temp file must not outlive the failure.
    preinstall = tmp_path / "preinstall"
    payload = b"payload" * 1000
    blocker = preinstall / f"simpler_inner_{xxhash.xxh3_64_hexdigest(payload)}_0.so"
    blocker.mkdir(parents=True)
    assert dispatcher.DynTileFwkBackendKernelServerInit(Bundle(payload, preinstall).pointer) == 1
    assert [p.name for p in preinstall.iterdir()] == [blocker.name]
    assert blocker.is_dir() and not any(blocker.iterdir())
