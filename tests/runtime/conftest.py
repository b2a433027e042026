"""Fixtures of the runtime suite: the real build's lib dir, a fresh simulated device per test.

`runtime_lib` is the real SCons build (`scons -j2 arch=all build_dir=<tmp>`,
through the top-level `built_tree` fixture, or SIMPLER_TEST_BUILD_DIR).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from simpler_build.runtime import DeviceRunner, Graph, RuntimeBinaries, aicpu_op, sim
from simpler_build.runtime.samples import chain_graph
from tests.conftest import BuiltTree


@pytest.fixture(scope="session")
def runtime_lib(built_tree: BuiltTree) -> Path:
    """`<build_dir>/lib` holding `<arch>/<runtime>/runtime_binaries.json` for both arches."""
    return built_tree.lib


@pytest.fixture(scope="session")
def load_bins(runtime_lib: Path) -> Callable[[str, str], RuntimeBinaries]:
    def load(arch: str, runtime: str = "host_build_graph") -> RuntimeBinaries:
        return RuntimeBinaries.from_manifest(runtime_lib / arch / runtime, arch=arch)

    return load


@pytest.fixture(autouse=True)
def fresh_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test: its own device filesystem, no devices up, an empty bootstrap set."""
    root = tmp_path / "sim"
    monkeypatch.setenv("SIMPLER_SIM_ROOT", str(root))
    monkeypatch.delenv("SIMPLER_SIM_HBM_BYTES", raising=False)
    sim.reset_all_devices()
    aicpu_op.forget_bootstraps()
    yield root
    sim.reset_all_devices()
    aicpu_op.forget_bootstraps()


@pytest.fixture(scope="session")
def make_chain() -> Callable[..., Graph]:
    """Factory of the chain graph out = (a + b) * c + s over n float32 elements."""

    def make(n: int = 4096, s: float = 2.5, name: str = "chain") -> Graph:
        return chain_graph(n, s, name)

    return make


@pytest.fixture(scope="session")
def one_run_need(make_chain: Callable[..., Graph]) -> Callable[[RuntimeBinaries], int]:
    """Peak HBM of a runner that bootstraps, prepares the chain and runs it once."""

    def need(bins: RuntimeBinaries) -> int:
        rng = np.random.default_rng(0)
        with DeviceRunner(bins, device_id=0) as probe:
            prepared = probe.prepare(make_chain())
            prepared(*(rng.random(4096, dtype=np.float32) for _ in range(3)))
            peak = int(probe.stats["hbm_peak"])
        assert sim.get_device(0) is None, "the probe's device must be torn down"
        return peak

    return need
