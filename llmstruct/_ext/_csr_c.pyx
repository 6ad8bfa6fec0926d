# cython: language_level=3
"""A sparse matrix in CSR form and its product with a vector: the compiled twin.

Same names, behaviour and errors as ``_csr_py``, which is the specification and
carries the docstrings; the comments here only say how this twin is made fast.
The arrays are checked and copied by the pure twin's ``checked_arrays`` (once,
at construction: numpy work, nothing to gain here), so the product loop can run
without bounds checks: every index was proven inside ``x``, whose length is
checked on each call, and the copies are private and read-only.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t

import numpy as np

from llmstruct._ext._csr_py import checked_arrays, checked_vector

__all__ = ["CSRMatrix", "checked_arrays", "checked_vector"]


cdef class CSRMatrix:
    cdef readonly tuple shape
    cdef const int64_t[::1] _indptr
    cdef const int32_t[::1] _indices
    cdef const float[::1] _data
    cdef Py_ssize_t _rows, _columns

    def __init__(self, indptr, indices, data, shape):
        indptr, indices, data, rows, columns = checked_arrays(indptr, indices, data, shape)
        self._indptr = indptr
        self._indices = indices
        self._data = data
        self._rows = rows
        self._columns = columns
        self.shape = (rows, columns)

    @property
    def nnz(self):
        return self._data.shape[0]

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def matvec(self, x):
        # Locals first: converting ``x`` runs the caller's code (``__array__``,
        # ``__float__``), which could call ``__init__`` again; the loop must use the
        # arrays ``x`` was checked against, which these references keep alive.
        cdef const int64_t[::1] indptr = self._indptr
        cdef const int32_t[::1] indices = self._indices
        cdef const float[::1] data = self._data
        cdef Py_ssize_t rows = self._rows
        cdef const float[::1] vector = checked_vector(x, self._columns)
        out = np.empty(rows, dtype=np.float32)
        cdef float[::1] result = out
        if rows and data.shape[0]:  # else no row has a value: all zeros
            _product(rows, &indptr[0], &indices[0], &data[0], &vector[0], &result[0])
        elif rows:
            result[:] = 0.0
        return out


# Plain pointers in locals: through the memoryviews' fields, every store to
# ``result`` would make the compiler reload them (they might alias).
cdef void _product(Py_ssize_t rows, const int64_t* indptr, const int32_t* indices,
                   const float* data, const float* vector, float* result) noexcept nogil:
    cdef Py_ssize_t row, k, first, end
    cdef double total
    for row in range(rows):
        first = indptr[row]
        end = indptr[row + 1]
        if first == end:
            result[row] = 0.0
            continue
        # Start from the first product, not from 0.0, as numpy's reduceat does:
        # a row of one -0.0 product sums to -0.0 in both twins.
        total = <double>data[first] * vector[indices[first]]
        for k in range(first + 1, end):
            total += <double>data[k] * vector[indices[k]]
        result[row] = <float>total
