"""Request-head policy and response-head serialiser: compiled twin if built, else the Python one.

``_httphead_py`` is the specification; type checkers read it, whichever twin runs.
``llmstruct.server.http_common`` re-exports these names for the server.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._httphead_py import (
        STATUS_LINES,
        HTTPError,
        RequestHead,
        http_date,
        inspect_head,
        response_head,
        split_target,
    )
else:
    _impl = load_twin("httphead")
    HTTPError = _impl.HTTPError
    RequestHead = _impl.RequestHead
    STATUS_LINES = _impl.STATUS_LINES
    http_date = _impl.http_date
    inspect_head = _impl.inspect_head
    response_head = _impl.response_head
    split_target = _impl.split_target

__all__ = [
    "HTTPError",
    "RequestHead",
    "STATUS_LINES",
    "http_date",
    "inspect_head",
    "response_head",
    "split_target",
]
