"""Graph centrality: PageRank and personalised PageRank over the code graph.

Nodes are the struct's symbols and modules; undirected edges join a symbol to
its module, a method to its class, a caller to its callee, and a module to the
modules it imports. Relevance flows both ways along a call: the callers of a hit
matter to a question about it as much as its callees.

The transition matrix is built once per loaded struct, with numpy, as a CSR
matrix (``_ext.csr``: its product with a vector is a compiled loop; nothing here
loops over edges in Python). A personalised run is a few sparse matrix-vector
products: with a restart probability of 0.3, eight iterations leave under
0.7^8 ~ 6 % of the mass unsettled, ample for ranking.
"""

from __future__ import annotations

import numpy as np

from llmstruct._ext.csr import CSRMatrix

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
        # Undirected: each edge is stored both ways; repeated edges add up.
        sources = np.concatenate([rows, cols])
        targets = np.concatenate([cols, rows])
        both = np.concatenate([weights, weights]).astype(np.float64)
        # (float64 even without edges, where bincount answers int64)
        degree = np.bincount(sources, weights=both, minlength=size).astype(np.float64)
        self._dangling = degree == 0
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        # x_next = A @ (x / degree): a column-stochastic step over a symmetric graph,
        # stored row by row (a stable sort keeps each row's entries in edge order).
        order = np.argsort(sources, kind="stable")
        indptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(sources, minlength=size), out=indptr[1:])
        self._step = CSRMatrix(
            indptr, targets[order], (both * inverse[targets])[order], (size, size)
        )

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
            spread = self._step.matvec(rank)
            rank = (1 - restart) * spread + (restart + (1 - restart) * lost) * start
        return rank

    def centrality(self) -> np.ndarray:
        """Global PageRank (uniform restart)."""
        if self.size == 0:
            return np.zeros(0)
        return self.personalised(np.ones(self.size), GLOBAL_ITERATIONS, GLOBAL_RESTART)
