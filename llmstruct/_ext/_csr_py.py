"""A sparse matrix in CSR form and its product with a vector: the pure-Python twin.

This module is the specification; ``_csr_c.pyx`` implements the same ``CSRMatrix``
(names, behaviour, errors) compiled, and ``csr.py`` picks one. It is the one
piece of sparse linear algebra the code graph needs (``engine/graphrank.py``:
a personalised PageRank is a few matrix-vector products). scipy.sparse did it
before, but importing it costs ~24 MiB of memory and ~270 modules per process
(it pulls in Cython's shadow module, csv, email, difflib, ...), for one loop.

``CSRMatrix(indptr, indices, data, shape)`` checks and copies its arrays once:

* ``indptr``: ``rows + 1`` non-decreasing offsets from 0 to ``len(indices)``;
* ``indices``: the column of each stored value, each in ``[0, columns)``;
* ``data``: the stored values, one per index (duplicates of a position add up);
* ``shape``: ``(rows, columns)``, non-negative and below 2**31.

Anything else is a ``ValueError``, as is a vector ``matvec`` cannot use. The
arrays are private read-only copies, so a caller changing its own arrays
afterwards cannot change the matrix (nor, for the compiled twin, make it read
out of bounds). ``matvec(x)`` takes a vector of ``columns`` numbers and
returns a new float32 array of ``rows``: ``out[i] = sum(data[k] * x[indices[k]]
for k in range(indptr[i], indptr[i + 1]))``. Values are stored as float32 (the
graph's ranks need no more, and half the bytes is half the memory traffic);
products and sums are taken in float64 and rounded to float32 once per row. The
twins add a row's products in the same order (left to right) for rows of up to 8
values, so they agree to the bit there; in longer rows numpy may pair the
additions, and the twins agree to float64 rounding only.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

__all__ = ["CSRMatrix", "checked_arrays", "checked_vector"]

_MAX_DIMENSION = 2**31 - 1  # indices are stored as int32


def checked_arrays(
    indptr: Any, indices: Any, data: Any, shape: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``(indptr, indices, data, rows, columns)`` as private read-only arrays, or ValueError."""
    try:
        rows, columns = (operator.index(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (rows, columns), not {shape!r}") from None
    if not (0 <= rows <= _MAX_DIMENSION and 0 <= columns <= _MAX_DIMENSION):
        raise ValueError(f"shape {shape!r} is out of range [0, 2**31)")
    indptr = _copy_1d(indptr, np.int64, "indptr")
    stored = _copy_1d(indices, np.int64, "indices")
    data = _copy_1d(data, np.float32, "data")
    if len(indptr) != rows + 1:
        raise ValueError(f"indptr has {len(indptr)} offsets; {rows} rows need {rows + 1}")
    if indptr[0] != 0 or indptr[-1] != len(stored):
        raise ValueError(f"indptr must run from 0 to {len(stored)}, the number of indices")
    if np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    if len(data) != len(stored):
        raise ValueError(f"{len(data)} values for {len(stored)} indices")
    if len(stored) and (stored.min() < 0 or stored.max() >= columns):
        raise ValueError(f"a column index is outside [0, {columns})")
    indices = stored.astype(np.int32)
    for array in (indptr, indices, data):
        array.flags.writeable = False
    return indptr, indices, data, rows, columns


def checked_vector(x: Any, columns: int) -> np.ndarray:
    """``x`` as a contiguous float32 vector of ``columns`` values, or ValueError."""
    try:
        vector = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x must be numbers: {exc}") from None
    if vector.shape != (columns,):
        raise ValueError(f"x has shape {vector.shape}; the matrix needs ({columns},)")
    return vector


def _copy_1d(values: Any, dtype: type, name: str) -> np.ndarray:
    try:
        given = np.asarray(values)
        if np.issubdtype(dtype, np.integer) and given.size and given.dtype.kind not in "iu":
            raise ValueError(f"integers expected, not {given.dtype}")
        array = np.array(given, dtype=dtype, copy=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {array.shape}")
    return np.ascontiguousarray(array)


class CSRMatrix:
    """A ``rows`` x ``columns`` sparse matrix; ``matvec`` is its product with a vector."""

    __slots__ = ("_shape", "_indptr", "_indices", "_data", "_filled", "_starts")

    def __init__(self, indptr: Any, indices: Any, data: Any, shape: Any) -> None:
        indptr, self._indices, self._data, rows, columns = checked_arrays(
            indptr, indices, data, shape
        )
        self._shape = (rows, columns)
        self._indptr = indptr
        # np.add.reduceat sums between consecutive offsets, but an empty row would
        # take the next row's first value: reduce over the rows that have values.
        self._filled = np.flatnonzero(np.diff(indptr))
        self._starts = indptr[:-1][self._filled]

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return self._shape

    @property
    def nnz(self) -> int:
        """How many values are stored."""
        return len(self._data)

    def matvec(self, x: Any) -> np.ndarray:
        # The arrays before ``x`` is converted: that may run the caller's code, even
        # a second ``__init__``; the product uses what ``x`` was checked against.
        data, indices, filled, starts = self._data, self._indices, self._filled, self._starts
        rows, columns = self._shape
        vector = checked_vector(x, columns)
        out = np.zeros(rows, dtype=np.float32)
        if len(starts):
            products = np.multiply(data, vector[indices], dtype=np.float64)
            out[filled] = np.add.reduceat(products, starts)
        return out
