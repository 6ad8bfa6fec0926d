"""The h11 driver: the pure-Python reference backend (``--http h11``).

h11 parses; this driver never uses h11 to write (responses are serialised by
``http_common.response_head`` for both backends). h11's connection state machine
would wait for our response before parsing a pipelined request, so each request
gets a fresh ``h11.Connection`` that starts with the previous one's unparsed
bytes: requests are parsed as soon as they arrive, in order.

What h11 accepts that the policy (and llhttp) refuses, checked here on the raw
head, which the driver keeps while a head is incomplete (it is bounded by
``max_head_bytes``, which h11 enforces for an incomplete head):

* obs-fold continuation lines (h11 unfolds them): 400 (RFC 9112 §5.2 lets a
  server refuse them; they are a smuggling vector);
* bare LF line ends (RFC 9112 §2.2 "MAY"): 400;
* DEL in a field value (not a field-vchar, RFC 9110 §5.5): 400;
* repeated or list-form Content-Length (h11 merges ``1, 1``): 400;
* Content-Length with a non-chunked Transfer-Encoding, which h11 answers 501: 400
  as every other Content-Length + Transfer-Encoding.

Leading empty lines before a request line are skipped (RFC 9112 §2.2), as llhttp does.
"""

from __future__ import annotations

import h11

from llmstruct.server.http_common import DriverSink, HTTPError, inspect_head
from llmstruct.server.limits import Limits

__all__ = ["H11Driver"]

_NEED_DATA = h11.NEED_DATA
_Request = h11.Request
_Data = h11.Data
_EndOfMessage = h11.EndOfMessage


class H11Driver:
    __slots__ = (
        "_sink", "_limits", "_conn", "_head_buf", "_in_head", "_body_seen", "_last",
        "finished", "tail",
    )  # fmt: skip

    def __init__(self, sink: DriverSink, limits: Limits) -> None:
        self._sink = sink
        self._limits = limits
        self._conn: h11.Connection | None = None  # made at the first byte: idle sockets stay small
        self._head_buf = bytearray()  # bytes fed since this request began, while in its head
        self._in_head = True
        self._body_seen = 0
        self._last = False  # the request being parsed is the connection's last
        self.finished = False
        self.tail = b""

    def _new_connection(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_head_bytes)

    def feed(self, data: bytes) -> None:
        if self.finished:
            self.tail += data
            return
        if self._in_head:
            if not self._head_buf:
                data = data.lstrip(b"\r\n")
                if not data:
                    return
            self._head_buf += data
        if self._conn is None:
            self._conn = self._new_connection()
        self._conn.receive_data(data)
        self._pump()

    def _pump(self) -> None:
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise self._refine(exc) from None
            if event is _NEED_DATA:
                return
            kind = type(event)
            if kind is _Data:
                self._body_seen += len(event.data)
                if self._body_seen > self._limits.max_body_bytes:
                    raise HTTPError(413, "Request body too large")
                self._sink.on_body(bytes(event.data))
            elif kind is _Request:
                self._on_request(event)
            elif kind is _EndOfMessage:
                if self._last:
                    self.finished = True
                    self.tail = conn.trailing_data[0]
                self._sink.on_end()
                if self.finished:
                    return
                # Next request: a fresh h11 state machine over the unparsed bytes.
                rest = conn.trailing_data[0].lstrip(b"\r\n")
                conn = self._conn = self._new_connection()
                self._in_head = True
                self._body_seen = 0
                self._head_buf = bytearray(rest)
                if not rest:
                    return
                conn.receive_data(rest)
            else:  # PAUSED, ConnectionClosed: nothing more to parse
                return

    def _on_request(self, event: h11.Request) -> None:
        rest = len(self._conn.trailing_data[0])
        raw = bytes(self._head_buf[: len(self._head_buf) - rest])
        self._head_buf = bytearray()
        self._in_head = False
        _check_raw_head(raw)
        if len(raw) > self._limits.max_head_bytes:
            raise HTTPError(431, "Request head too large")
        headers = [(name, value) for name, value in event.headers]
        head = inspect_head(
            event.method.decode("ascii"),
            event.target,
            event.http_version.decode("ascii"),
            headers,
            self._limits,
        )
        if head.upgrade is not None or head.method == "CONNECT":
            head.raw = raw
            self._last = True
        elif not head.keep_alive:
            self._last = True
        self._sink.on_request(head)

    def _refine(self, exc: h11.RemoteProtocolError) -> HTTPError:
        """The policy's answer for a request h11 refused (its status hint, mostly)."""
        status = exc.error_status_hint
        if status == 431:
            return HTTPError(431, "Request head too large")
        if not self._in_head:
            return HTTPError(400, "Invalid request body framing")
        lines = bytes(self._head_buf).lower().split(b"\n")
        names = {line.split(b":", 1)[0].strip() for line in lines[1:]}
        if b"content-length" in names and b"transfer-encoding" in names:
            return HTTPError(400, "Content-Length with Transfer-Encoding")
        if status == 501:
            return HTTPError(501, "Only Transfer-Encoding: chunked is supported")
        message = str(exc)
        for fragment, detail in _H11_REASONS:
            if fragment in message:
                return HTTPError(400, detail)
        return HTTPError(400, "Invalid request head")


# h11's reasons for refusals the policy words in its own way (see http_common).
_H11_REASONS = (
    ("Missing mandatory Host", "Missing Host header"),
    ("multiple Host", "Multiple Host headers"),
    ("conflicting Content-Length", "Multiple Content-Length headers"),
    ("bad Content-Length", "Invalid Content-Length"),
)


def _check_raw_head(raw: bytes) -> None:
    """Refuse what h11 accepts but the policy does not (see the module docstring)."""
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raise HTTPError(400, "Invalid request head")
    if b"\n " in raw or b"\n\t" in raw:
        raise HTTPError(400, "Invalid request head")  # obs-fold
    if b"\x7f" in raw:
        raise HTTPError(400, "Invalid request head")  # DEL
    lower = raw.lower()
    count = lower.count(b"\ncontent-length:")
    if count > 1:
        raise HTTPError(400, "Multiple Content-Length headers")
    if count and b"," in lower.split(b"\ncontent-length:", 1)[1].split(b"\r\n", 1)[0]:
        raise HTTPError(400, "Invalid Content-Length")
