"""Token-budget context assembly: the pure-Python twin.

This module is the readable specification; ``_assemble_c.pyx`` implements the
same ``assemble`` (names, behaviour, errors) compiled, and ``assemble.py`` picks
one.

The problem: the context engine has ranked the symbols of a repository (index 0
is the most relevant) and can show each one at several levels of detail, from
finest (level 0, e.g. the full source) to coarsest (e.g. the name only). Each
level costs some tokens; a symbol's file costs a header, paid once, with its
first shown symbol. ``assemble`` picks a level (or none) for every symbol so
that the whole context fits the token budget.

Strategy: breadth first, then depth. Three greedy passes, each in rank order:

1. **Coverage.** Include each item at its *coarsest* available level if that
   cost, plus its group's header when the group is not yet paid for, keeps the
   running total within ``coverage_budget``. An item that does not fit is
   skipped; later, cheaper items may still fit.
2. **Upgrade.** Over the items the coverage pass included, move each to the
   *finest* available level whose extra cost (its cost minus the current one)
   keeps the total within ``budget``: levels are tried from the finest towards
   the current one, and the first that fits wins. If none fits, the item stays.
3. **Fill.** Over the items still excluded, include each at the *finest*
   available level that fits the rest of ``budget`` (its header included when
   its group is new).

So the best-ranked items get the most detail, after a share of the budget has
made sure the map reaches far down the ranking. Determinism: every pass visits
items in rank order and levels in level order, and takes the first candidate
that fits, so there is never a tie to break. Equal inputs give equal outputs,
in both twins, on every platform.

Invariants of the result ``(chosen, total)``:

* ``total`` is the sum of the chosen levels' costs plus the header of every
  group with at least one chosen item, and ``0 <= total <= budget`` always.
* No excluded item could still be added at any level, and no included item
  could still be moved to a finer level, within the tokens left over.

Inputs and edge cases:

* A negative cost means that level does not exist for that item; an item with
  no level at all is never chosen. Item costs and headers may be 0.
* "Fits" is ``<=``, so anything that costs nothing is always included, even
  with ``budget == 0``: an item with a zero-cost level whose header is 0 (or
  already paid). This keeps one rule with no special case; a caller that wants
  nothing at budget 0 should not call.
* An item larger than the budget is skipped, never truncated.
* Values are signed 64-bit integers; the compiled twin's arithmetic cannot
  overflow for any of them (it compares against what is left, never sums past
  the budget), and this twin, with Python's exact integers, gives the same
  answers.

Cost: O(n * levels) time for n items, plus O(groups) memory for the
"header paid" flags.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable
from typing import Any, SupportsIndex

__all__ = ["MAX_LEVELS", "assemble"]

#: The most levels an item may have: ``chosen`` is an ``array('b')``.
MAX_LEVELS = 127

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _as_int64(value: SupportsIndex, name: str) -> int:
    """Return ``value`` as an int that fits a C ``int64_t``, as the compiled twin does.

    Floats raise TypeError; ints beyond 64 bits raise OverflowError.
    """
    number = operator.index(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise OverflowError(f"{name} does not fit in a signed 64-bit integer")
    return number


def _int64s(values: Iterable[int]) -> array[int]:
    """``values`` as an ``array('q')``: any sequence of ints that fit 64 bits.

    As ``array()`` does, ``bytes`` and ``bytearray`` are read as raw native int64s.
    """
    return array("q", values)


def _check(
    costs: array[int], levels: int, groups: array[int], group_costs: array[int],
    budget: int, coverage_budget: int,
) -> None:  # fmt: skip
    """Raise ValueError unless the inputs describe one consistent assembly problem."""
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be in 1..{MAX_LEVELS}, got {levels}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if not 0 <= coverage_budget <= budget:
        raise ValueError(f"coverage_budget must be in 0..budget ({budget}), got {coverage_budget}")
    if len(costs) != len(groups) * levels:
        raise ValueError(
            f"costs has {len(costs)} entries, expected len(groups) * levels = "
            f"{len(groups)} * {levels}"
        )
    for i, group in enumerate(groups):
        if not 0 <= group < len(group_costs):
            raise ValueError(f"groups[{i}] = {group} is not an index into group_costs")
    for group, header in enumerate(group_costs):
        if header < 0:
            raise ValueError(f"group_costs[{group}] = {header} is negative")


class _Assembly:
    """The choice being built: levels chosen so far, headers paid and the running total."""

    __slots__ = ("costs", "levels", "groups", "group_costs", "chosen", "paid", "total")

    def __init__(
        self, costs: array[int], levels: int, groups: array[int], group_costs: array[int]
    ) -> None:
        self.costs = costs
        self.levels = levels
        self.groups = groups
        self.group_costs = group_costs
        self.chosen = array("b", [-1]) * len(groups)
        self.paid = [False] * len(group_costs)
        self.total = 0

    def cost(self, item: int, level: int) -> int:
        """Tokens for ``item`` at ``level``; negative if that level is unavailable."""
        return self.costs[item * self.levels + level]

    def header(self, item: int) -> int:
        """Tokens that including ``item`` adds for its group: its header, unless already paid."""
        group = self.groups[item]
        return 0 if self.paid[group] else self.group_costs[group]

    def available(self, item: int) -> list[int]:
        """The levels ``item`` has, finest first."""
        return [level for level in range(self.levels) if self.cost(item, level) >= 0]

    def include(self, item: int, level: int) -> None:
        """Choose ``level`` for the excluded ``item``, paying its header if due."""
        self.total += self.header(item) + self.cost(item, level)
        self.paid[self.groups[item]] = True
        self.chosen[item] = level

    def cover(self, coverage_budget: int) -> None:
        """Pass 1: each item at its coarsest level, if it fits within ``coverage_budget``."""
        for item in range(len(self.chosen)):
            levels = self.available(item)
            if levels:
                coarsest = levels[-1]
                if self.header(item) + self.cost(item, coarsest) <= coverage_budget - self.total:
                    self.include(item, coarsest)

    def upgrade(self, budget: int) -> None:
        """Pass 2: each included item to its finest level whose extra cost fits ``budget``."""
        for item, current in enumerate(self.chosen):
            if current < 0:
                continue
            for level in self.available(item):
                if level >= current:
                    break  # no finer level fits: the item stays where it is
                extra = self.cost(item, level) - self.cost(item, current)
                if extra <= budget - self.total:
                    self.total += extra
                    self.chosen[item] = level
                    break

    def fill(self, budget: int) -> None:
        """Pass 3: each excluded item at its finest level that fits what is left of ``budget``."""
        for item, current in enumerate(self.chosen):
            if current >= 0:
                continue
            for level in self.available(item):
                if self.header(item) + self.cost(item, level) <= budget - self.total:
                    self.include(item, level)
                    break


def assemble(
    costs: Any,
    levels: SupportsIndex,
    groups: Any,
    group_costs: Any,
    budget: SupportsIndex,
    coverage_budget: SupportsIndex,
) -> tuple[array[int], int]:
    """Choose a level of detail for each ranked item so that the total fits ``budget``.

    ``costs`` holds ``len(groups) * levels`` token costs, row-major: item ``i``
    at level ``j`` costs ``costs[i * levels + j]``; levels run from finest
    (0) to coarsest (``levels - 1``), and a negative cost marks a level the
    item does not have. Items are in rank order, most relevant first.
    ``groups[i]`` is the index in ``group_costs`` of item ``i``'s group (its
    file), whose header cost is paid once, with the group's first chosen item.
    The coverage pass may spend up to ``coverage_budget`` (``0 <=
    coverage_budget <= budget``); the module docstring gives the three passes.

    The three buffers may be ``array('q')`` (what the compiled twin reads
    without copying), any other buffer or sequence of ints, e.g. a list.

    Returns ``(chosen, total)``: ``chosen`` is an ``array('b')`` with, for each
    item, the level chosen or -1 if it is left out; ``total`` is the tokens
    spent, chosen costs plus headers, never more than ``budget``.

    Raises ValueError if ``levels`` is not in 1..127, ``budget`` is negative,
    ``coverage_budget`` is outside 0..budget, ``costs`` does not have
    ``len(groups) * levels`` entries, a group index is outside
    ``group_costs``, or a header cost is negative; TypeError for a non-integer
    value and OverflowError for one that does not fit 64 bits.
    """
    # Scalars first, then buffers, then consistency: the compiled twin converts
    # its typed arguments before its body runs, so errors come in this order.
    levels = _as_int64(levels, "levels")
    budget = _as_int64(budget, "budget")
    coverage_budget = _as_int64(coverage_budget, "coverage_budget")
    costs, groups, group_costs = _int64s(costs), _int64s(groups), _int64s(group_costs)
    _check(costs, levels, groups, group_costs, budget, coverage_budget)
    assembly = _Assembly(costs, levels, groups, group_costs)
    assembly.cover(coverage_budget)
    assembly.upgrade(budget)
    assembly.fill(budget)
    return assembly.chosen, assembly.total
