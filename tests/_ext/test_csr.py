"""Behaviour of ``CSRMatrix``, run over both twins by the ``csr_module`` fixture."""

from __future__ import annotations

import numpy as np
import pytest

# 3 x 4:  [[1, 0, 2, 0],
#          [0, 0, 0, 0],      an empty row
#          [0, 3, 0, 4 + 5]]  a repeated position (column 3) adds up
INDPTR = [0, 2, 2, 5]
INDICES = [0, 2, 1, 3, 3]
DATA = [1.0, 2.0, 3.0, 4.0, 5.0]
DENSE = np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 9]], dtype=np.float64)


@pytest.fixture
def matrix(csr_module):
    return csr_module.CSRMatrix(INDPTR, INDICES, DATA, (3, 4))


def test_matvec_is_the_dense_product(matrix):
    x = np.array([1.0, 10.0, 100.0, 1000.0], dtype=np.float32)
    out = matrix.matvec(x)
    assert out.dtype == np.float32 and out.shape == (3,)
    assert out.tolist() == (DENSE @ x).tolist() == [201.0, 0.0, 9030.0]


def test_matvec_accepts_any_sequence_of_numbers_and_returns_a_new_array(matrix):
    first = matrix.matvec([1, 1, 1, 1])
    second = matrix.matvec((1, 1, 1, 1))
    assert first.tolist() == second.tolist() == [3.0, 0.0, 12.0]
    first[0] = -1
    assert matrix.matvec([1, 1, 1, 1])[0] == 3.0


def test_shape_and_stored_count(matrix):
    assert matrix.shape == (3, 4)
    assert matrix.nnz == 5
    with pytest.raises(AttributeError):
        matrix.shape = (4, 3)


def test_the_matrix_keeps_its_own_copy_of_the_arrays(csr_module):
    indptr, indices, data = (np.array(a) for a in (INDPTR, INDICES, DATA))
    matrix = csr_module.CSRMatrix(indptr, indices, data, (3, 4))
    indices[:] = 10**6  # would read far outside x if the matrix shared this array
    data[:] = 0
    assert matrix.matvec(np.ones(4)).tolist() == [3.0, 0.0, 12.0]


def test_random_matrices_match_the_dense_product(csr_module):
    rng = np.random.default_rng(7)
    for rows, columns, stored in [(1, 1, 1), (50, 30, 200), (200, 400, 50), (64, 64, 4096)]:
        row_of = np.sort(rng.integers(0, rows, stored))
        indices = rng.integers(0, columns, stored)
        data = rng.standard_normal(stored).astype(np.float32)
        indptr = np.searchsorted(row_of, np.arange(rows + 1))
        dense = np.zeros((rows, columns))
        np.add.at(dense, (row_of, indices), data.astype(np.float64))
        x = rng.standard_normal(columns).astype(np.float32)
        out = csr_module.CSRMatrix(indptr, indices, data, (rows, columns)).matvec(x)
        np.testing.assert_allclose(out, dense @ x.astype(np.float64), rtol=1e-5, atol=1e-5)


def test_empty_matrices(csr_module):
    no_values = csr_module.CSRMatrix([0, 0, 0], [], [], (2, 3))
    assert no_values.matvec([1, 2, 3]).tolist() == [0.0, 0.0]
    no_rows = csr_module.CSRMatrix([0], [], [], (0, 0))
    assert no_rows.matvec([]).tolist() == []


@pytest.mark.parametrize(
    ("indptr", "indices", "data", "shape", "message"),
    [
        ([0, 2, 5], INDICES, DATA, (3, 4), "3 rows need 4"),
        ([1, 2, 2, 5], INDICES, DATA, (3, 4), "from 0 to 5"),
        ([0, 2, 2, 4], INDICES, DATA, (3, 4), "from 0 to 5"),
        ([0, 3, 2, 5], INDICES, DATA, (3, 4), "non-decreasing"),
        (INDPTR, INDICES, DATA[:4], (3, 4), "4 values for 5 indices"),
        (INDPTR, [0, 2, 1, 3, 4], DATA, (3, 4), "outside [0, 4)"),
        (INDPTR, [0, -1, 1, 3, 3], DATA, (3, 4), "outside [0, 4)"),
        (INDPTR, [0, 2, 1, 3, 2.5], DATA, (3, 4), "indices must be numbers"),
        (INDPTR, INDICES, ["a", "b", "c", "d", "e"], (3, 4), "data must be numbers"),
        ([[0, 2, 2, 5]], INDICES, DATA, (3, 4), "one-dimensional"),
        (INDPTR, INDICES, DATA, (3,), "two integers"),
        (INDPTR, INDICES, DATA, (3.0, 4), "two integers"),
        (INDPTR, INDICES, DATA, (3, -4), "out of range"),
        (INDPTR, INDICES, DATA, (3, 2**31), "out of range"),
    ],
)
def test_inconsistent_arrays_are_refused(csr_module, indptr, indices, data, shape, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        csr_module.CSRMatrix(indptr, indices, data, shape)


@pytest.mark.parametrize("x", [[1, 2, 3], np.ones(5), np.ones((4, 1)), ["a", "b", "c", "d"]])
def test_a_vector_of_the_wrong_size_or_kind_is_refused(matrix, x):
    with pytest.raises(ValueError, match="x "):
        matrix.matvec(x)


def test_a_second_init_while_x_converts_cannot_make_the_product_read_out_of_bounds(csr_module):
    matrix = csr_module.CSRMatrix([0, 1], [0], [1.0], (1, 1))

    class Sneaky:
        def __array__(self, dtype=None, copy=None):
            matrix.__init__([0, 1], [1000], [1.0], (1, 1001))  # indices far beyond x
            return np.ones(1, dtype=np.float32)

    assert matrix.matvec(Sneaky()).tolist() == [1.0]  # the product x was checked against
    assert matrix.shape == (1, 1001)
