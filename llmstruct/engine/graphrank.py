"""Graph centrality: PageRank and personalised PageRank over the code graph.

Nodes are the struct's symbols and modules; undirected edges join a symbol to
its module, a method to its class, a caller to its callee, and a module to the
modules it imports. Relevance flows both ways along a call: the callers of a hit
matter to a question about it as much as its callees.

The transition matrix is built once per loaded struct as a scipy CSR matrix
(the maths is scipy's; nothing here loops over edges in Python). A personalised
run is a few sparse matrix-vector products: with a restart probability of 0.3,
eight iterations leave under 0.7^8 ~ 6 % of the mass unsettled, ample for ranking.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

RESTART = 0.3
ITERATIONS = 8
GLOBAL_ITERATIONS = 40
GLOBAL_RESTART = 0.15


class CodeGraph:
    def __init__(self, size: int, edges: list[tuple[int, int, float]]) -> None:
        self.size = size
        if edges:
            rows, cols, weights = (np.asarray(x) for x in zip(*edges, strict=True))
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
            weights = np.zeros(0, dtype=np.float64)
        adjacency = sparse.coo_matrix(
            (
                np.concatenate([weights, weights]),
                (np.concatenate([rows, cols]), np.concatenate([cols, rows])),
            ),
            shape=(size, size),
        ).tocsr()
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        self._dangling = degree == 0
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        # x_next = A @ (x / degree): a column-stochastic step over a symmetric graph.
        # float32 halves the memory traffic of the matrix-vector products.
        self._step = (adjacency @ sparse.diags(inverse)).tocsr().astype(np.float32)

    def personalised(
        self, seeds: np.ndarray, iterations: int = ITERATIONS, restart: float = RESTART
    ) -> np.ndarray:
        """Stationary visit probabilities of a walk that restarts at ``seeds``."""
        total = seeds.sum()
        if total <= 0 or self.size == 0:
            return np.zeros(self.size)
        start = (seeds / total).astype(np.float32)
        rank = start.copy()
        for _ in range(iterations):
            lost = rank[self._dangling].sum()  # walkers stuck on isolated nodes restart
            rank = (1 - restart) * (self._step @ rank) + (restart + (1 - restart) * lost) * start
        return rank

    def centrality(self) -> np.ndarray:
        """Global PageRank (uniform restart)."""
        if self.size == 0:
            return np.zeros(0)
        return self.personalised(np.ones(self.size), GLOBAL_ITERATIONS, GLOBAL_RESTART)
