"""Token-budget context assembly (three greedy passes): compiled twin if built, else the Python one.

``_assemble_py`` is the specification; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._assemble_py import MAX_LEVELS, assemble
else:
    _impl = load_twin("assemble")
    MAX_LEVELS = _impl.MAX_LEVELS
    assemble = _impl.assemble

__all__ = ["MAX_LEVELS", "assemble"]
