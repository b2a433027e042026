"""Shared memory between a WorkerRunner and its worker: one anonymous memfd per prepared graph.

The region has no name in /dev/shm, so nothing can leak there: the parent
creates it with `memfd_create`, hands the descriptor to the worker over the
control socket (SCM_RIGHTS), and each side maps it.  The memory is freed when
the last mapping and descriptor go -- when both processes have closed it, or
have died.  Inputs sit first, then outputs, each aligned to 64 bytes; both
sides compute the same layout from the graph.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from dataclasses import dataclass

import numpy as np

from .graph import Buffer, Graph

ALIGN = 64
#: The name a region's descriptor carries (visible in /proc/<pid>/fd as `memfd:<name>`).
MEMFD_NAME = "simpler-worker"


def layout(graph: Graph) -> tuple[dict[str, int], int]:
    """Byte offset of each input and output buffer in the region, and the region's size."""
    offsets: dict[str, int] = {}
    end = 0
    for buf in (*graph.inputs, *graph.outputs):
        offsets[buf.name] = end
        end += -(-buf.nbytes // ALIGN) * ALIGN
    return offsets, max(end, ALIGN)


@dataclass
class Region:
    """One mapping of a graph's region, with float32 views of its inputs and outputs."""

    mm: mmap.mmap
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]

    @classmethod
    def create(cls, graph: Graph) -> tuple[Region, int]:
        """A new region for `graph` and its descriptor (the caller sends, then closes it)."""
        _, size = layout(graph)
        fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            return cls.map(graph, fd), fd
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def map(cls, graph: Graph, fd: int) -> Region:
        """Map the region behind `fd` (the descriptor stays the caller's to close)."""
        offsets, size = layout(graph)
        mm = mmap.mmap(fd, size)

        def view(buf: Buffer) -> np.ndarray:
            return np.frombuffer(mm, np.float32, buf.size, offsets[buf.name]).reshape(buf.shape)

        return cls(mm, [view(b) for b in graph.inputs], [view(b) for b in graph.outputs])

    # Copies go through these methods, so that no caller's frame (kept alive by a traceback)
    # holds a view: a view still exported when the region closes keeps it mapped.
    def write_inputs(self, arrays: list[np.ndarray]) -> None:
        for view, arr in zip(self.inputs, arrays, strict=True):
            np.copyto(view, arr)

    def write_outputs(self, arrays: tuple[np.ndarray, ...]) -> None:
        for view, arr in zip(self.outputs, arrays, strict=True):
            np.copyto(view, arr)

    def read_outputs(self) -> tuple[np.ndarray, ...]:
        """Copies of the outputs (the region is overwritten by the next run)."""
        return tuple(np.array(view) for view in self.outputs)

    def close(self) -> None:
        """Drop the views, then the mapping (a view still exported elsewhere keeps it mapped)."""
        self.inputs = []
        self.outputs = []
        # Someone still holding a view keeps the mapping until it goes; the memfd is closed.
        with contextlib.suppress(BufferError):
            self.mm.close()
