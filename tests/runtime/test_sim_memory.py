"""The simulated HBM pool starts cheaply: no `bisect` module, no ctypes type per block size.

`runtime/sim/memory.py` writes its binary search out (`index_after`), so a new
process's first run does not load `bisect`'s C extension (issue 9).  The search
must answer exactly what `bisect.bisect_right` does, and the pool built on it must
keep answering range checks as a plain scan of its live blocks would.
"""

from __future__ import annotations

import bisect
import ctypes
import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build.runtime.sim import CannError
from simpler_build.runtime.sim.memory import SMALL_BLOCK_BYTES, HbmPool, index_after


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=30), st.integers(-60, 60))
def test_index_after_is_bisect_right(values: list[int], x: int) -> None:
    starts = sorted(values)
    assert index_after(starts, x) == bisect.bisect_right(starts, x)


#: A step: allocate `size` bytes, or free the live block number `pick` (modulo the count).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(1, 4096)),
        st.tuples(st.just("free"), st.integers(0, 1000)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(STEPS, st.data())
def test_range_checks_match_a_scan_of_the_live_blocks(
    steps: list[tuple[str, int]], data: st.DataObject
) -> None:
    pool = HbmPool(1 << 30)
    owner = object()
    live: dict[int, int] = {}  # addr -> size
    for kind, n in steps:
        if kind == "alloc":
            alloc = pool.allocate(n, owner, "t")
            live[alloc.addr] = n
        elif live:
            addr = sorted(live)[n % len(live)]
            pool.free(addr, owner)
            del live[addr]
        assert pool.in_use == sum(live.values())
    probes = [a + off for a, size in live.items() for off in (-1, 0, size - 1, size)]
    probes += data.draw(st.lists(st.integers(0, 1 << 48), max_size=5))
    for addr in probes:
        for count in (1, 2, 64):
            inside = [a for a, size in live.items() if a <= addr and addr + count <= a + size]
            if inside:
                assert pool.check_range(addr, count, "t").addr == inside[0]
            else:
                with pytest.raises(CannError):
                    pool.check_range(addr, count, "t")
    assert pool.release_owner(owner) == sum(live.values())
    assert pool.in_use == 0


def _char_array_types() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, type) and o.__name__.startswith("c_char_Array_")
    )


def test_small_blocks_build_no_ctypes_type_and_never_move() -> None:
    """A ctypes array type per distinct block size lives until exit and costs ~10 us to
    build; small blocks are bytearrays pinned by an export instead (issue 9)."""
    pool = HbmPool(1 << 30)
    owner = object()
    sizes = [SMALL_BLOCK_BYTES - 1 - 7 * k for k in range(40)]  # sizes no other test uses
    before = _char_array_types()
    blocks = [pool.allocate(size, owner, "t") for size in sizes]
    assert _char_array_types() == before
    for alloc in blocks:
        assert ctypes.string_at(alloc.addr, alloc.size) == bytes(alloc.size)  # zeroed
        view = memoryview(alloc.buffer)
        assert view.nbytes == alloc.size
        ctypes.memset(alloc.addr + alloc.size - 1, 0x5A, 1)  # the last byte is the block's
        assert view[-1] == 0x5A
        with pytest.raises(BufferError):  # pinned: the block can never move under a kernel
            alloc.buffer.extend(b"x")  # type: ignore[union-attr]
    big = pool.allocate(SMALL_BLOCK_BYTES, owner, "t")  # lazily zeroed pages: a ctypes array
    assert isinstance(big.buffer, ctypes.Array) and ctypes.sizeof(big.buffer) == big.size
    assert pool.release_owner(owner) == sum(sizes) + SMALL_BLOCK_BYTES
