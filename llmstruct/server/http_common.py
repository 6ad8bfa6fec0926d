"""The driver interface shared by the two HTTP/1.1 parser backends.

A driver (``http_h11.H11Driver``, ``http_httptools.HttpToolsDriver``) turns the
bytes of one connection into calls on a ``DriverSink`` -- ``on_request(head)``,
``on_body(data)``, ``on_end()`` -- in wire order, for every request it can parse,
pipelined ones included. It raises ``HTTPError`` at the first request it must
refuse, after the calls for the requests before it, and is unusable afterwards.

Both backends must behave identically on every input the issue lists (limits,
smuggling, malformed heads). Each parser already refuses some of those, but not
the same ones, so the policy lives here once: ``inspect_head`` sees the parsed
head of every request on both backends and decides Host, Content-Length,
Transfer-Encoding, version, keep-alive and upgrade; each driver only adds what
its parser lets through that the other refuses (see their module docstrings).

Responses are serialised here too (``response_head``), by both backends alike,
so the bytes a client receives do not depend on the parser.

``HTTPError``, ``RequestHead``, ``inspect_head``, ``response_head`` and
``split_target`` run once per request: they are defined in
``llmstruct._ext._httphead_py`` (the specification, with the policy's
docstrings), compiled as ``_httphead_c`` where built, and re-exported here,
where the server imports them from.

``ClientDisconnect`` and ``HTTPException`` are here because both twins of the
request objects and of the protocol (``llmstruct._ext.request``, ``.protocol``)
raise and catch them: one class each, whichever twin runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from llmstruct._ext.httphead import (
    STATUS_LINES,
    HTTPError,
    RequestHead,
    http_date,
    inspect_head,
    response_head,
    split_target,
)
from llmstruct.server.limits import Limits

__all__ = [
    "HTTPError",
    "RequestHead",
    "DriverSink",
    "Driver",
    "inspect_head",
    "split_target",
    "response_head",
    "error_response",
    "http_date",
    "STATUS_LINES",
    "ClientDisconnect",
    "HTTPException",
]


class ClientDisconnect(Exception):
    """The client went away while a handler read the body or streamed a response."""


class HTTPException(Exception):
    """Raise in a handler or middleware to answer ``{"detail": detail}`` with ``status_code``."""

    def __init__(
        self, status_code: int, detail: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail if detail is not None else _phrase(status_code)
        self.headers = headers


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class DriverSink(Protocol):
    """What a driver calls, in wire order, for each request it parses."""

    def on_request(self, head: RequestHead) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_end(self) -> None: ...


class Driver(Protocol):
    """One connection's request parser. ``feed`` raises ``HTTPError`` to refuse."""

    #: True once a request ended that no other request may follow on this
    #: connection (Connection: close, HTTP/1.0, an upgrade): later bytes are
    #: not parsed; after an upgrade they are kept in ``tail``.
    finished: bool
    #: The bytes after the head of an upgrade request (what the new protocol reads first).
    tail: bytes

    def __init__(self, sink: DriverSink, limits: Limits) -> None: ...

    def feed(self, data: bytes) -> None: ...


def error_response(status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """A complete ``{"detail": ...}`` response that ends the connection."""
    body = b'{"detail":"%s"}' % detail.replace("\\", "\\\\").replace('"', '\\"').encode()
    return response_head(
        status, [(b"content-type", b"application/json"), *headers], len(body), False, False, body
    )
