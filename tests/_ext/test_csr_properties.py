"""Random CSR matrices give both twins the same product, to the bit.

Both sum in float64 and round once; in rows of up to 8 values (drawn here) both
add left to right, so the compiled twin cannot drift from the specification
without this noticing. (Longer rows: numpy may pair the additions; see _csr_py.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._ext.conftest import import_twin

floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def matrices(draw):
    rows = draw(st.integers(0, 12))
    columns = draw(st.integers(1, 12))
    counts = draw(st.lists(st.integers(0, 6), min_size=rows, max_size=rows))
    stored = sum(counts)
    indices = draw(st.lists(st.integers(0, columns - 1), min_size=stored, max_size=stored))
    data = draw(st.lists(floats, min_size=stored, max_size=stored))
    x = draw(st.lists(floats, min_size=columns, max_size=columns))
    indptr = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    return indptr, indices, data, (rows, columns), x


@settings(max_examples=300, deadline=None)
@given(matrices())
def test_the_twins_agree_exactly(case):
    indptr, indices, data, shape, x = case
    compiled = import_twin("csr", "c").CSRMatrix(indptr, indices, data, shape).matvec(x)
    pure = import_twin("csr", "py").CSRMatrix(indptr, indices, data, shape).matvec(x)
    assert compiled.tobytes() == pure.tobytes()
