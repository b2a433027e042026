"""The runtime's value objects keep the dataclass behaviour callers use, without dataclasses.

`Buffer`, `TaskSpec`, `RuntimeBinaries` and `DeviceProfile` are `__slots__`
records (issue 9: the runtime's first run loads no dataclass machinery):
immutable, with keyword or positional construction, a field-by-field repr,
value equality (a `Buffer` is equal only to itself, so a buffer of another
graph is never taken for one of this graph), `replace` and pickling.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from simpler_build.runtime import Buffer, Graph, GraphError, KernelId, RuntimeBinaries, TaskSpec
from simpler_build.runtime.sim.profiles import PROFILES, DeviceProfile


def test_buffer_is_immutable_and_equal_only_to_itself() -> None:
    g = Graph("g")
    a = g.input("a", (2, 3))
    assert repr(a) == "Buffer(name='a', shape=(2, 3), role='input')"
    assert (a.size, a.nbytes) == (6, 24)
    twin = Buffer("a", (2, 3), "input")
    assert a == a and a != twin and len({a, twin}) == 2
    with pytest.raises(AttributeError, match="frozen"):
        a.name = "b"  # type: ignore[misc]


def test_a_buffer_of_another_graph_is_refused_even_with_the_same_name() -> None:
    g, other = Graph("g"), Graph("other")
    a, b, out = g.input("a", 4), g.input("b", 4), g.output("out", 4)
    foreign = other.input("a", 4)
    with pytest.raises(GraphError, match="'a' belongs to another graph"):
        g.add(out, foreign, b)
    assert g.add(out, a, b).inputs == (a, b)


def test_taskspec_is_a_hashable_value() -> None:
    g = Graph()
    a, out = g.input("a", 4), g.output("out", 4)
    task = g.adds(out, a, 2)
    same = TaskSpec(kernel=KernelId.VEC_ADDS, inputs=(a,), output=out, scalar=2.0)
    assert task == same and hash(task) == hash(same) and task.block_dim == 0
    assert task != TaskSpec(KernelId.VEC_ADDS, (a,), out, 3.0)
    assert repr(task).startswith("TaskSpec(kernel=<KernelId.VEC_ADDS: 2>, inputs=(Buffer(")
    with pytest.raises(AttributeError, match="frozen"):
        task.scalar = 1.0  # type: ignore[misc]


def test_a_graph_pickles_with_its_buffers_shared() -> None:
    g = Graph("p")
    a, out = g.input("a", 4), g.output("out", 4)
    g.adds(out, a, 1.5)
    copy = pickle.loads(pickle.dumps(g))
    assert copy.tasks[0].inputs[0] is copy.buffers[0]
    assert copy.tasks[0].output is copy.buffers[1]
    assert copy.predecessors() == g.predecessors() and copy.tasks[0].scalar == 1.5


def test_runtime_binaries_compare_by_value_and_replace(
    load_bins: Callable[[str], RuntimeBinaries],
) -> None:
    bins = load_bins("a5")
    again = load_bins("a5")
    assert bins == again and bins is not again
    assert repr(bins).startswith("RuntimeBinaries(arch='a5', runtime='host_build_graph', ")
    other = bins.replace(runtime="other")
    assert other != bins and other.inner_so == bins.inner_so and bins.runtime == "host_build_graph"
    assert bins.as_dict()["fingerprints"] == bins.fingerprints
    with pytest.raises(AttributeError, match="frozen"):
        bins.arch = "a2a3"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(bins)  # its fingerprints are a dict, as with the frozen dataclass


def test_device_profiles_are_values_with_defaults() -> None:
    a5 = PROFILES["a5"]
    assert a5 == a5.replace() and hash(a5) == hash(a5.replace())
    assert (a5.dies_per_chip, a5.device_count) == (1, 16)
    assert a5.replace(dies_per_chip=2).dies_of(3) == (6, 7)
    assert isinstance(a5, DeviceProfile) and a5 != PROFILES["a2a3"]
    with pytest.raises(AttributeError, match="frozen"):
        a5.aic_cores = 1  # type: ignore[misc]
