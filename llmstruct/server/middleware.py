"""The server's middleware chain: compiled twin if built, else the Python one.

``llmstruct._ext._middleware_py`` is the source of both twins (the compiled one
is that file built with ``_middleware_c.pxd``), with the chain's order and
reasons in its docstring; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._middleware_py import (
        CORS,
        AccessLog,
        APIKeyAuth,
        Gzip,
        LogSink,
        RateLimit,
        RequestId,
        _accepts_gzip,
        client_address,
        default_chain,
        redact_query,
    )
else:
    _impl = load_twin("middleware")
    CORS, AccessLog, APIKeyAuth, Gzip = _impl.CORS, _impl.AccessLog, _impl.APIKeyAuth, _impl.Gzip
    LogSink, RateLimit, RequestId = _impl.LogSink, _impl.RateLimit, _impl.RequestId
    _accepts_gzip, client_address = _impl._accepts_gzip, _impl.client_address
    default_chain, redact_query = _impl.default_chain, _impl.redact_query

__all__ = [
    "AccessLog",
    "APIKeyAuth",
    "CORS",
    "Gzip",
    "LogSink",
    "RateLimit",
    "RequestId",
    "client_address",
    "default_chain",
    "redact_query",
]
