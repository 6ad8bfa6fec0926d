"""Behaviour of ``assemble``, run over both twins by the ``assemble_module`` fixture."""

from __future__ import annotations

from array import array

import pytest

INT64_MAX = 2**63 - 1

# Four symbols in three files, levels full source / signature / name. Symbol 2
# has no full source; symbol 3 no signature.
EXAMPLE_COSTS = [
    100, 10, 2,   # 0: file 0
    50, 8, 1,     # 1: file 1
    -1, 6, 3,     # 2: file 0
    30, -1, 2,    # 3: file 2
]  # fmt: skip
EXAMPLE_GROUPS = [0, 1, 0, 2]
EXAMPLE_HEADERS = [5, 4, 3]


@pytest.fixture
def assemble(assemble_module):
    return assemble_module.assemble


def example(assemble, budget, coverage_budget):
    return assemble(EXAMPLE_COSTS, 3, EXAMPLE_GROUPS, EXAMPLE_HEADERS, budget, coverage_budget)


def test_returns_an_array_of_signed_bytes_and_an_int(assemble):
    chosen, total = example(assemble, 60, 20)
    assert type(chosen) is array and chosen.typecode == "b"
    assert type(total) is int


def test_upgrades_covered_items_in_rank_order_to_the_finest_level_that_fits(assemble):
    # Coverage (20): names, 5+2, 4+1, 3, 3+2 = 20. Upgrade (40 left): no full
    # source fits, signatures +8, +7, +3 do; symbol 3 has none and stays a name.
    assert example(assemble, 60, 20) == (array("b", [1, 1, 1, 2]), 38)


def test_without_coverage_fills_in_rank_order_at_the_finest_level_that_fits(assemble):
    # Fill only (20): 5+10, then 4+1 (the signature, 4+8, no longer fits); full.
    assert example(assemble, 20, 0) == (array("b", [1, 2, -1, -1]), 20)


def test_coverage_buys_breadth_before_depth(assemble):
    # Same budget as above, all of it for coverage: every symbol, by name.
    assert example(assemble, 20, 20) == (array("b", [2, 2, 2, 2]), 20)


def test_ample_budget_gives_every_item_its_finest_available_level(assemble):
    assert example(assemble, 200, 20) == (array("b", [0, 0, 1, 0]), 198)


def test_coverage_skips_an_item_that_does_not_fit_and_takes_a_later_smaller_one(assemble):
    costs = [1, 9, 1]
    chosen, total = assemble(costs, 1, [0, 0, 0], [0], 5, 5)
    assert (list(chosen), total) == ([0, -1, 0], 2)


def test_coverage_uses_the_coarsest_available_level(assemble):
    # The coarsest level is missing, so the next coarser one is used.
    chosen, total = assemble([40, 7, -1], 3, [0], [0], 7, 7)
    assert (list(chosen), total) == ([1], 7)


def test_upgrade_stays_put_when_no_finer_level_fits(assemble):
    chosen, total = assemble([50, 20, 1], 3, [0], [0], 10, 1)
    assert (list(chosen), total) == ([2], 1)


def test_upgrade_takes_a_finer_level_that_costs_less(assemble):
    # Odd costs, but the rule holds: the finest level whose extra cost fits.
    chosen, total = assemble([3, 9], 2, [0], [0], 9, 9)
    assert (list(chosen), total) == ([0], 3)


def test_fill_adds_excluded_items_after_the_upgrades(assemble):
    # Coverage (2) takes item 0 coarse, not item 1; upgrading item 0 to 10
    # leaves 2, which the fill spends on item 1 coarse (its finest, 5, is too big).
    chosen, total = assemble([10, 1, 5, 2], 2, [0, 0], [0], 12, 2)
    assert (list(chosen), total) == ([0, 1], 12)


def test_group_header_is_paid_once_with_the_first_chosen_item(assemble):
    chosen, total = assemble([1, 1, 1], 1, [0, 0, 1], [10, 100], 50, 0)
    assert (list(chosen), total) == ([0, 0, -1], 12)


def test_header_counts_against_an_item_even_when_its_cost_alone_would_fit(assemble):
    chosen, total = assemble([5], 1, [0], [6], 10, 10)
    assert (list(chosen), total) == ([-1], 0)


def test_item_larger_than_the_budget_is_skipped_not_truncated(assemble):
    chosen, total = assemble([1000, 4], 1, [0, 0], [1], 10, 10)
    assert (list(chosen), total) == ([-1, 0], 5)


def test_item_without_any_available_level_is_never_chosen(assemble):
    chosen, total = assemble([-1, -1, -5, -1, 2, 1], 3, [0, 1], [0, 0], 10**6, 10**6)
    assert (list(chosen), total) == ([-1, 1], 2)


def test_no_items_give_an_empty_choice(assemble):
    assert assemble([], 4, [], [], 100, 50) == (array("b"), 0)
    assert assemble(array("q"), 1, array("q"), array("q", [3]), 0, 0) == (array("b"), 0)


def test_budget_zero_chooses_nothing_that_costs_anything(assemble):
    chosen, total = assemble([3, 1, 2, 1], 2, [0, 1], [0, 0], 0, 0)
    assert (list(chosen), total) == ([-1, -1], 0)


def test_budget_zero_still_includes_free_items_with_free_headers(assemble):
    # "Fits" is <=, with no special case: what costs nothing always fits.
    chosen, total = assemble([3, 0, 0, 0, 0, 0], 2, [0, 1, 0], [0, 1], 0, 0)
    assert (list(chosen), total) == ([1, -1, 0], 0)


def test_total_can_reach_the_budget_exactly(assemble):
    chosen, total = assemble([7, 3], 1, [0, 0], [0], 10, 0)
    assert (list(chosen), total) == ([0, 0], 10)


def test_costs_near_the_int64_limit_do_not_overflow(assemble):
    big = INT64_MAX
    # Header + cost would wrap in C if summed; compared one at a time, it just does not fit.
    assert assemble([big], 1, [0], [big], big, big) == (array("b", [-1]), 0)
    assert assemble([big, 0], 2, [0], [0], big, 0) == (array("b", [0]), big)
    chosen, total = assemble([big, 1, big - 1, 1], 2, [0, 0], [0], big, 1)
    assert (list(chosen), total) == ([0, -1], big)


def test_accepts_the_most_levels_an_array_of_bytes_can_index(assemble_module):
    levels = assemble_module.MAX_LEVELS
    costs = [-1] * (levels - 1) + [4]
    chosen, total = assemble_module.assemble(costs, levels, [0], [1], 5, 5)
    assert (list(chosen), total) == ([levels - 1], 5)


def strided(values: array) -> memoryview:
    """A non-contiguous view of ``values``: every other item of a doubled copy."""
    doubled = array(values.typecode, [0]) * (2 * len(values))
    doubled[::2] = values
    return memoryview(doubled)[::2]


@pytest.mark.parametrize(
    "convert",
    [
        list,
        tuple,
        lambda values: array("q", values),
        lambda values: array("l", values),
        lambda values: array("i", values),
        lambda values: memoryview(array("q", values)),
        lambda values: strided(array("q", values)),
    ],
    ids=["list", "tuple", "array-q", "array-l", "array-i", "memoryview", "strided-memoryview"],
)
def test_accepts_any_sequence_or_buffer_of_integers(assemble, convert):
    result = assemble(
        convert(EXAMPLE_COSTS), 3, convert(EXAMPLE_GROUPS), convert(EXAMPLE_HEADERS), 60, 20
    )
    assert result == (array("b", [1, 1, 1, 2]), 38)


def test_accepts_keyword_arguments(assemble):
    result = assemble(
        costs=EXAMPLE_COSTS, levels=3, groups=EXAMPLE_GROUPS, group_costs=EXAMPLE_HEADERS,
        budget=60, coverage_budget=20,
    )  # fmt: skip
    assert result == (array("b", [1, 1, 1, 2]), 38)


def test_does_not_modify_its_inputs(assemble):
    costs, groups, headers = map(array, "qqq", (EXAMPLE_COSTS, EXAMPLE_GROUPS, EXAMPLE_HEADERS))
    assemble(costs, 3, groups, headers, 60, 20)
    assert (costs.tolist(), groups.tolist(), headers.tolist()) == (
        EXAMPLE_COSTS, EXAMPLE_GROUPS, EXAMPLE_HEADERS,
    )  # fmt: skip


def test_same_inputs_give_the_same_result_every_time(assemble):
    first = example(assemble, 60, 10)
    assert all(example(assemble, 60, 10) == first for _ in range(5))


def test_results_are_fresh_arrays(assemble):
    first, _ = example(assemble, 60, 20)
    first[0] = 99
    assert example(assemble, 60, 20)[0][0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 2], 1, [0], [0], 5, 0), r"costs has 2 entries, expected len\(groups\) \* levels"),
        (([1], 2, [0], [0], 5, 0), r"costs has 1 entries, expected len\(groups\) \* levels"),
        (([], 1, [0], [0], 5, 0), r"costs has 0 entries"),
        (([1], 1, [0], [0], -1, 0), r"budget must be >= 0, got -1"),
        (([1], 1, [0], [0], 5, 6), r"coverage_budget must be in 0..budget \(5\), got 6"),
        (([1], 1, [0], [0], 5, -1), r"coverage_budget must be in 0..budget \(5\), got -1"),
        (([1], 0, [0], [0], 5, 0), r"levels must be in 1..127, got 0"),
        (([1] * 128, 128, [0], [0], 5, 0), r"levels must be in 1..127, got 128"),
        (([1], 1, [1], [0], 5, 0), r"groups\[0\] = 1 is not an index into group_costs"),
        (([1, 1], 1, [0, -1], [0], 5, 0), r"groups\[1\] = -1 is not an index into group_costs"),
        (([1], 1, [0], [], 5, 0), r"groups\[0\] = 0 is not an index into group_costs"),
        (([1], 1, [0], [0, -2], 5, 0), r"group_costs\[1\] = -2 is negative"),
    ],
)
def test_rejects_inconsistent_inputs_with_value_error(assemble, args, message):
    with pytest.raises(ValueError, match=message):
        assemble(*args)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (([1.5], 1, [0], [0], 5, 0), TypeError),
        (([1], 1.0, [0], [0], 5, 0), TypeError),
        (([1], 1, [0], [0], 5.0, 0), TypeError),
        (([1], 1, [0], [0], "5", 0), TypeError),
        ((None, 1, [0], [0], 5, 0), TypeError),
        (([1], 1, None, [0], 5, 0), TypeError),
        (([2**63], 1, [0], [0], 5, 0), OverflowError),
        (([1], 1, [0], [0], 2**63, 0), OverflowError),
        (([1], -(2**63) - 1, [0], [0], 5, 0), OverflowError),
    ],
)
def test_rejects_values_that_are_not_64_bit_integers(assemble, args, error):
    with pytest.raises(error):
        assemble(*args)
