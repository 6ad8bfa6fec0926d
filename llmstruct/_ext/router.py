"""HTTP route dispatch (exact dict + segment trie): compiled twin if built, else the Python one.

``_router_py`` is the specification; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._router_py import Match, Router
else:
    _impl = load_twin("router")
    Match = _impl.Match
    Router = _impl.Router

__all__ = ["Match", "Router"]
