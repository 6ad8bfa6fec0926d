"""The application side of the server: compiled twin if built, else the Python one.

``llmstruct._ext._app_py`` is the source of both twins (the compiled one is that
file built by Cython), with how requests are dispatched, the middleware chain
and the handler rules in its docstring; type checkers read it, whichever twin runs.
"""

from typing import TYPE_CHECKING

from llmstruct._ext import load_twin

if TYPE_CHECKING:
    from llmstruct._ext._app_py import (
        App,
        Headers,
        HTTPException,
        JSONResponse,
        PlainTextResponse,
        Request,
        Response,
        Route,
        RouteDoc,
        StreamingResponse,
        encode_header,
        encoded_json,
        error_json,
    )
else:
    _impl = load_twin("app")
    App, Headers, HTTPException, Route, RouteDoc = (
        _impl.App, _impl.Headers, _impl.HTTPException, _impl.Route, _impl.RouteDoc
    )  # fmt: skip
    Request, Response, JSONResponse, PlainTextResponse, StreamingResponse = (
        _impl.Request, _impl.Response, _impl.JSONResponse, _impl.PlainTextResponse,
        _impl.StreamingResponse,
    )  # fmt: skip
    encode_header, encoded_json, error_json = (
        _impl.encode_header, _impl.encoded_json, _impl.error_json
    )  # fmt: skip

__all__ = [
    "App",
    "Headers",
    "HTTPException",
    "JSONResponse",
    "PlainTextResponse",
    "Request",
    "Response",
    "Route",
    "RouteDoc",
    "StreamingResponse",
    "encode_header",
    "encoded_json",
    "error_json",
]
