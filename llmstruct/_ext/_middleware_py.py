"""The middleware chain: request id, access log, CORS, rate limit, API-key auth, gzip.

Every request runs through these hooks, so this module is a hot path with two
twins of one source: this is the pure twin, and the build compiles this same
file as ``_middleware_c`` with the types declared in ``_middleware_c.pxd`` (Cython's pure
Python mode). ``llmstruct.server.middleware`` is the selector the server imports.

Each middleware is a small object with plain-function hooks (see ``_app_py.py``):
``on_request(request) -> Response | None``, ``on_response(request, response)
-> Response`` and, for the protocol's own refusals, ``on_refusal(status,
detail, client)``. ``default_chain`` builds them in their order, outermost first:

    RequestId -> AccessLog -> Metrics -> CORS -> RateLimit -> APIKeyAuth -> Gzip

so a preflight is answered before auth (browsers send it without credentials),
a client is throttled before its key is checked (key guessing is rate limited),
every response (a 401, a 429, a preflight) is logged and counted once, and CORS
headers are on errors too. Auth runs when the head is complete, before any body
byte is read, and before a WebSocket upgrade is handed over.

Secrets: the API key is compared in constant time (the C function behind
``hmac.compare_digest``); the access log carries no header, and the query
string only with credential-like values (``api_key``, ``token``, ...) replaced
by ``"REDACTED"``.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import zlib

# hmac.compare_digest is this function unless OpenSSL provides its own; importing
# hmac would load hashlib (0.7 MiB of a worker's memory) for nothing else.
from _operator import _compare_digest
from collections.abc import Iterable
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlencode

import orjson

from llmstruct.server.aio import gzip_body, gzip_stream
from llmstruct.server.app import Request, Response, StreamingResponse, error_json

__all__ = [
    "AccessLog",
    "APIKeyAuth",
    "CORS",
    "Gzip",
    "LogSink",
    "RateLimit",
    "RequestId",
    "default_chain",
]


# -- request id ------------------------------------------------------------------------------------
_CLIENT_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class RequestId:
    """Gives each request an id (the client's ``X-Request-ID`` if sane), echoed in the response.

    Generated ids are a per-process random prefix and a counter in hex: unique, and
    cheap (compiled, the counter is a C integer and the f-string a C conversion).
    """

    __slots__ = ("_prefix", "_count")  # the fields of _middleware_c.pxd

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex() + "-"
        self._count = 0

    def on_request(self, request: Request) -> None:
        for name, value in request.raw_headers:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                if _CLIENT_ID.fullmatch(given):
                    request.request_id = given
                    return
                break
        self._count += 1
        request.request_id = f"{self._prefix}{self._count:x}"

    def on_response(self, request: Request, response: Response) -> Response:
        request_id: str = request.request_id
        response.headers.append((b"x-request-id", request_id.encode("latin-1")))
        return response


def client_address(request: Request, trusted: frozenset[str]) -> str:
    """The client's address: the peer's, or behind a trusted proxy the rightmost
    ``X-Forwarded-For`` hop that is not itself trusted (``RateLimit``'s docstring)."""
    peer = request.client[0] if request.client else ""
    if peer not in trusted:
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if not forwarded:
        return peer
    for hop in reversed(forwarded.split(",")):
        hop = hop.strip()
        if hop and hop not in trusted:
            return hop
    return peer


# -- access log ------------------------------------------------------------------------------------
class LogSink:
    """Buffered JSON-lines output: flushed every ``interval`` seconds or at 64 KiB.

    One write syscall per request would cost more than the request's own
    parsing; lines are flushed soon enough for ``journalctl -f``, and at exit.
    Outside an event loop (a CLI, a test) each line is written at once.
    """

    def __init__(self, stream: BinaryIO | None = None, interval: float = 0.2) -> None:
        self.stream = stream if stream is not None else sys.stderr.buffer
        self.interval = interval
        self._buffer = bytearray()
        self._timer: Any = None

    def write(self, record: dict[str, Any]) -> None:
        buffer = self._buffer
        buffer += _dumps(record, option=_NEWLINE)
        if len(buffer) >= 65536 or self._timer is None:
            self._appended()

    def _appended(self) -> None:
        """Lines were added to ``_buffer`` (one bytearray for good): flush it or arm the timer."""
        if len(self._buffer) >= 65536:
            self.flush()
        elif self._timer is None:
            try:
                import asyncio

                self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed or full log stream must never take a request down


_dumps = orjson.dumps
_monotonic = time.monotonic
_time = time.time
_perf_counter = time.perf_counter
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_SECRET_PARAMS = frozenset(("api_key", "apikey", "key", "token", "access_token", "password"))
# [millisecond, its timestamp, second, its date and time]: a log line's timestamp
# is formatted once per millisecond (tens of requests at full load), not per line.
_ts_cache: list[Any] = [-1, "", -1, ""]


def _timestamp(now: float) -> str:
    millisecond = int(now * 1000)
    if millisecond != _ts_cache[0]:
        second = millisecond // 1000
        if second != _ts_cache[2]:
            _ts_cache[2] = second
            _ts_cache[3] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _ts_cache[0] = millisecond
        _ts_cache[1] = f"{_ts_cache[3]}.{millisecond % 1000:03d}Z"
    return _ts_cache[1]


def redact_query(query: bytes) -> str:
    """The query string with credential-like values replaced; never the key itself."""
    if not query:
        return ""
    text = query.decode("latin-1")
    lowered = text.lower()
    if "%" not in text and not any(secret in lowered for secret in _SECRET_PARAMS):
        return text  # no name can be a secret one (only %-escapes could spell one): no parse
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
        return text
    return urlencode(
        [(n, "REDACTED" if n.lower() in _SECRET_PARAMS else v) for n, v in pairs], safe="/"
    )


class AccessLog:
    """One structured JSON line per request (and per refused request), no secrets in it.

    ``client`` is the client's address, behind a ``trusted`` proxy the forwarded one
    (``client_address``), as the rate limit counts it; a request the protocol refused
    has no parsed headers, so its line has the peer's."""

    def __init__(self, sink: LogSink | None = None, trusted: Iterable[str] = ()) -> None:
        self.sink = sink or LogSink()
        self.trusted = frozenset(trusted)
        self.pid = os.getpid()

    def on_response(self, request: Request, response: Response) -> Response:
        now = _time()
        record = {
            "ts": _ts_cache[1] if int(now * 1000) == _ts_cache[0] else _timestamp(now),
            "level": "info" if response.status < 500 else "error",
            "msg": "request",
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            # Whole microseconds, rounded half up: round(x, 3) costs as much as the dict.
            "duration_ms": int((_perf_counter() - request.started) * 1e6 + 0.5) / 1000,
            "bytes": None if response.streaming else len(response.body),
            "client": client_address(request, self.trusted) or None,
            "pid": self.pid,
        }
        if request.query_string:
            record["query"] = redact_query(request.query_string)
        if request.route is not None:
            record["route"] = request.route
        sink = self.sink  # LogSink.write, inline: this runs once per request
        buffer = sink._buffer
        buffer += _dumps(record, option=_NEWLINE)
        if len(buffer) >= 65536 or sink._timer is None:
            sink._appended()
        return response

    def on_refusal(self, status: int | None, detail: str, client: Any) -> None:
        self.sink.write(
            {
                "ts": _timestamp(time.time()),
                "level": "warning",
                "msg": "refused",
                "status": status,
                "detail": detail,
                "client": client[0] if client else None,
                "pid": self.pid,
            }
        )


# -- CORS ------------------------------------------------------------------------------------------
class CORS:
    """CORS for the configured origins (``*`` for any); nothing is added for others.

    Preflights (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed
    origin get 204 with the allowed methods and headers; from another origin 400
    ``Disallowed CORS origin``, as Starlette's CORSMiddleware answers.
    """

    METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    HEADERS = ("authorization", "x-api-key", "content-type", "x-request-id", "accept")
    EXPOSE = "X-Request-ID, Retry-After"

    def __init__(self, origins: Iterable[str], max_age: int = 600) -> None:
        self.origins = frozenset(origins)
        self.any = "*" in self.origins
        self.max_age = str(max_age)
        if not self.origins:
            # Nothing to add to any response: the chain skips a hook that is None,
            # so a server without CORS pays nothing for it per response.
            self.on_response = None  # type: ignore[assignment]

    def _allowed(self, origin: str | None) -> bool:
        return origin is not None and (self.any or origin in self.origins)

    def on_request(self, request: Request) -> Response | None:
        if request.method != "OPTIONS" or "access-control-request-method" not in request.headers:
            return None
        origin = request.headers.get("origin")
        if not self._allowed(origin):
            return error_json(400, "Disallowed CORS origin")
        asked = request.headers.get("access-control-request-headers", "")
        wanted = [h.strip().lower() for h in asked.split(",") if h.strip()]
        if any(h not in self.HEADERS for h in wanted):
            return error_json(400, "Disallowed CORS headers")
        response = Response(b"", 204)
        response.set_header("access-control-allow-methods", self.METHODS)
        response.set_header("access-control-allow-headers", ", ".join(self.HEADERS))
        response.set_header("access-control-max-age", self.max_age)
        request.state["cors_preflight"] = True
        return response

    def on_response(self, request: Request, response: Response) -> Response:
        if not self.origins:
            return response
        origin = request.headers.get("origin")
        if self._allowed(origin):
            response.headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            response.headers.append((b"access-control-expose-headers", self.EXPOSE.encode()))
        if not self.any or origin is not None:
            response.headers.append((b"vary", b"Origin"))
        return response


# -- rate limit ------------------------------------------------------------------------------------
class RateLimit:
    """A token bucket per client address: ``rate`` requests a second, bursts of ``burst``.

    Over it: 429 with ``Retry-After`` (whole seconds until a token is back).
    Public routes (health) are not counted: the App runs them without this hook
    (``skips_public_routes``). At most ``max_clients`` buckets are
    kept; past that, full (idle) buckets are dropped first, since a new bucket
    starts full anyway.

    Behind a reverse proxy (``llmstruct migrate proxy``, nginx) every request comes
    from the proxy's address: when the peer is one of ``trusted`` proxies, the
    client is the rightmost ``X-Forwarded-For`` address that is not itself trusted
    (uvicorn's ``--forwarded-allow-ips`` rule; the left part is the client's word
    and cannot be believed). An untrusted peer's header is ignored.
    """

    skips_public_routes = True  # the App leaves on_request out of a public route's chain

    def __init__(
        self, rate: float, burst: int, max_clients: int = 10_000, trusted: Iterable[str] = ()
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self.trusted = frozenset(trusted)
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, last refill]

    def on_request(self, request: Request) -> Response | None:
        client = client_address(request, self.trusted)
        now = _monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._evict(now)
            bucket = self._buckets[client] = [self.burst, now]
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            retry = max(1, math.ceil((1.0 - tokens) / self.rate))
            return error_json(429, "Rate limit exceeded", {"Retry-After": str(retry)})
        bucket[0] = tokens - 1.0
        return None

    def _evict(self, now: float) -> None:
        full = [c for c, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.burst]  # fmt: skip
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()


# -- auth ------------------------------------------------------------------------------------------
class APIKeyAuth:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (and ``?api_key=`` on a WebSocket).

    ``key=None`` is the no-auth mode, which ``serve`` allows only on a loopback
    address. Public routes pass (the App runs them without this hook:
    ``skips_public_routes``); everything else without the key gets 401, as the
    FastAPI service answers.
    """

    DETAIL = "Invalid or missing API key"
    skips_public_routes = True  # the App leaves on_request out of a public route's chain

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None

    def on_request(self, request: Request) -> Response | None:
        if self._key is None:
            return None
        token = None
        for name, value in request.raw_headers:  # _token's loop, inline: it runs per request
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer" and credentials.strip():
                    token = credentials.strip()
                    break
            elif name == b"x-api-key":
                token = value.strip()
                break
        else:
            if request.websocket:
                token = self._token(request)
        if token is not None and _compare_digest(token, self._key):
            return None
        return error_json(401, self.DETAIL, {"WWW-Authenticate": "Bearer"})

    @staticmethod
    def _token(request: Request) -> bytes | None:
        for name, value in request.raw_headers:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer" and credentials.strip():
                    return credentials.strip()
            elif name == b"x-api-key":
                return value.strip()
        if request.websocket:
            token = request.query.get("api_key")
            return token.encode() if token else None
        return None


# -- gzip ------------------------------------------------------------------------------------------
_COMPRESSIBLE = re.compile(
    rb"^(text/|application/(json|javascript|xml|x-ndjson)|[^;]*\+(json|xml))"
)


class Gzip:
    """gzip a response of at least ``minimum`` bytes for a client that accepts it.

    Only textual types are compressed. A body over ``stream_above`` is compressed
    in 64 KiB steps as a stream, so one large response cannot hold the event loop
    for long; streaming responses are compressed chunk by chunk (sync-flushed so
    each chunk stays readable at once). Level 6 is zlib's default.
    """

    __slots__ = ("minimum", "level", "stream_above")  # the fields of _middleware_c.pxd

    def __init__(self, minimum: int = 1000, level: int = 6, stream_above: int = 256 * 1024) -> None:
        self.minimum = minimum
        self.level = level
        self.stream_above = stream_above

    def on_response(self, request: Request, response: Response) -> Response:
        if not response.streaming and len(response.body) < self.minimum:
            return response
        status = response.status
        if status < 200 or status in (204, 304) or response.get_header("content-encoding"):
            return response
        content_type = response.get_header("content-type") or ""
        if not _COMPRESSIBLE.match(content_type.encode("latin-1")):
            return response
        response.headers.append((b"vary", b"Accept-Encoding"))
        if not _accepts_gzip(request.headers.get("accept-encoding")):
            return response
        etag = response.get_header("etag")
        if etag and not etag.startswith("W/"):
            response.set_header("etag", "W/" + etag)  # another representation (RFC 9110 §8.8.1)
        if response.streaming:
            response.content = gzip_stream(response.content, self.level)  # type: ignore[attr-defined]
        elif len(response.body) > self.stream_above:
            streamed = StreamingResponse(gzip_body(response.body, self.level), status)
            streamed.headers = response.headers
            response = streamed
        else:
            compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: gzip framing
            response.body = compressor.compress(response.body) + compressor.flush()
        response.headers.append((b"content-encoding", b"gzip"))
        return response


def _accepts_gzip(header: str | None) -> bool:
    """True if ``Accept-Encoding`` allows gzip (``gzip`` or ``*`` with a non-zero q)."""
    if not header:
        return False
    for item in header.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


# -- the chain -------------------------------------------------------------------------------------
def default_chain(
    api_key: str | None,
    *,
    cors_origins: Iterable[str] = (),
    rate: float = 100.0,
    burst: int = 200,
    log_sink: LogSink | None = None,
    metrics: Any = None,
    gzip_minimum: int = 1000,
    forwarded_allow_ips: Iterable[str] = (),
) -> list[Any]:
    """The server's middleware, outermost first (see the module docstring for the order)."""
    chain: list[Any] = [RequestId(), AccessLog(log_sink, trusted=forwarded_allow_ips)]
    if metrics is not None:
        chain.append(metrics)
    chain.append(CORS(cors_origins))
    if rate > 0:
        chain.append(RateLimit(rate, burst, trusted=forwarded_allow_ips))
    chain += [APIKeyAuth(api_key), Gzip(gzip_minimum)]
    return chain
