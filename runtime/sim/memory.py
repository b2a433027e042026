"""Simulated HBM: real host memory, counted against a capacity.

Every allocation is a ctypes buffer whose host address *is* the device
address, so the real AICPU runtime SOs and AICore kernels compute on it
directly.  The pool only counts bytes, records which owner (context) holds
each block, and checks that device ranges handed to copies lie inside one
live allocation -- the bug a stale pointer would otherwise hide.  A request
the host cannot back is the device's 207001, never a `MemoryError` or an
OOM kill later (`host.py` says how that is judged).
"""

from __future__ import annotations

import _thread
import ctypes

from . import host
from .errors import ACL_ERROR_RT_MEMORY_ALLOCATION, ACL_ERROR_RT_PARAM_INVALID, CannError


class Allocation:
    """One live block (a plain slotted class: no dataclass machinery on the import path)."""

    __slots__ = ("addr", "buffer", "owner", "size", "tag")

    def __init__(
        self,
        addr: int,
        size: int,
        owner: object,
        tag: str,
        buffer: HostBlock | ctypes.Array[ctypes.c_char],
    ) -> None:
        self.addr, self.size, self.owner, self.tag = addr, size, owner, tag
        self.buffer = buffer  # keeps the memory alive; its buffer is the block's `size` bytes

    def __repr__(self) -> str:
        return f"Allocation({self.addr:#x}, {self.size}, tag={self.tag!r})"


class HbmPool:
    """Byte accounting and address lookup for one device's HBM."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._lock = _thread.allocate_lock()
        self._allocs: dict[int, Allocation] = {}
        self._starts: list[int] = []

    def allocate(self, size: int, owner: object, tag: str, call: str = "rtMalloc") -> Allocation:
        """Reserve `size` bytes; 207001 when the capacity would be exceeded."""
        if size <= 0:
            raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"size {size} must be positive")
        with self._lock:
            if self.in_use + size > self.capacity:
                raise CannError(
                    ACL_ERROR_RT_MEMORY_ALLOCATION,
                    call,
                    f"{tag}: {size} bytes requested, {self.capacity - self.in_use} of "
                    f"{self.capacity} free",
                )
            buf = _host_buffer(size, tag, call)
            alloc = Allocation(_address(buf), size, owner, tag, buf)
            # Every call first, then the updates: a Ctrl-C in a call leaves the pool as it was.
            at = index_after(self._starts, alloc.addr)
            self._allocs[alloc.addr] = alloc
            self._starts.insert(at, alloc.addr)
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
            return alloc

    def free(self, addr: int, owner: object | None = None, call: str = "rtFree") -> None:
        """Release the block starting at `addr` (owned by `owner` when given)."""
        with self._lock:
            alloc = self._allocs.get(addr)
            if alloc is None or (owner is not None and alloc.owner is not owner):
                raise CannError(ACL_ERROR_RT_PARAM_INVALID, call, f"{addr:#x} is not a live block")
            self._drop(alloc)

    def release_owner(self, owner: object) -> int:
        """Free every block of `owner` (context teardown); returns the bytes released."""
        with self._lock:
            mine = [a for a in self._allocs.values() if a.owner is owner]
            for alloc in mine:
                self._drop(alloc)
            return sum(a.size for a in mine)

    def owned_bytes(self, owner: object) -> int:
        with self._lock:
            return sum(a.size for a in self._allocs.values() if a.owner is owner)

    def check_range(self, addr: int, count: int, call: str) -> Allocation:
        """The live allocation holding [addr, addr + count); 107000 otherwise."""
        with self._lock:
            i = index_after(self._starts, addr) - 1
            if i >= 0:
                alloc = self._allocs[self._starts[i]]
                if addr + count <= alloc.addr + alloc.size:
                    return alloc
        raise CannError(
            ACL_ERROR_RT_PARAM_INVALID,
            call,
            f"device range {addr:#x}+{count} is not inside one live allocation",
        )

    def _drop(self, alloc: Allocation) -> None:
        # The search first: a Ctrl-C in it leaves the block allocated, to be freed again.
        at = index_after(self._starts, alloc.addr) - 1  # starts are unique
        del self._allocs[alloc.addr]
        self._starts.pop(at)
        self.in_use -= alloc.size


def index_after(starts: list[int], addr: int) -> int:
    """Where `addr` goes in the sorted `starts`, after any equal entry: `bisect.bisect_right`.

    Written out because importing `bisect` loads its C extension, a shared
    object of its own, on every new process's first run; the pool holds a few
    dozen blocks, and copies on the launch path check their ranges once per
    prepared graph, not per run (tests/runtime/test_sim_memory.py compares the two).
    """
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if addr < starts[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


class HostBlock(bytearray):
    """A small block of simulated HBM: zeroed bytes whose address never moves.

    `pin`, a ctypes view of the first byte, holds an export of the buffer, which
    a bytearray never moves or resizes while exported.  Why not `(c_char * size)()`
    for these too: ctypes builds (and keeps until exit) a new array type for
    every distinct size, about 10 us each, and a first run allocates a dozen
    blocks of different sizes.
    """

    __slots__ = ("pin",)
    pin: ctypes.c_char


#: Blocks below this are HostBlocks; larger ones are ctypes arrays, whose calloc'ed
#: pages the host provides lazily (a bytearray writes every byte to zero it).
SMALL_BLOCK_BYTES = 1 << 20


def _host_buffer(size: int, tag: str, call: str) -> HostBlock | ctypes.Array[ctypes.c_char]:
    """`size` zeroed bytes of host memory; 207001 when the host cannot or should not give them."""
    why = host.refusal(size)
    if why is not None:
        raise CannError(ACL_ERROR_RT_MEMORY_ALLOCATION, call, f"{tag}: {why}")
    try:
        if size < SMALL_BLOCK_BYTES:
            block = HostBlock(size)
            block.pin = ctypes.c_char.from_buffer(block)
            return block
        return (ctypes.c_char * size)()
    except (MemoryError, OverflowError):
        raise CannError(
            ACL_ERROR_RT_MEMORY_ALLOCATION, call, f"{tag}: the host could not allocate {size} bytes"
        ) from None


def _address(buf: HostBlock | ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf.pin if isinstance(buf, HostBlock) else buf)
