"""The runtime's usage errors (issue 12): each is raised by the public API, is a
`SimplerError`, stays the builtin it was raised as before, and keeps its message.

tests/test_errors.py checks the class table; tests/runtime/test_runtime_worker.py
checks that an isolated runner raises the same classes across the process boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from simpler_build import DeviceError, SimplerError
from simpler_build.runtime import (
    DeviceRunner,
    Graph,
    GraphError,
    InputError,
    InputShapeError,
    OptionError,
    RunnerClosedError,
    RuntimeBinaries,
    sim,
)
from simpler_build.runtime.samples import chain_graph

N = 8


def raised(fn: Callable[[], Any], cls: type[BaseException], builtin: type[BaseException]) -> str:
    """The message of what fn() raises, checked to be `cls`, a SimplerError and `builtin`."""
    with pytest.raises(SimplerError) as info:
        fn()
    assert type(info.value) is cls
    assert isinstance(info.value, builtin)
    return str(info.value)


def test_a_bad_graph_is_a_graph_error_and_a_value_error(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    g = Graph("g")
    a = g.input("a", N)
    assert (
        raised(lambda: g.input("b", 0), GraphError, ValueError)
        == "g: buffer 'b' needs positive integer dims, not 0"
    )
    assert (
        raised(lambda: g.output("a", N), GraphError, ValueError) == "g: buffer name 'a' used twice"
    )
    small = g.output("small", N - 1)
    assert (
        raised(lambda: g.adds(small, a, 1.0), GraphError, ValueError)
        == "g: 'a' has 8 elements, 'small' has 7"
    )
    with DeviceRunner(load_bins("a2a3")) as runner:
        assert (
            raised(lambda: runner.prepare(Graph("empty")), GraphError, ValueError)
            == "graph 'empty' has no tasks"
        )
        with DeviceRunner(load_bins("a2a3"), device_id=1) as other:
            prepared = other.prepare(chain_graph(N))
            assert (
                raised(lambda: runner.run(prepared), GraphError, ValueError)
                == "this prepared graph belongs to another runner"
            )


def test_inputs_that_do_not_bind_are_an_input_error_and_a_type_error(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    ones = np.ones(N, np.float32)
    with DeviceRunner(load_bins("a2a3")) as runner:
        chain = runner.prepare(chain_graph(N))
        assert (
            raised(lambda: chain(ones, ones), InputError, TypeError)
            == "graph 'chain': missing input 'c'"
        )
        assert (
            raised(lambda: chain(ones, ones, ones, a=ones), InputError, TypeError)
            == "input 'a' given twice"
        )
        assert raised(
            lambda: chain(ones, ones, ones.astype(np.float64)), InputError, TypeError
        ) == (
            "input 'c' is float64, graph 'chain' takes float32 -- "
            "pass float32 arrays, or call with cast=True to convert"
        )
        (out,) = chain(ones, ones, ones.astype(np.float64), cast=True)  # still usable
        np.testing.assert_array_equal(out, np.full(N, 4.5, np.float32))


def test_an_input_of_the_wrong_shape_is_an_input_shape_error_and_a_value_error(
    load_bins: Callable[..., RuntimeBinaries],
) -> None:
    ones = np.ones(N, np.float32)
    with DeviceRunner(load_bins("a5")) as runner:
        chain = runner.prepare(chain_graph(N))
        assert (
            raised(
                lambda: chain(ones, ones, np.ones(N + 1, np.float32)), InputShapeError, ValueError
            )
            == "input 'c' has shape (9,), graph says (8,)"
        )
        # Named inputs go through the binding, which checks shapes too.
        assert (
            raised(
                lambda: chain(ones, ones, c=np.ones((2, 4), np.float32)),
                InputShapeError,
                ValueError,
            )
            == "input 'c' has shape (2, 4), graph says (8,)"
        )


def test_an_option_out_of_range_is_an_option_error_and_a_value_error(
    load_bins: Callable[..., RuntimeBinaries], monkeypatch: pytest.MonkeyPatch
) -> None:
    bins = load_bins("a2a3")
    assert raised(lambda: DeviceRunner(bins, aicpu_threads=99), OptionError, ValueError) == (
        "aicpu_threads=99: an a2a3 device runs 1 to 4 scheduler threads"
    )
    assert (
        raised(lambda: DeviceRunner(bins, op_timeout=-1), OptionError, ValueError)
        == "op_timeout=-1: must be a positive number of seconds"
    )
    assert (
        raised(lambda: DeviceRunner(bins, hbm_bytes=0), OptionError, ValueError)
        == "hbm_bytes must be a positive byte count, not 0"
    )
    assert raised(
        lambda: RuntimeBinaries.from_paths("a7", "host_build_graph", "d", "i", "k"),
        OptionError,
        ValueError,
    ) == ("unknown arch 'a7' (known: a2a3, a5)")
    # An unknown arch asked of a manifest is the caller's mistake, not the manifest's.
    manifest = bins.manifest
    assert manifest is not None
    assert raised(
        lambda: RuntimeBinaries.from_manifest(manifest, arch="a9"), OptionError, ValueError
    ) == ("unknown arch 'a9' (known: a2a3, a5)")
    # A bool is not a device id: True passed the range check as device 1 and then named
    # the installed SO `simpler_inner_<fp>_True.so`.  Both runners refuse before any device.
    for isolate in (False, True):
        for device_id in (True, "0", 1.0):
            message = raised(
                lambda d=device_id, i=isolate: DeviceRunner(bins, d, isolate=i),
                OptionError,
                ValueError,
            )
            assert message == f"device_id={device_id!r}: must be an int"
        assert raised(
            lambda i=isolate: DeviceRunner(bins, hbm_bytes="1G", isolate=i),
            OptionError,
            ValueError,
        ) == ("hbm_bytes='1G': must be an int number of bytes, or None")
    assert raised(lambda: DeviceRunner(bins, op_timeout=True), OptionError, ValueError) == (
        "op_timeout=True: must be a positive number of seconds"
    )
    assert sim.get_device(1) is None and sim.get_device(0) is None
    monkeypatch.setenv("SIMPLER_SIM_OP_TIMEOUT", "soon")
    assert (
        raised(lambda: DeviceRunner(bins), OptionError, ValueError)
        == "SIMPLER_SIM_OP_TIMEOUT='soon' is not a number of seconds"
    )
    monkeypatch.delenv("SIMPLER_SIM_OP_TIMEOUT")
    ones = np.ones(N, np.float32)
    with DeviceRunner(bins) as runner:
        chain = runner.prepare(chain_graph(N))
        assert raised(lambda: chain(ones, ones, ones, block_dim=25), OptionError, ValueError) == (
            "block_dim=25: an a2a3 run takes 0 to 24 blocks (PLATFORM_MAX_BLOCKDIM; 0 means all)"
        )


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_finalized_runner_is_a_runner_closed_error_and_a_runtime_error(
    load_bins: Callable[..., RuntimeBinaries], isolate: bool
) -> None:
    runner = DeviceRunner(load_bins("a2a3"), isolate=isolate)
    runner.finalize()
    message = raised(lambda: runner.prepare(chain_graph(N)), RunnerClosedError, RuntimeError)
    assert message == "DeviceRunner was finalized; create a new one"
    with pytest.raises(DeviceError):
        runner.prepare(chain_graph(N))
