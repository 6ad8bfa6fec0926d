"""The memory-accounted LRU cache with TTL: compiled twin if built, else the Python one.

``_lru_py`` is the specification; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._lru_py import LRUCache
else:
    _impl = load_twin("lru")
    LRUCache = _impl.LRUCache

__all__ = ["LRUCache"]
