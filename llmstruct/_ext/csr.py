"""A CSR sparse matrix and its product with a vector: compiled twin if built, else the Python one.

``_csr_py`` is the specification; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._csr_py import CSRMatrix
else:
    _impl = load_twin("csr")
    CSRMatrix = _impl.CSRMatrix

__all__ = ["CSRMatrix"]
