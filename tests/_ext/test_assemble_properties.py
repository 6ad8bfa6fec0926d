"""Random small problems give each ``assemble`` twin the answers of a naive model.

The model makes every decision by trying it and recomputing the whole total
from scratch (no running sum, no "header paid" flags), so it shares none of the
twins' bookkeeping. Both twins are checked against it and, errors included,
against each other. Other properties hold for any budget: the total is what the
choice costs and never more than the budget, and what is left over is too
little for any excluded item or (if finer levels never cost less) any finer level.
"""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._ext.conftest import import_twin

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def cost_of(problem, chosen):
    """Tokens for a choice: the chosen levels plus one header per group used."""
    costs, levels, groups, headers = problem[:4]
    picked = [i for i, level in enumerate(chosen) if level >= 0]
    used = {groups[i] for i in picked}
    return sum(costs[i * levels + chosen[i]] for i in picked) + sum(headers[g] for g in used)


def available(problem, item):
    costs, levels = problem[:2]
    return [j for j in range(levels) if costs[item * levels + j] >= 0]


def model(problem):
    """The three passes, each decision tried on a copy and kept if the recomputed total fits."""
    budget, coverage_budget = problem[4:]
    chosen = [-1] * len(problem[2])

    def try_level(item, level, cap):
        candidate = chosen.copy()
        candidate[item] = level
        if cost_of(problem, candidate) > cap:
            return False
        chosen[item] = level
        return True

    for item in range(len(chosen)):
        if available(problem, item):
            try_level(item, available(problem, item)[-1], coverage_budget)
    for item in [i for i, level in enumerate(chosen) if level >= 0]:
        for level in [j for j in available(problem, item) if j < chosen[item]]:
            if try_level(item, level, budget):
                break
    for item in [i for i, level in enumerate(chosen) if level < 0]:
        for level in available(problem, item):
            if try_level(item, level, budget):
                break
    return chosen, cost_of(problem, chosen)


SMALL_COSTS = st.integers(-3, 30)  # -1..-3: the level is unavailable
SMALL_HEADERS = st.integers(0, 12)
SMALL_BUDGETS = st.integers(0, 150)


@st.composite
def problems(draw, costs=SMALL_COSTS, headers=SMALL_HEADERS, budgets=SMALL_BUDGETS):
    """``(costs, levels, groups, group_costs, budget, coverage_budget)``, all consistent."""
    n = draw(st.integers(0, 9))
    levels = draw(st.integers(1, 4))
    n_groups = draw(st.integers(1, 4))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n))
    group_costs = draw(st.lists(headers, min_size=n_groups, max_size=n_groups))
    item_costs = draw(st.lists(costs, min_size=n * levels, max_size=n * levels))
    budget = draw(budgets)
    coverage_budget = draw(st.integers(0, budget) | st.sampled_from([0, budget]))
    return item_costs, levels, groups, group_costs, budget, coverage_budget


# Values right up to the int64 limits, where a summing C twin would overflow.
huge = st.integers(INT64_MAX - 40, INT64_MAX)
extreme_problems = problems(
    costs=st.integers(INT64_MIN, -1) | st.integers(0, 40) | huge,
    headers=st.integers(0, 40) | huge,
    budgets=st.integers(0, 100) | huge,
)


def as_buffers(problem):
    """``problem`` with its three sequences as ``array('q')``, which the C twin reads in place."""
    costs, levels, groups, group_costs, *budgets = problem
    return (array("q", costs), levels, array("q", groups), array("q", group_costs), *budgets)


@settings(max_examples=500, deadline=None)
@given(problem=problems())
def test_twin_chooses_what_the_model_chooses(assemble_module, problem):
    chosen, total = assemble_module.assemble(*as_buffers(problem))
    assert (list(chosen), total) == model(problem)


@settings(max_examples=300, deadline=None)
@given(problem=extreme_problems)
def test_twin_matches_the_model_at_the_int64_limits(assemble_module, problem):
    chosen, total = assemble_module.assemble(*as_buffers(problem))
    assert (list(chosen), total) == model(problem)


@settings(max_examples=300, deadline=None)
@given(problem=problems() | extreme_problems)
def test_total_is_the_cost_of_the_choice_and_never_exceeds_the_budget(assemble_module, problem):
    chosen, total = assemble_module.assemble(*problem)
    assert total == cost_of(problem, chosen)
    assert 0 <= total <= problem[4]
    assert all(level == -1 or level in available(problem, i) for i, level in enumerate(chosen))


def leftover(problem, chosen, total):
    """Tokens left, and for each item the header it would still have to pay."""
    _, _, groups, headers, budget, _ = problem
    paid = {groups[i] for i, level in enumerate(chosen) if level >= 0}
    due = [0 if groups[i] in paid else headers[groups[i]] for i in range(len(chosen))]
    return budget - total, due


def finer_never_cheaper(problem):
    """``problem`` with each item's available costs sorted so that finer levels cost more."""
    costs, levels, *rest = problem
    costs = list(costs)
    for item in range(len(costs) // levels):
        where = available(problem, item)
        descending = sorted((costs[item * levels + j] for j in where), reverse=True)
        for j, cost in zip(where, descending, strict=True):
            costs[item * levels + j] = cost
    return (costs, levels, *rest)


@settings(max_examples=300, deadline=None)
@given(problem=problems())
def test_leftover_fits_no_excluded_item(assemble_module, problem):
    costs, levels = problem[:2]
    chosen, total = assemble_module.assemble(*problem)
    left, due = leftover(problem, chosen, total)
    for item in (i for i, level in enumerate(chosen) if level < 0):
        assert all(due[item] + costs[item * levels + j] > left for j in available(problem, item))


@settings(max_examples=300, deadline=None)
@given(problem=problems().map(finer_never_cheaper))
def test_leftover_fits_no_finer_level_when_finer_levels_never_cost_less(assemble_module, problem):
    # With a cheaper finer level, an upgrade frees tokens that an earlier item,
    # already passed over, could have used: the rank order is kept regardless.
    costs, levels = problem[:2]
    chosen, total = assemble_module.assemble(*problem)
    left, _ = leftover(problem, chosen, total)
    for item, level in enumerate(chosen):
        row = costs[item * levels : (item + 1) * levels]
        finer = [j for j in available(problem, item) if j < level]
        assert all(row[j] - row[level] > left for j in finer)


@settings(max_examples=200, deadline=None)
@given(problem=problems())
def test_same_problem_gives_the_same_answer_whatever_the_container(assemble_module, problem):
    assemble = assemble_module.assemble
    buffers = as_buffers(problem)
    as_tuples = [tuple(arg) if isinstance(arg, list) else arg for arg in problem]
    first = assemble(*problem)
    assert assemble(*problem) == first
    assert assemble(*buffers) == first
    assert assemble(*as_tuples) == first
    assert buffers == as_buffers(problem)  # the buffers read in place are untouched


def outcome(assemble, args):
    """The result, or the type and message of the error raised."""
    try:
        return assemble(*args)
    except (ValueError, TypeError, OverflowError) as exc:
        return type(exc), str(exc)


# Any shape of input, consistent or not, so the twins' errors are compared too.
loose_ints = st.integers(-3, 12) | st.sampled_from([INT64_MAX, INT64_MIN, 2**63, 1.5])
loose_args = st.tuples(
    st.lists(loose_ints, max_size=12),
    st.integers(-1, 4) | st.sampled_from([127, 128, 2**64]),
    st.lists(st.integers(-1, 3), max_size=6),
    st.lists(st.integers(-2, 9), max_size=4),
    st.integers(-2, 60) | st.sampled_from([INT64_MAX, 2**63]),
    st.integers(-2, 60) | st.sampled_from([INT64_MAX, 2**63]),
)


@pytest.fixture(scope="module")
def twins():
    """``(compiled, pure)`` assemble; skipped or failed as conftest says if ``_c`` is missing."""
    return import_twin("assemble", "c").assemble, import_twin("assemble", "py").assemble


@settings(max_examples=500, deadline=None)
@given(args=problems() | loose_args)
def test_compiled_and_pure_twins_agree_on_results_and_errors(twins, args):
    compiled, pure = twins
    assert outcome(compiled, args) == outcome(pure, args)
