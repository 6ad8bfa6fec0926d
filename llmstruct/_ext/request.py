"""The request objects: compiled twin if built, else the Python one.

``_request_py`` is the source of both (the compiled twin is that file built with
``_request_c.pxd``); type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._request_py import Headers, Request
else:
    _impl = load_twin("request")
    Headers, Request = _impl.Headers, _impl.Request

__all__ = ["Headers", "Request"]
