"""The httptools (llhttp) driver: the accelerated backend (``--http httptools``).

This is the specification of the driver, run where the compiled twin
(``_llhttp_c.pyx``) is not built; ``llmstruct.server.http_httptools`` exports
whichever twin ``llmstruct._ext.llhttp`` loaded.

llhttp parses a whole chunk per ``feed`` call, pipelined requests included, and
calls back per element; a callback that must refuse a request records the
``HTTPError`` and raises, which aborts the parse, and ``feed`` re-raises the
recorded error. A refusal of llhttp's own becomes 400, or 501 when it is about
Transfer-Encoding (matching h11, which hints 501 there).

Differences from h11 handled here:

* llhttp has no head size limit. The driver counts the request line and header
  bytes as llhttp reports them, and, when a chunk ends inside a head, adds the
  unterminated last line (which llhttp buffers without reporting); a head over
  ``max_head_bytes`` is 431 as in h11. The count ignores the few bytes of
  optional whitespace llhttp strips, so the two backends may differ by those
  bytes right at the limit, never by more.
* Transfer-Encoding values llhttp refuses early or accepts are all left to
  ``inspect_head`` (``lenient_transfer_encoding``), so the answer is the policy's.
* ``lenient_data_after_close``: bytes after a ``Connection: close`` request are
  ignored instead of refused, as in h11 (the connection ends after it anyway).
* Trailer fields of a chunked body are reported as headers: ignored.
* The raw head of an upgrade request is rebuilt from its parts (llhttp does not
  keep it); the WebSocket layer parses it again the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httptools

from llmstruct._ext.httphead import HTTPError, inspect_head

if TYPE_CHECKING:
    from llmstruct.server.http_common import DriverSink
    from llmstruct.server.limits import Limits

__all__ = ["HttpToolsDriver"]

if not hasattr(httptools.HttpRequestParser, "set_dangerous_leniencies"):
    # The leniencies below arrived in httptools 0.6.3; without them the policy
    # cannot be applied identically, so an older httptools counts as absent.
    raise ImportError("httptools >= 0.6.3 is required for the httptools backend")

_HttpParserUpgrade = httptools.HttpParserUpgrade
# The method names llhttp reports, decoded once (a str per request is not made for them).
_METHODS = {name.encode(): name for name in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                             "OPTIONS", "CONNECT", "TRACE")}  # fmt: skip
_HttpParserError = httptools.HttpParserError


class HttpToolsDriver:
    __slots__ = (
        "_on_request",
        "_on_body",
        "_on_end",
        "_limits",
        "_max_head",
        "_max_body",
        "_parser",
        "_url",
        "_headers",
        "_head_bytes",
        "_line_tail",
        "_in_head",
        "_in_message",
        "_body_seen",
        "_error",
        "_last",
        "finished",
        "tail",
    )

    def __init__(self, sink: DriverSink, limits: Limits) -> None:
        # The sink's methods, bound once: they are called per request and per body chunk.
        self._on_request = sink.on_request
        self._on_body = sink.on_body
        self._on_end = sink.on_end
        self._limits = limits
        self._max_head = limits.max_head_bytes
        self._max_body = limits.max_body_bytes
        parser = self._parser = httptools.HttpRequestParser(self)
        parser.set_dangerous_leniencies(
            lenient_transfer_encoding=True, lenient_data_after_close=True
        )
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._line_tail = 0  # bytes of the unterminated last line, when a chunk ends in a head
        self._in_head = False
        self._in_message = False
        self._body_seen = 0
        self._error: HTTPError | None = None
        self._last = False  # the request being parsed is the connection's last
        self.finished = False
        self.tail = b""

    def feed(self, data: bytes) -> None:
        if self.finished:
            self.tail += data
            return
        try:
            self._parser.feed_data(data)
        except _HttpParserUpgrade as exc:
            # llhttp stops after an upgrade (or CONNECT) request; what follows is
            # the new protocol's.
            self.finished = True
            self.tail = data[exc.args[0] :]
            return
        except _HttpParserError as exc:
            raise self._refusal(exc) from None
        if self._in_head:
            self._check_partial_head(data)

    def _refusal(self, exc: Exception) -> HTTPError:
        if self._error is not None:
            return self._error
        if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
            raise exc.__context__  # a bug in a callee, not a bad request: let it surface
        if not self._in_head and self._in_message:
            return HTTPError(400, "Invalid request body framing")
        reason = str(exc)
        if "Transfer-Encoding" in reason and "Content-Length" not in reason:
            return HTTPError(501, "Only Transfer-Encoding: chunked is supported")
        for fragment, detail in _LLHTTP_REASONS:
            if fragment in reason:
                return HTTPError(400, detail)
        return HTTPError(400, "Invalid request head")

    def _fail(self, error: HTTPError) -> None:
        self._error = error
        raise error

    def _check_partial_head(self, data: bytes) -> None:
        """A chunk ended inside a head: count its unterminated last line too."""
        newline = data.rfind(b"\n")
        if newline < 0:
            self._line_tail += len(data)
        else:
            self._line_tail = len(data) - newline - 1
        if self._head_bytes + self._line_tail > self._max_head:
            raise HTTPError(431, "Request head too large")

    # -- llhttp callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._line_tail = 0
        self._body_seen = 0
        self._in_head = True
        self._in_message = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            self._fail(HTTPError(431, "Request head too large"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer field of a chunked body
        self._headers.append((name.lower(), value))
        size = self._head_bytes = self._head_bytes + len(name) + len(value) + 4
        if size > self._max_head:
            self._fail(HTTPError(431, "Request head too large"))
        if b"\x7f" in value:  # llhttp refuses DEL too, but only in some positions
            self._fail(HTTPError(400, "Invalid request head"))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._in_head = False
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        try:
            head = inspect_head(
                method, self._url, parser.get_http_version(), self._headers, self._limits
            )
        except HTTPError as exc:
            self._fail(exc)
        if len(method) + self._head_bytes + 12 > self._max_head:
            self._fail(HTTPError(431, "Request head too large"))
        if head.upgrade is not None or method == "CONNECT":
            head.raw = head.rebuild_raw()
            self._last = True
        elif not head.keep_alive:
            self._last = True
        self._on_request(head)

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        if self._body_seen > self._max_body:
            self._fail(HTTPError(413, "Request body too large"))
        self._on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if self._last:
            self.finished = True
        self._on_end()


# llhttp's reasons for refusals the policy words in its own way (see http_common).
_LLHTTP_REASONS = (
    ("can't be present with", "Content-Length with Transfer-Encoding"),
    ("Duplicate Content-Length", "Multiple Content-Length headers"),
    ("Content-Length", "Invalid Content-Length"),  # invalid character, overflow
)
