"""PageRank over the code graph: where relevance flows, on graphs small enough to reason about."""

from __future__ import annotations

import numpy as np
import pytest

from llmstruct.engine.graphrank import CodeGraph

# A path 0 - 1 - 2 - 3, and node 4 with no edge at all.
PATH = [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)]


def test_centrality_is_a_distribution_that_favours_the_middle_of_a_path():
    rank = CodeGraph(5, PATH).centrality()
    assert rank.sum() == pytest.approx(1.0, abs=1e-5)
    assert rank[1] > rank[0] and rank[2] > rank[3]
    assert rank[0] == pytest.approx(rank[3], rel=1e-5)  # the graph is symmetric
    assert rank[4] < rank[0]  # an isolated node keeps only what restarts there


def test_personalised_rank_falls_with_the_distance_from_the_seed():
    seeds = np.zeros(5)
    seeds[0] = 1.0
    rank = CodeGraph(5, PATH).personalised(seeds)
    assert rank[0] > rank[1] > rank[2] > rank[3] > 0
    assert rank[4] == 0.0
    assert rank.sum() == pytest.approx(1.0, abs=1e-5)


def test_edges_are_followed_both_ways():
    seeds = np.zeros(5)
    seeds[3] = 1.0  # the path's last node: only reaches the rest against the edges' direction
    rank = CodeGraph(5, PATH).personalised(seeds)
    assert rank[3] > rank[2] > rank[1] > rank[0] > 0


def test_repeated_and_heavier_edges_carry_more_of_the_walk():
    # 0 joins 1 twice (weight 1 + 1) and 2 once with weight 0.5.
    graph = CodeGraph(3, [(0, 1, 1.0), (0, 2, 0.5), (1, 0, 1.0)])
    seeds = np.array([1.0, 0.0, 0.0])
    rank = graph.personalised(seeds)
    assert rank[1] > 3 * rank[2] > 0


def test_no_seed_weight_gives_no_rank_and_a_graph_without_edges_is_uniform():
    graph = CodeGraph(4, [])
    assert graph.personalised(np.zeros(4)).tolist() == [0.0] * 4
    assert np.allclose(graph.centrality(), 0.25)
    assert CodeGraph(0, []).centrality().shape == (0,)
