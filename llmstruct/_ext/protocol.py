"""The connection protocol and its request cycles: compiled twin if built, else the Python one.

``_protocol_py`` is the source of both (the compiled twin is that file built with
``_protocol_c.pxd``); type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._protocol_py import Cycle, HttpProtocol
else:
    _impl = load_twin("protocol")
    Cycle, HttpProtocol = _impl.Cycle, _impl.HttpProtocol

__all__ = ["Cycle", "HttpProtocol"]
