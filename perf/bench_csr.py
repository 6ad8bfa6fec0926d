"""Benchmark the CSR matrix-vector product of the code graph: ``--impl c`` or ``--impl py``.

Both twins in one suite (``csr_matvec[c]``, ``csr_matvec[py]``), and scipy's
CSR product on the same matrix (``csr_matvec[scipy]``) when scipy is installed:
the twins replaced it, and this is the side-by-side check that the compiled
one is as fast::

    python perf/bench_csr.py -o /tmp/csr.json

The matrix has the shape of the whole standard library's code graph as
``engine/graphrank.py`` builds it (59,385 nodes, ~304,000 stored values; a
personalised PageRank takes 8 products per uncached FOCUSED context): a random
symmetric graph of that size, column-normalised, fixed seed. Time per product.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyperf
from twins import twin_runner, twins

# Bench this checkout and its in-place build, whatever llmstruct is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20261128
NODES = 59_385
EDGES = 152_000  # each stored both ways


def graph_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of a column-stochastic random symmetric graph."""
    rng = np.random.default_rng(SEED)
    ends = rng.integers(0, NODES, size=(2, EDGES))
    sources = np.concatenate([ends[0], ends[1]])
    targets = np.concatenate([ends[1], ends[0]])
    degree = np.bincount(sources, minlength=NODES).astype(np.float64)
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    order = np.argsort(sources, kind="stable")
    indptr = np.zeros(NODES + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=NODES), out=indptr[1:])
    return indptr, targets[order], inverse[targets][order].astype(np.float32)


def time_products(loops: int, matvec, x: np.ndarray) -> float:
    t0 = pyperf.perf_counter()
    for _ in range(loops):
        matvec(x)
    return pyperf.perf_counter() - t0


def main() -> None:
    runner, args = twin_runner("csr")
    indptr, indices, data = graph_arrays()
    x = np.full(NODES, 1.0 / NODES, dtype=np.float32)
    runner.metadata["csr_matrix"] = f"{NODES} x {NODES}, {len(data)} stored values"
    for module, suffix in twins("csr", args):
        matrix = module.CSRMatrix(indptr, indices, data, (NODES, NODES))
        runner.bench_time_func("csr_matvec" + suffix, time_products, matrix.matvec, x)
    try:
        from scipy import sparse
    except ImportError:
        return  # the reference is optional: llmstruct does not depend on scipy
    reference = sparse.csr_matrix((data, indices, indptr), shape=(NODES, NODES))
    runner.bench_time_func("csr_matvec[scipy]", time_products, reference.__matmul__, x)


if __name__ == "__main__":
    main()
