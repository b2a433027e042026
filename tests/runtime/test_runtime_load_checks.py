"""Every byte the runtime loads is hashed at load time against the manifest.

`from_manifest` verifies the files it resolves, but they can change before a
runner loads them: the dispatcher and inner SO at bootstrap, the AICore ELF
at its lazy registration.  Each is refused then, naming the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simpler_build.cache import ArtifactCache
from simpler_build.runtime import BinaryError, DeviceRunner, RuntimeBinaries
from simpler_build.runtime.samples import vector_add_graph


def _private_bins(runtime_lib: Path, tmp_path: Path) -> RuntimeBinaries:
    dest = tmp_path / "lib" / "a5"
    shutil.copytree(runtime_lib / "a5", dest)
    return RuntimeBinaries.from_manifest(
        dest / "host_build_graph", cache=ArtifactCache(tmp_path / "empty"), remotes=[]
    )


def _append_a_byte(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"\0")


@pytest.mark.parametrize("role", ["dispatcher", "inner_so"])
def test_bootstrap_refuses_a_binary_changed_after_resolution(
    runtime_lib: Path, tmp_path: Path, role: str
) -> None:
    bins = _private_bins(runtime_lib, tmp_path)
    _append_a_byte(bins.path(role))
    with pytest.raises(BinaryError) as info, DeviceRunner(bins) as runner:
        runner.prepare(vector_add_graph(64))
    assert info.value.path == bins.path(role)


def test_aicore_registration_refuses_a_changed_elf(runtime_lib: Path, tmp_path: Path) -> None:
    bins = _private_bins(runtime_lib, tmp_path)
    with DeviceRunner(bins) as runner:
        add = runner.prepare(vector_add_graph(64))
        _append_a_byte(bins.aicore)
        a = np.ones(64, dtype=np.float32)
        with pytest.raises(BinaryError, match="AICore ELF no longer hashes") as info:
            add(a, a)
        assert info.value.path == bins.aicore
        assert runner.stats["aicore_registrations"] == 0
