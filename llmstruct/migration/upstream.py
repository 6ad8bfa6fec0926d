"""Pooled HTTP/1.1 client connections to one upstream server, on h11.

Why not httpx: measured on this machine against the custom server on loopback
(one client, sequential keep-alive GETs of a small JSON body, server in another
process), a request costs ~65-105 µs with a raw socket, ~130-210 µs through an
h11 client on asyncio streams and ~900-1500 µs through ``httpx.AsyncClient``
(anyio and httpcore's per-request machinery). The proxy sits in front of a server
answering in ~100 µs; an extra millisecond per request would be most of what the
migration report measures. h11 is the same parser the server's reference backend
uses, and the pool below is small.

The pool. Up to ``max_connections`` connections per upstream (a semaphore: a
request waits ``pool_timeout`` for a slot, then is answered 503). Idle
connections are reused newest first and dropped after ``IDLE_EXPIRY`` seconds,
under the 5 s keep-alive timeout of uvicorn and of llmstruct's server, so we
rarely pick one the upstream is closing. A request that fails on a *reused*
connection before any response byte arrived is retried once on a new one when
its body can be sent again (none or bytes): that is the race with the upstream's
idle close, which urllib3 and httpcore retry too.

Timeouts: ``connect_timeout`` for the TCP connect, ``read_timeout`` for each
wait on the upstream (the response head, then each body read) and for each wait
while it does not take our request body. A timeout is ``UpstreamError(504)``; a
refused or broken connection, or an invalid response, ``UpstreamError(502)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

__all__ = ["UpstreamError", "UpstreamPool", "UpstreamResponse", "UpstreamURL", "IDLE_EXPIRY"]

IDLE_EXPIRY = 4.0  # seconds; below the 5 s keep-alive timeout of uvicorn and llmstruct serve
READ_SIZE = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024  # h11's max_incomplete_event_size for a response head


_HOST = re.compile(r"[^\s\x00-\x1f\x7f\"<>\\^`{|}%/?#@\[\]]+")  # no character a host cannot hold
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")  # RFC 3986 path characters


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


class UpstreamError(Exception):
    """The upstream could not answer: ``status`` (502, 503, 504) and ``detail`` for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class UpstreamURL:
    """``http://host[:port][/prefix]``: where one backend listens (https is not supported)."""

    host: str
    port: int
    prefix: str  # prepended to every forwarded target; "" for none

    @classmethod
    def parse(cls, url: str) -> UpstreamURL:
        try:
            parts = urlsplit(url)
            port = 80 if parts.port is None else parts.port
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: must be http://HOST[:PORT] (https is not supported)")
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r}: must not have a query or fragment")
        if not 0 < port < 65536:
            raise ValueError(f"{url!r}: the port must be in 1..65535")
        # Checked here, not found out as a 502 on every forwarded request.
        if not (_HOST.fullmatch(parts.hostname) or _is_ipv6(parts.hostname)):
            raise ValueError(f"{url!r}: {parts.hostname!r} is not a host name or address")
        if not _PATH.fullmatch(parts.path):
            raise ValueError(f"{url!r}: the path may only hold URL characters (%-encode others)")
        host = parts.hostname
        if not host.isascii():  # an internationalised name: its ASCII (punycode) form
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError(f"{url!r}: {host!r} is not a host name") from None
        return cls(host, port, parts.path.rstrip("/"))

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"http://{self.netloc}{self.prefix}"


class _Connection:
    __slots__ = ("reader", "writer", "h11", "idle_since", "reused", "received")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.idle_since = 0.0
        self.reused = False
        self.received = False  # a byte of the current response arrived

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < IDLE_EXPIRY
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


Body = bytes | AsyncIterator[bytes] | None


class UpstreamPool:
    """Keep-alive connections to one upstream; ``request`` sends one and returns its response."""

    def __init__(
        self,
        url: UpstreamURL,
        *,
        max_connections: int = 100,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        pool_timeout: float | None = None,
    ) -> None:
        self.url = url
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_timeout = connect_timeout if pool_timeout is None else pool_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: deque[_Connection] = deque()
        self._closed = False

    # -- the request -------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: Body = None,
        content_length: int | None = None,
    ) -> UpstreamResponse:
        """Send a request and wait for the response head.

        ``headers`` must hold no Host and no framing header: Host is the upstream's,
        framing is ``Content-Length`` for bytes (or the given ``content_length`` for
        a stream) and chunked for a stream of unknown length. Raises ``UpstreamError``.
        Exceptions raised by a streamed ``body`` (the client went away) propagate.
        """
        head = [(b"host", self.url.netloc.encode()), *headers]
        if isinstance(body, bytes):
            head.append((b"content-length", b"%d" % len(body)))
        elif body is not None:
            if content_length is not None:
                head.append((b"content-length", b"%d" % content_length))
            else:
                head.append((b"transfer-encoding", b"chunked"))
        try:
            async with asyncio.timeout(self.pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamError(503, "Upstream connection pool exhausted") from None
        try:
            return await self._send(method, self.url.prefix + target, head, body)
        except BaseException:
            self._slots.release()
            raise

    async def _send(
        self, method: str, target: str, head: list[tuple[bytes, bytes]], body: Body
    ) -> UpstreamResponse:
        replayable = body is None or isinstance(body, bytes)
        while True:
            conn = await self._connection()
            try:
                return await self._exchange(conn, method, target, head, body)
            except UpstreamError as exc:
                conn.close()
                if exc.status == 502 and conn.reused and not conn.received and replayable:
                    continue  # the upstream closed an idle connection under us: once more
                raise
            except BaseException:
                conn.close()
                raise

    async def _exchange(
        self, conn: _Connection, method: str, target: str,
        head: list[tuple[bytes, bytes]], body: Body,
    ) -> UpstreamResponse:  # fmt: skip
        try:
            data = conn.h11.send(h11.Request(method=method, target=target, headers=head))
            if body is None or isinstance(body, bytes):  # one write for the whole request
                data += conn.h11.send(h11.Data(data=body)) if body else b""
                conn.writer.write(data + conn.h11.send(h11.EndOfMessage()))
            else:
                conn.writer.write(data)
                async for chunk in body:
                    if chunk:
                        conn.writer.write(conn.h11.send(h11.Data(data=chunk)))
                        await self._drain(conn)
                conn.writer.write(conn.h11.send(h11.EndOfMessage()))
            await self._drain(conn)
            event = await self._next_event(conn)
            while isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                event = await self._next_event(conn)
        except TimeoutError:
            raise UpstreamError(504, f"Upstream {self.url} timed out") from None
        except (OSError, h11.ProtocolError) as exc:
            raise UpstreamError(502, f"Upstream {self.url} failed: {_reason(exc)}") from None
        if not isinstance(event, h11.Response):
            raise UpstreamError(502, f"Upstream {self.url} closed the connection")
        return UpstreamResponse(self, conn, event, method)

    async def _drain(self, conn: _Connection) -> None:
        transport = conn.writer.transport
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            async with asyncio.timeout(self.read_timeout):
                await conn.writer.drain()

    async def _next_event(self, conn: _Connection) -> object:
        while True:
            event = conn.h11.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise OSError("connection closed by the upstream")
                return event
            async with asyncio.timeout(self.read_timeout):
                data = await conn.reader.read(READ_SIZE)
            if data:
                conn.received = True
            conn.h11.receive_data(data)

    # -- connections ---------------------------------------------------------------------------
    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                conn.reused = True
                conn.received = False
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self.url.host, self.url.port, limit=READ_SIZE
                )
        except TimeoutError:
            raise UpstreamError(504, f"Upstream {self.url}: connect timed out") from None
        except OSError as exc:
            raise UpstreamError(502, f"Upstream {self.url} unreachable: {_reason(exc)}") from None
        return _Connection(reader, writer)

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed:
            try:
                conn.h11.start_next_cycle()
            except h11.ProtocolError:
                conn.close()
            else:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their response ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    @property
    def idle_connections(self) -> int:
        return len(self._idle)


class UpstreamResponse:
    """A response whose head has arrived: ``status``, ``headers`` (lower-case names), the body
    by ``read()`` or ``chunks()``. ``aclose()`` gives the connection back (or drops it if the
    body was not read to the end); every response must end in it, or in a full read."""

    __slots__ = ("status", "headers", "_pool", "_conn", "_done", "content_length", "_head_only")

    def __init__(
        self, pool: UpstreamPool, conn: _Connection, event: h11.Response, method: str
    ) -> None:
        self.status = event.status_code
        self.headers: list[tuple[bytes, bytes]] = list(event.headers)
        self._pool = pool
        self._conn: _Connection | None = conn
        self._done = False
        self._head_only = method == "HEAD" or self.status in (204, 304)
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    length = int(value)
        self.content_length = 0 if self._head_only else length

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises ``UpstreamError`` if the upstream fails midway."""
        conn = self._conn
        if conn is None:
            return
        pool = self._pool
        try:
            while True:
                event = await pool._next_event(conn)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
        except TimeoutError:
            await self.aclose()
            raise UpstreamError(504, f"Upstream {pool.url} timed out") from None
        except (OSError, h11.ProtocolError) as exc:
            await self.aclose()
            raise UpstreamError(502, f"Upstream {pool.url} failed: {_reason(exc)}") from None
        self._finish(reusable=conn.h11.our_state is h11.DONE)

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; ``UpstreamError(502)`` beyond ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if limit is not None and size > limit:
                await self.aclose()
                raise UpstreamError(502, f"Upstream response larger than {limit} bytes")
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _finish(self, reusable: bool) -> None:
        if not self._done and self._conn is not None:
            self._done = True
            conn, self._conn = self._conn, None
            self._pool._release(conn, reusable)

    async def aclose(self) -> None:
        """Release the connection: reusable only if the body was read to the end."""
        self._finish(reusable=False)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."
