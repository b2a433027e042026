"""The sample graphs the example, the benchmarks and the tests share.

One definition each, with the NumPy reference it must agree with, so that
"correct" means the same thing everywhere.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph


def vector_add_graph(n: int, name: str = "vector_add") -> Graph:
    """out = a + b over n float32 elements."""
    g = Graph(name)
    a, b, out = g.input("a", n), g.input("b", n), g.output("out", n)
    g.add(out, a, b)
    return g


def chain_graph(n: int, s: float = 2.5, name: str = "chain") -> Graph:
    """out = (a + b) * c + s over n float32 elements: three dependent tasks."""
    g = Graph(name)
    a, b, c = g.input("a", n), g.input("b", n), g.input("c", n)
    t, u, out = g.temp("t", n), g.temp("u", n), g.output("out", n)
    g.add(t, a, b)
    g.mul(u, t, c)
    g.adds(out, u, s)
    return g


def chain_reference(a: np.ndarray, b: np.ndarray, c: np.ndarray, s: float = 2.5) -> np.ndarray:
    """What chain_graph computes, in float32 like the kernels."""
    out: np.ndarray = ((a + b) * c + np.float32(s)).astype(np.float32)
    return out
