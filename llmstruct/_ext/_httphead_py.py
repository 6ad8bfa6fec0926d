"""The request-head policy and the response-head serialiser: the pure-Python twin.

This module is the readable specification; ``_httphead_c.pyx`` implements the
same names (behaviour, errors, bytes) compiled, and ``httphead.py`` picks one.
``HTTPError`` is defined here only: the compiled twin raises this very class.
``llmstruct.server.http_common`` re-exports everything, and is where the server
imports it from.

The policy (``inspect_head``). Both parser backends (h11, httptools) refuse some
hostile heads themselves, but not the same ones, so every parsed head of both
goes through ``inspect_head``, which decides Host, Content-Length,
Transfer-Encoding, version, keep-alive and upgrade the same way for both (each
driver only adds what its parser lets through that the other refuses).

Responses (``response_head``) are serialised here too, by both backends alike,
so the bytes a client receives do not depend on the parser.

Both run once per request: the compiled twin exists because they are a
measurable share of a small request's cost (``perf/bench_httphead.py``).
"""

from __future__ import annotations

import http
import re
import time
from time import time as _time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmstruct.server.limits import Limits

__all__ = [
    "HTTPError",
    "RequestHead",
    "inspect_head",
    "split_target",
    "response_head",
    "http_date",
    "STATUS_LINES",
]


class HTTPError(Exception):
    """A request the server refuses at the protocol level: answered, then the connection ends.

    ``status`` is the response status (400, 408, 413, 431, 501, 505); ``detail``
    the short English reason sent as ``{"detail": ...}``.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


class RequestHead:
    """One parsed and checked request head, as both drivers produce it.

    ``headers`` keeps the wire order with lower-cased names and untouched values.
    ``raw`` is the head's bytes (request line to blank line), kept only for an
    upgrade request, whose head the WebSocket layer parses again.
    """

    __slots__ = (
        "method",
        "target",
        "http_version",
        "headers",
        "keep_alive",
        "content_length",
        "chunked",
        "upgrade",
        "expect_continue",
        "raw",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = True
        self.content_length: int | None = None
        self.chunked = False
        self.upgrade: bytes | None = None  # lower-cased Upgrade value when Connection: upgrade
        self.expect_continue = False
        self.raw: bytes | None = None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def rebuild_raw(self) -> bytes:
        """The head re-serialised from its parts (names lower-cased): for an upgrade."""
        lines = [b"%s %s HTTP/%s" % (self.method.encode(), self.target, self.http_version.encode())]
        lines.extend(name + b": " + value for name, value in self.headers)
        return b"\r\n".join(lines) + b"\r\n\r\n"


# RFC 9112 §2.3: HTTP-version is "HTTP/" DIGIT "." DIGIT; we speak 1.0 and 1.1.
_VERSIONS = frozenset(("1.0", "1.1"))
_DIGITS = re.compile(rb"[0-9]{1,18}")  # 18 digits: below 2**63, checked before int()


_HOST, _LENGTH, _CONNECTION, _CODING, _UPGRADE, _EXPECT = range(6)
_SPECIAL = {
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"connection": _CONNECTION,
    b"transfer-encoding": _CODING,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
}


def inspect_head(
    method: str,
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    limits: Limits,
) -> RequestHead:
    """Check a parsed head against the server's policy and derive its framing.

    Raises ``HTTPError``: 505 for a version other than 1.0/1.1 (400 for 0.9's
    version-less request line); 431 for too many header lines; 400 for a missing
    or repeated Host on HTTP/1.1 (RFC 9112 §3.2), Content-Length together with
    Transfer-Encoding (RFC 9112 §6.1: a smuggling vector, refused rather than
    resolved), Transfer-Encoding on HTTP/1.0 (§6.1), any repeated or malformed
    Content-Length (§6.3 lets a recipient refuse even identical repeats);
    501 for a Transfer-Encoding other than exactly one ``chunked`` (§6.1);
    413 for a declared body over ``max_body_bytes``.
    """
    if http_version not in _VERSIONS:
        if http_version == "0.9":
            raise HTTPError(400, "Invalid request line")
        raise HTTPError(505, "HTTP version not supported")
    if len(headers) > limits.max_header_count:
        raise HTTPError(431, "Too many header fields")
    hosts = 0
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection = b""
    upgrade = None
    expect = None
    special = _SPECIAL.get
    for name, value in headers:
        # One dict probe per header: most headers are none of these.
        kind = special(name)
        if kind is None:
            continue
        if kind == _HOST:
            hosts += 1
        elif kind == _LENGTH:
            lengths.append(value)
        elif kind == _CONNECTION:
            connection = connection + b"," + value if connection else value
        elif kind == _CODING:
            codings.append(value)
        elif kind == _UPGRADE:
            upgrade = value
        else:
            expect = value
    if hosts != 1 and (hosts or http_version == "1.1"):
        raise HTTPError(400, "Missing Host header" if not hosts else "Multiple Host headers")
    head = RequestHead(method, target, http_version, headers)
    if codings:
        if lengths:
            raise HTTPError(400, "Content-Length with Transfer-Encoding")
        if http_version == "1.0":
            raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if len(codings) != 1 or codings[0].strip().lower() != b"chunked":
            raise HTTPError(501, "Only Transfer-Encoding: chunked is supported")
        head.chunked = True
    elif lengths:
        if len(lengths) != 1:
            raise HTTPError(400, "Multiple Content-Length headers")
        value = lengths[0].strip()
        if _DIGITS.fullmatch(value) is None:
            raise HTTPError(400, "Invalid Content-Length")
        head.content_length = int(value)
        if head.content_length > limits.max_body_bytes:
            raise HTTPError(413, "Request body too large")
    if not connection:
        head.keep_alive = http_version == "1.1"
        tokens = b""
    else:
        tokens = connection.lower()
        if http_version == "1.1":
            head.keep_alive = b"close" not in tokens or not _has_token(tokens, b"close")
        else:
            head.keep_alive = b"keep-alive" in tokens and _has_token(tokens, b"keep-alive")
    if upgrade is not None and _has_token(tokens, b"upgrade"):
        head.upgrade = upgrade.strip().lower()
    if expect is not None and expect.strip().lower() == b"100-continue":
        head.expect_continue = True
    return head


def _has_token(tokens: bytes, token: bytes) -> bool:
    return any(part.strip() == token for part in tokens.split(b","))


def split_target(target: bytes) -> tuple[str, bytes]:
    """``(path, query)`` of a request target; the path stays percent-encoded.

    Origin form (``/a?b``) is the norm. Absolute form (``http://h/a?b``, RFC
    9112 §3.2.2) loses its scheme and authority. Anything else (``*``, an
    authority) is returned as the path, which no route matches.
    """
    path, sep, query = target.partition(b"?")
    if path[:1] != b"/" and b"://" in path:
        rest = path.split(b"://", 1)[1]
        slash = rest.find(b"/")
        path = rest[slash:] if slash >= 0 else b"/"
    return path.decode("latin-1"), query


# -- responses -------------------------------------------------------------------------------------
def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1")


STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
_date_cache: list = [0, b"", b""]  # [second, Date value, the whole "date: ...\r\n" line]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date() -> bytes:
    """The ``Date`` header value (IMF-fixdate, RFC 9110 §5.6.7), recomputed once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        _set_date(now)
    return _date_cache[1]


def _set_date(now: int) -> None:
    t = time.gmtime(now)
    value = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")
    _date_cache[:] = [now, value, b"date: " + value + b"\r\n"]


def response_head(
    status: int,
    headers: list[tuple[bytes, bytes]],
    content_length: int | None,
    keep_alive: bool,
    http10: bool = False,
    body: bytes = b"",
) -> bytes:
    """Serialise a status line and headers, then ``body``. ``content_length`` None means chunked.

    ``headers`` must not carry framing headers (Content-Length,
    Transfer-Encoding, Connection): they are written here from the arguments.
    An HTTP/1.0 client cannot read chunked framing, so a body of unknown length
    goes to it unframed and the connection closes after it (the caller passes
    ``keep_alive=False`` then).
    """
    now = int(_time())
    if now != _date_cache[0]:
        _set_date(now)
    parts = [STATUS_LINES.get(status) or _status_line(status), _date_cache[2]]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if status < 200 or status == 204 or status == 304:
        pass  # no content, so no framing header (RFC 9110 §8.6, RFC 9112 §6.1)
    elif content_length is not None:
        parts.append(b"content-length: %d\r\n" % content_length)
    elif not http10:
        parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    elif http10:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    parts.append(body)  # a small body in the same bytes: one write, one send(2)
    return b"".join(parts)
