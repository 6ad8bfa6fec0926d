"""The request object handlers get: ``Request`` (and its ``Headers``), pure twin.

One ``Request`` is built per request head, on every request's path, so it is a
hot path with two twins of one source: this module is the pure twin, and the
build compiles this same file as ``_request_c`` with the types declared in
``_request_c.pxd`` (Cython's pure Python mode), where attributes are C fields.
Selector: ``llmstruct._ext.request``. The exceptions both twins raise live in
``llmstruct.server.http_common`` (one class each, whichever twin runs).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import parse_qsl

from llmstruct.server.aio import request_body, request_json, request_stream
from llmstruct.server.http_common import RequestHead, split_target

__all__ = ["Headers", "Request"]

_perf_counter = time.perf_counter


class Headers:
    """Read-only request headers: lower-cased names, wire order, case-insensitive lookup."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = name.lower().encode("latin-1")
        for item_name, value in self.raw:
            if item_name == key:
                return value.decode("latin-1")
        return default

    def getlist(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for item_name, value in self.raw if item_name == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class Request:
    """One HTTP request: the head is parsed; the body is read on demand (``body``/``stream``)."""

    __slots__ = (
        "method", "path", "query_string", "raw_headers", "client", "http_version",
        "path_params", "route", "public", "websocket", "request_id", "started", "_state",
        "_source", "_query", "_headers",
    )  # fmt: skip

    def __init__(self, head: RequestHead, client: tuple[str, int] | None) -> None:
        self.method = head.method
        self.path, self.query_string = split_target(head.target)
        self.raw_headers: list[tuple[bytes, bytes]] = head.headers  # lower-case names, in order
        self._headers: Headers | None = None
        self.client = client
        self.http_version = head.http_version
        self.path_params: dict[str, str] = {}
        self.route: str | None = None  # the matched template, e.g. for metrics labels
        self.public = False  # a route served without an API key
        self.websocket = False  # an upgrade to a WebSocket route
        self.request_id = ""
        self.started = _perf_counter()
        self._state: dict[str, Any] | None = None
        self._source: Any = None  # the protocol's body source (its Cycle)
        self._query: dict[str, str] | None = None

    @property
    def headers(self) -> Headers:
        """The headers for lookups by name; hot paths loop over ``raw_headers`` instead."""
        if self._headers is None:
            self._headers = Headers(self.raw_headers)
        return self._headers

    @property
    def state(self) -> dict[str, Any]:
        """Free-form per-request data for middleware and handlers."""
        if self._state is None:
            self._state = {}
        return self._state

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value of a repeated name wins)."""
        if self._query is None:
            text = self.query_string.decode("latin-1")
            self._query = dict(parse_qsl(text, keep_blank_values=True)) if text else {}
        return self._query

    def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises ``HTTPError`` (413, 408, 400) on a bad body."""
        return request_stream(self)

    def body(self) -> Awaitable[bytes]:
        """The whole body (at most ``Limits.max_body_bytes``: the protocol enforces it)."""
        return request_body(self)

    def json(self) -> Awaitable[Any]:
        """The body parsed as JSON; invalid JSON is a 422 shaped like FastAPI's."""
        return request_json(self)
