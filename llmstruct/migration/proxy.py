"""The migration proxy: a reverse proxy on llmstruct's own server stack.

``llmstruct migrate proxy`` (``proxy_command.py``) serves a ``ProxyApp``: every
request outside ``/_proxy/`` goes to the legacy (FastAPI) or the custom server,
and the answer comes back as the upstream gave it. Two modes:

* ``split`` -- share ``weight`` of requests goes to custom, the rest to legacy.
  With ``--sticky-header NAME`` a request carrying that header goes where a hash
  of its value points: the hash is a point in [0, 1) and the request goes to
  custom when the point is below the weight, so a client stays on one side, and
  raising the weight only ever moves clients from legacy to custom (consistent
  hashing on a line). Requests without it are spread exactly (an accumulator,
  like nginx's smooth weighted round robin: weight 0.1 is one request in ten).
* ``shadow`` -- legacy answers every request; a copy goes to custom in the
  background and the answers are compared (``shadow.py``).

A new weight (``PUT /_proxy/weight``) applies from the next request; requests in
flight finish where they started.

Headers (RFC 9110 §7.6.1): the hop-by-hop fields (Connection and the fields it
names, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade) are not
forwarded either way; framing is redone on each side. Host becomes the
upstream's, the client's goes in X-Forwarded-Host; X-Forwarded-For gets the
client's address appended and X-Forwarded-Proto is set if absent; the request
carries ``Via: 1.1 llmstruct-proxy`` (§7.6.3). Expect is handled here (the
server sends the 100 when the body is read), not passed on.

Bodies stream both ways: a request body goes upstream as the client sends it
(buffered only in shadow mode, which needs a copy, and when small enough that a
failed keep-alive connection can be retried with it); a response is passed back
whole when its Content-Length is at most ``BUFFER_LIMIT`` and chunk by chunk
otherwise (an NDJSON scan arrives line by line). An upstream that cannot be
reached, breaks, or exceeds the read timeout before the response head is
answered 502 (504 for a timeout) with ``{"detail": ...}``; one that fails
mid-stream ends the client's response without its last chunk (the client sees a
truncated body, never a complete-looking one). A client that leaves during a
stream is noticed at the next chunk, so its upstream connection is held at most
until then or the read timeout.

WebSocket upgrades are accepted here and relayed to the chosen side
(``proxy_ws.py``). The admin API and its auth rule are ``proxy_admin.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llmstruct.migration.proxy_stats import BACKENDS, CUSTOM, LEGACY, ProxyStats
from llmstruct.migration.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamURL
from llmstruct.server.app import App, Request, Response, StreamingResponse, error_json
from llmstruct.server.http_common import ClientDisconnect

__all__ = [
    "ProxyApp",
    "ProxySettings",
    "SettingsError",
    "Splitter",
    "parse_weight",
    "serve_proxy",
]

log = logging.getLogger("llmstruct.proxy")

ADMIN_PREFIX = "/_proxy/"
BUFFER_LIMIT = 1024 * 1024  # responses up to this Content-Length are relayed in one piece
RETRY_BODY_LIMIT = 64 * 1024  # request bodies up to this are buffered (a retry can resend them)
# RFC 9110 §7.6.1, plus Host (rewritten) and Expect (answered by this server).
HOP_BY_HOP = frozenset(
    (b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding",
     b"upgrade", b"host", b"expect", b"content-length")
)  # fmt: skip
RESPONSE_DROPPED = frozenset((*HOP_BY_HOP, b"date"))  # this server writes its own Date
VIA = (b"via", b"1.1 llmstruct-proxy")


class SettingsError(ValueError):
    """A bad proxy setting: one line naming the flag."""


def parse_weight(raw: Any) -> float:
    """A weight as a float in [0, 1]: ``0.25``, ``"0.25"`` or ``"25%"``."""
    text = str(raw).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SettingsError(
            f"weight must be a number in [0, 1] or a percentage, got {raw!r}"
        ) from None
    if isinstance(raw, bool) or not 0.0 <= value <= 1.0 or value != value:
        raise SettingsError(f"weight must be in [0, 1] (0%..100%), got {raw!r}")
    return value


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: a field name
_VISIBLE_ASCII = re.compile(r"[!-~]+")


@dataclass
class ProxySettings:
    legacy: UpstreamURL
    custom: UpstreamURL
    weight: float = 0.0
    sticky_header: str | None = None
    mode: str = "split"
    host: str = "127.0.0.1"
    port: int = 8080
    admin_key: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 100
    ignore_fields: tuple[str, ...] = ()
    shadow_writes: bool = True
    shadow_queue: int = 256
    sla_ms: dict[str, float] = field(default_factory=dict)
    sla_default_ms: float = 1000.0
    schema: bool = True
    log_level: str = "info"

    @classmethod
    def from_args(cls, args: Any, admin_key: str | None = None) -> ProxySettings:
        from llmstruct.migration.shadow import parse_sla

        try:
            legacy = UpstreamURL.parse(args.legacy)
            custom = UpstreamURL.parse(args.custom)
        except ValueError as exc:
            raise SettingsError(f"--legacy/--custom: {exc}") from None
        for name in ("connect_timeout", "read_timeout", "sla_default_ms"):
            if not getattr(args, name) > 0:
                raise SettingsError(f"--{name.replace('_', '-')} must be > 0")
        for name in ("max_connections", "shadow_queue"):
            if getattr(args, name) < 1:
                raise SettingsError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 <= args.port <= 65535:
            raise SettingsError(f"--port must be 0..65535, got {args.port}")
        if admin_key is not None and len(admin_key) < 16:
            raise SettingsError("--admin-key: too short to be a secret (16 characters at least)")
        if admin_key is not None and not _VISIBLE_ASCII.fullmatch(admin_key):
            raise SettingsError("--admin-key: visible ASCII characters only (clients send it "
                                "in a header)")  # fmt: skip
        try:
            sla = parse_sla(args.sla_ms or ())
        except ValueError as exc:
            raise SettingsError(f"--sla-ms: {exc}") from None
        sticky = args.sticky_header
        if sticky is not None and not _TOKEN.fullmatch(sticky):
            raise SettingsError(f"--sticky-header: {sticky!r} is not a header name (RFC 9110)")
        return cls(
            legacy=legacy, custom=custom, weight=parse_weight(args.weight),
            sticky_header=sticky, mode=args.mode, host=args.host, port=args.port,
            admin_key=admin_key, connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout, max_connections=args.max_connections,
            ignore_fields=tuple(args.ignore_field or ()), shadow_writes=args.shadow_writes,
            shadow_queue=args.shadow_queue, sla_ms=sla, sla_default_ms=args.sla_default_ms,
            schema=not args.no_schema, log_level=args.log_level,
        )  # fmt: skip


# -- where a request goes --------------------------------------------------------------------------
def hash_point(value: bytes) -> float:
    """A stable point in [0, 1) for a sticky header value (blake2b, 64 bits)."""
    digest = hashlib.blake2b(value, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Splitter:
    """Picks ``custom`` or ``legacy`` for each request (see the module docstring)."""

    def __init__(self, weight: float, sticky_header: str | None) -> None:
        self.weight = weight
        self.sticky = sticky_header.lower().encode("latin-1") if sticky_header else None
        self._credit = 0.0

    def set_weight(self, weight: float) -> None:
        self.weight = weight
        self._credit = 0.0

    def choose(self, headers: list[tuple[bytes, bytes]]) -> str:
        if self.sticky is not None:
            for name, value in headers:
                if name == self.sticky:
                    return CUSTOM if hash_point(value) < self.weight else LEGACY
        weight = self.weight
        if weight <= 0.0:
            return LEGACY
        if weight >= 1.0:
            return CUSTOM
        self._credit += weight
        if self._credit >= 1.0:
            self._credit -= 1.0
            return CUSTOM
        return LEGACY


# -- headers ---------------------------------------------------------------------------------------
def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    named = [
        token.strip().lower()
        for name, value in headers
        if name == b"connection"
        for token in value.split(b",")
    ]
    return frozenset(named)


def request_headers(request: Request) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
    """The headers to send upstream, the body's Content-Length (None: unknown) and whether the
    request has a body at all."""
    raw = request.raw_headers
    extra = _connection_tokens(raw)
    out: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    forwarded_for = b""
    host = b""
    proto = False
    for name, value in raw:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"host":
            host = value
        elif name == b"x-forwarded-for":
            forwarded_for = value
            continue
        elif name == b"x-forwarded-proto":
            proto = True
        if name in HOP_BY_HOP or name in extra:
            continue
        out.append((name, value))
    client = request.client[0].encode() if request.client else b"unknown"
    out.append((b"x-forwarded-for", forwarded_for + b", " + client if forwarded_for else client))
    if not proto:
        out.append((b"x-forwarded-proto", b"http"))
    if host:
        out.append((b"x-forwarded-host", host))
    out.append(VIA)
    has_body = chunked or bool(length)
    return out, (None if chunked else length), has_body


def response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    extra = _connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in RESPONSE_DROPPED and n not in extra]


def _target(request: Request) -> str:
    if request.query_string:
        return f"{request.path}?{request.query_string.decode('latin-1')}"
    return request.path


# -- the app ---------------------------------------------------------------------------------------
class ProxyApp(App):
    """An ``App`` whose routes are the admin API; every other path is forwarded."""

    def __init__(self, settings: ProxySettings) -> None:
        from llmstruct.migration.proxy_admin import AdminAuth, add_admin_routes

        super().__init__([AdminAuth(settings.admin_key)])
        self.settings = settings
        self.splitter = Splitter(settings.weight, settings.sticky_header)
        self.stats = ProxyStats()
        self.pools = {
            name: UpstreamPool(
                getattr(settings, name),
                max_connections=settings.max_connections,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
            )
            for name in BACKENDS
        }
        self.shadow: Any = None
        if settings.mode == "shadow":
            from llmstruct.migration.shadow import Shadow

            self.shadow = Shadow(settings, self.pools[CUSTOM], self.stats)
        add_admin_routes(self)

    # -- lifecycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        if self.shadow is not None:
            await self.shadow.start()

    async def aclose(self) -> None:
        if self.shadow is not None:
            await self.shadow.stop()
        for pool in self.pools.values():
            await pool.aclose()

    def config(self) -> dict[str, Any]:
        return {
            "mode": self.settings.mode,
            "weight": self.splitter.weight,
            "sticky_header": self.settings.sticky_header,
            "legacy": str(self.settings.legacy),
            "custom": str(self.settings.custom),
        }

    # -- the protocol's questions ----------------------------------------------------------
    def handle(self, request: Request) -> Any:
        if request.path.startswith(ADMIN_PREFIX):
            return super().handle(request)
        return self._forward(request)

    def is_websocket(self, request: Request) -> bool:
        if request.method != "GET" or request.path.startswith(ADMIN_PREFIX):
            return False
        upgrade = request.headers.get("upgrade") or ""
        return "websocket" in upgrade.lower()

    def handle_websocket(self, request: Request) -> Any:
        from llmstruct.migration.proxy_ws import relay_handler

        side = LEGACY if self.shadow is not None else self.splitter.choose(request.raw_headers)
        self.stats.websocket(side)
        return relay_handler(self.pools[side], request, self.settings.connect_timeout)

    # -- forwarding ------------------------------------------------------------------------
    async def _forward(self, request: Request) -> Response:
        try:
            if self.shadow is not None:
                return await self._forward_shadow(request)
            return await self._forward_split(request)
        except Exception as exc:  # a bad or vanished client body: 413, 408, 400, 499
            return self._error(request, exc)

    async def _forward_split(self, request: Request) -> Response:
        side = self.splitter.choose(request.raw_headers)
        headers, length, has_body = request_headers(request)
        body: bytes | AsyncIterator[bytes] | None = None
        if has_body:
            if length is not None and length <= RETRY_BODY_LIMIT:
                body = await request.body()
            else:
                body = request.stream()
        try:
            upstream = await self.pools[side].request(
                request.method, _target(request), headers, body, length
            )
        except UpstreamError as exc:
            return self._failed(side, request, exc)
        return await self._respond(side, request, upstream, None)

    async def _forward_shadow(self, request: Request) -> Response:
        headers, _length, has_body = request_headers(request)
        body = await request.body() if has_body else None
        target = _target(request)
        try:
            upstream = await self.pools[LEGACY].request(request.method, target, headers, body)
        except UpstreamError as exc:
            return self._failed(LEGACY, request, exc)
        job = self.shadow.job(request, target, headers, body)
        return await self._respond(LEGACY, request, upstream, job)

    def _failed(self, side: str, request: Request, exc: UpstreamError) -> Response:
        self.stats.record(side, exc.status, time.perf_counter() - request.started, failure=True)
        log.warning("%s %s -> %s: %s", request.method, request.path, side, exc.detail)
        return error_json(exc.status, exc.detail)

    async def _respond(
        self, side: str, request: Request, upstream: UpstreamResponse, job: Any
    ) -> Response:
        headers = response_headers(upstream.headers)
        length = upstream.content_length
        if length is not None and length <= BUFFER_LIMIT:
            try:
                data = await upstream.read()
            except UpstreamError as exc:
                return self._failed(side, request, exc)
            self.stats.record(side, upstream.status, time.perf_counter() - request.started)
            if job is not None:
                self.shadow.submit(job, upstream.status, upstream.headers, data)
            response = Response(data, upstream.status)
            response.headers = headers
            return response
        relay = _Relay(self, side, request, upstream, job)
        response = StreamingResponse(relay, upstream.status)
        response.headers = headers
        return response


class _Relay:
    """A streamed upstream body on its way to the client.

    The server calls ``aclose`` when the response ends, also when it never started
    (the client left first): that is where the upstream connection goes back to its
    pool and the request is counted, exactly once. An upstream failure midway ends
    the client's response unfinished: ``ClientDisconnect`` makes the protocol close
    without the last chunk, so the client sees a truncated body, never a short one.
    """

    def __init__(
        self, app: ProxyApp, side: str, request: Request, upstream: UpstreamResponse, job: Any
    ) -> None:
        self.app = app
        self.side = side
        self.request = request
        self.upstream = upstream
        self.job = job
        self.copy: list[bytes] | None = [] if job is not None else None
        self.copied = 0
        self.failed = False
        self.finished = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.upstream.chunks():
                if self.copy is not None:
                    self.copied += len(chunk)
                    if self.copied > self.app.shadow.body_limit:
                        self.copy = None  # too large to compare: compared without it
                    else:
                        self.copy.append(chunk)
                yield chunk
        except UpstreamError as exc:
            self.failed = True
            request = self.request
            log.warning("%s %s -> %s failed mid-stream: %s",
                        request.method, request.path, self.side, exc.detail)  # fmt: skip
            raise ClientDisconnect() from None
        else:
            self._finish(complete=True)

    async def aclose(self) -> None:
        await self.upstream.aclose()
        self._finish(complete=False)

    def _finish(self, complete: bool) -> None:
        if self.finished:
            return
        self.finished = True
        status = 502 if self.failed else self.upstream.status
        elapsed = time.perf_counter() - self.request.started
        self.app.stats.record(self.side, status, elapsed, failure=self.failed)
        if self.job is not None and complete:
            body = b"".join(self.copy) if self.copy is not None else None
            self.app.shadow.submit(self.job, status, self.upstream.headers, body)


# -- running it ------------------------------------------------------------------------------------
def serve_proxy(settings: ProxySettings) -> int:
    """Serve the proxy until SIGTERM/SIGINT; 0 after a graceful stop, 2 if it cannot listen."""
    import sys

    from llmstruct.server.serve import _loop_factory, _raise_fd_limit, _setup_logging

    _setup_logging(settings.log_level)
    from llmstruct.server.limits import DEFAULT_LIMITS

    _raise_fd_limit(DEFAULT_LIMITS.max_connections + 2 * settings.max_connections + 64)
    try:
        from llmstruct.server.listener import bind_socket

        sock = bind_socket(settings.host, settings.port, DEFAULT_LIMITS.backlog)
    except (OSError, ValueError) as exc:
        print(f"llmstruct: error: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    # The Runner cancels what is still pending at the end (a request whose upstream
    # never answered, past the drain), instead of the loop destroying it mid-await.
    with asyncio.Runner(loop_factory=_loop_factory("auto")) as runner:
        return runner.run(_serve(settings, sock))


async def _serve(settings: ProxySettings, sock: Any) -> int:
    import signal
    import sys

    from llmstruct.server.limits import DEFAULT_LIMITS
    from llmstruct.server.listener import Server

    app = ProxyApp(settings)
    await app.startup()
    # The proxy's own limits are the server's defaults, but the keep-alive cap is lifted:
    # a load balancer or a benchmark holds its connections for many requests.
    limits = DEFAULT_LIMITS.replace(max_keepalive_requests=1_000_000)
    server = Server(app, limits, "auto")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server.start(sock)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config = app.config()
    print(
        f"llmstruct: proxy on http://{host}:{sock.getsockname()[1]} (mode={config['mode']}, "
        f"weight={config['weight']}, legacy={config['legacy']}, custom={config['custom']})",
        file=sys.stderr,
        flush=True,
    )
    if config["mode"] == "shadow" and settings.shadow_writes:
        # The proxy cannot see the backends' disks; a shared root is the README's split
        # set-up, and in shadow mode it doubles every write the clients make.
        print(
            "llmstruct: shadow mode mirrors writes: the custom server needs its own copy "
            "of the project (on the legacy one's root every create is stored twice); "
            "--no-shadow-writes mirrors reads only",
            file=sys.stderr,
            flush=True,
        )
    await stop.wait()
    await server.shutdown()
    await app.aclose()
    return 0
