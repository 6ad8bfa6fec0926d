# cython: language_level=3
"""Token-budget context assembly: the compiled twin.

Same names, behaviour and errors as ``_assemble_py``, which is the specification
and carries the docstrings; the comments here only say how this twin is made
fast. The three passes run in one C function over typed memoryviews, declared
``nogil`` so that the compiler proves it touches no Python object. It is called
with the GIL held all the same: a call takes microseconds, and holding the GIL
keeps other threads from writing to the buffers while it reads them.
"""

cimport cython
from cpython cimport array
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

from array import array as _array

__all__ = ["MAX_LEVELS", "assemble"]

cdef enum:
    _MAX_LEVELS = 127  # ``chosen`` is an array('b')

MAX_LEVELS = _MAX_LEVELS

cdef object _INT64_MIN = -(2**63)
cdef object _INT64_MAX = 2**63 - 1

# ``chosen`` is cloned from this: one allocation, no per-item Python int.
cdef array.array _CHOSEN = _array("b")


cdef int64_t _as_int64(object value, str name) except? -1:
    # As the pure twin: __index__ only (a float is a TypeError, where a plain
    # ``int64_t`` argument would truncate it), and its OverflowError message.
    number = PyNumber_Index(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise OverflowError(f"{name} does not fit in a signed 64-bit integer")
    return number


cdef const int64_t[::1] _int64s(object values):
    # array('q'), array('l') and other contiguous signed 64-bit buffers are
    # read in place; anything else (a list, array('i'), a strided view) is
    # converted as the pure twin converts everything: ``array('q', values)``,
    # which raises its TypeError or OverflowError for a bad value. None is
    # refused there too (a memoryview argument would take it as empty).
    cdef const int64_t[::1] view
    if values is not None:
        try:
            view = values
        except (TypeError, ValueError, BufferError):
            pass
        else:
            return view
    return _array("q", values)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _check(const int64_t[::1] costs, int64_t levels, const int64_t[::1] groups,
                const int64_t[::1] group_costs, int64_t budget,
                int64_t coverage_budget) except -1:
    # Same checks, order and messages as ``_assemble_py._check``.
    cdef Py_ssize_t i, n = groups.shape[0], n_groups = group_costs.shape[0]
    if not 1 <= levels <= _MAX_LEVELS:
        raise ValueError(f"levels must be in 1..{_MAX_LEVELS}, got {levels}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if not 0 <= coverage_budget <= budget:
        raise ValueError(
            f"coverage_budget must be in 0..budget ({budget}), got {coverage_budget}")
    # levels <= 127, so n * levels overflows only for n past 2**56 items.
    if costs.shape[0] != n * levels:
        raise ValueError(
            f"costs has {costs.shape[0]} entries, expected len(groups) * levels = "
            f"{n} * {levels}")
    for i in range(n):
        if not 0 <= groups[i] < n_groups:
            raise ValueError(f"groups[{i}] = {groups[i]} is not an index into group_costs")
    for i in range(n_groups):
        if group_costs[i] < 0:
            raise ValueError(f"group_costs[{i}] = {group_costs[i]} is negative")
    return 0


# The hot data, all read or written in place, one item row at a time:
#   costs        int64[n * levels], row-major, read-only. Row i is costs[i*levels:
#                (i+1)*levels]; finding the coarsest (pass 1) or finest fitting
#                (passes 2, 3) level scans one row: O(levels), a cache line or two.
#   groups,      int64[n] and int64[n_groups], read-only: O(1) lookup of an
#   group_costs  item's group and that group's header.
#   paid         char[n_groups] scratch, zeroed: O(1) test and set of "header paid".
#   chosen       signed char[n], the result, -1 = excluded: O(1) read and write;
#                passes 2 and 3 scan it to find the included / excluded items.
# Three passes over the items: O(n * levels) time, O(n_groups) scratch memory.
# Arithmetic never overflows: every comparison is against ``room``, what is left
# of a budget (0 <= room <= budget), and costs and headers are compared with it
# one at a time (``header <= room and cost <= room - header``) instead of summed.
@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef int64_t _assemble(const int64_t[::1] costs, Py_ssize_t levels,
                       const int64_t[::1] groups, const int64_t[::1] group_costs,
                       signed char[::1] chosen, char* paid, int64_t budget,
                       int64_t coverage_budget) noexcept nogil:
    cdef Py_ssize_t i, j, row, current, n = groups.shape[0]
    cdef int64_t total = 0, room, header, cost, extra
    # Pass 1, coverage: coarsest available level, within coverage_budget.
    for i in range(n):
        row = i * levels
        j = levels - 1
        while j >= 0 and costs[row + j] < 0:
            j -= 1
        if j < 0:
            continue  # no level at all: never chosen
        header = 0 if paid[groups[i]] else group_costs[groups[i]]
        room = coverage_budget - total
        if header <= room and costs[row + j] <= room - header:
            total += header + costs[row + j]
            paid[groups[i]] = 1
            chosen[i] = <signed char>j
    # Pass 2, upgrade: finest level whose extra cost fits, finest first.
    for i in range(n):
        current = chosen[i]
        if current < 0:
            continue
        row = i * levels
        for j in range(current):
            cost = costs[row + j]
            if cost < 0:
                continue
            extra = cost - costs[row + current]  # both >= 0: cannot overflow
            if extra <= budget - total:
                total += extra
                chosen[i] = <signed char>j
                break
    # Pass 3, fill: finest level that fits, header included if the group is new.
    for i in range(n):
        if chosen[i] >= 0:
            continue
        row = i * levels
        header = 0 if paid[groups[i]] else group_costs[groups[i]]
        room = budget - total
        if header > room:
            continue
        for j in range(levels):
            cost = costs[row + j]
            if cost >= 0 and cost <= room - header:
                total += header + cost
                paid[groups[i]] = 1
                chosen[i] = <signed char>j
                break
    return total


def assemble(costs, levels, groups, group_costs, budget, coverage_budget):
    # Scalars, then buffers, then consistency: the order of the pure twin's errors.
    cdef int64_t n_levels = _as_int64(levels, "levels")
    cdef int64_t budget_ = _as_int64(budget, "budget")
    cdef int64_t coverage = _as_int64(coverage_budget, "coverage_budget")
    cdef const int64_t[::1] cost_view = _int64s(costs)
    cdef const int64_t[::1] group_view = _int64s(groups)
    cdef const int64_t[::1] header_view = _int64s(group_costs)
    _check(cost_view, n_levels, group_view, header_view, budget_, coverage)
    cdef Py_ssize_t n = group_view.shape[0], n_groups = header_view.shape[0]
    cdef array.array chosen = array.clone(_CHOSEN, n, zero=False)
    cdef signed char[::1] chosen_view = chosen
    if n:
        memset(chosen.data.as_schars, -1, n)
    # calloc(0) may return NULL; ask for at least one byte.
    cdef char* paid = <char*>calloc(n_groups if n_groups else 1, 1)
    if paid == NULL:
        raise MemoryError()
    # _assemble cannot raise, so nothing can skip the free.
    cdef int64_t total = _assemble(cost_view, n_levels, group_view, header_view, chosen_view,
                                   paid, budget_, coverage)
    free(paid)
    return chosen, total
