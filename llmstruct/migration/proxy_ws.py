"""WebSocket relay: the proxy's side of an upgraded connection.

The proxy's server accepts the upgrade itself (``websocket.py``), then this
handler opens a client connection to the chosen upstream with wsproto over an
asyncio stream, sends the same target with the client's end-to-end headers (the
API key among them; hop-by-hop and handshake fields are the new connection's
own), and relays whole messages both ways until one side closes:

* the client closes with code C -> the upstream gets a Close with C (1001 when
  the client vanished without one), and its echo is awaited briefly;
* the upstream closes with C -> the client gets a Close with C (1011 when the
  upstream vanished without one).

The upstream's verdict on the handshake arrives after the client's 101 was sent
(the server's upgrade hook cannot wait), so a refusal becomes a Close: 1008
(policy violation) with the upstream status in the reason for a 4xx (a missing
or wrong API key), 1011 with a "Bad Gateway: ..." reason for an unreachable
upstream or a 5xx. (The IANA registry's 1014 "Bad Gateway" would say it better,
but wsproto, and so clients built on it, reject 1012-1014 as reserved.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.events import Request as WSRequest
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from llmstruct.server.ws_socket import ConnectionClosed

if TYPE_CHECKING:
    from llmstruct.migration.upstream import UpstreamPool
    from llmstruct.server.app import Request
    from llmstruct.server.ws_socket import WebSocket

__all__ = ["relay_handler"]

log = logging.getLogger("llmstruct.proxy")

POLICY, GOING_AWAY, INTERNAL = 1008, 1001, 1011
BAD_GATEWAY = INTERNAL  # see the module docstring
CLOSE_WAIT = 5.0  # seconds for the upstream to echo our Close
READ_SIZE = 64 * 1024
# Handshake fields belong to each connection; the rest of the client's headers go on.
NOT_FORWARDED = frozenset(
    (b"host", b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version",
     b"sec-websocket-extensions", b"sec-websocket-accept", b"sec-websocket-protocol",
     b"keep-alive", b"te", b"transfer-encoding", b"proxy-connection", b"content-length")
)  # fmt: skip


def _sendable(code: int | None, fallback: int) -> int:
    if code is None or code in (1005, 1006, 1015):
        return fallback
    if 3000 <= code <= 4999 or 1000 <= code <= 1014 and code not in (1004,):
        return code
    return fallback


def relay_handler(pool: UpstreamPool, request: Request, connect_timeout: float) -> Any:
    """The ``async def handler(ws)`` relaying ``request``'s WebSocket to ``pool``'s upstream."""
    target = request.path + (
        "?" + request.query_string.decode("latin-1") if request.query_string else ""
    )
    client = request.client[0].encode() if request.client else b"unknown"
    headers = [(n, v) for n, v in request.raw_headers if n not in NOT_FORWARDED]
    headers.append((b"x-forwarded-for", client))
    url = pool.url

    async def handler(ws: WebSocket) -> None:
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(url.host, url.port)
        except (OSError, TimeoutError) as exc:
            log.warning("WebSocket %s -> %s unreachable: %s", target, url, exc)
            await ws.close(BAD_GATEWAY, "Bad Gateway: upstream unreachable")
            return
        try:
            await _Relay(ws, reader, writer).run(url.netloc, url.prefix + target, headers,
                                                 connect_timeout)  # fmt: skip
        finally:
            writer.transport.abort()

    return handler


class _Relay:
    def __init__(
        self, ws: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.ws = ws
        self.reader = reader
        self.writer = writer
        self.conn = WSConnection(ConnectionType.CLIENT)

    async def run(
        self, host: str, target: str, headers: list[tuple[bytes, bytes]], timeout: float
    ) -> None:
        ws = self.ws
        self.writer.write(self.conn.send(WSRequest(host=host, target=target,
                                                   extra_headers=headers)))  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                status = await self._handshake()
        except (OSError, TimeoutError, RemoteProtocolError) as exc:
            log.warning("WebSocket handshake with %s failed: %s", host, exc)
            await ws.close(BAD_GATEWAY, "Bad Gateway: upstream handshake failed")
            return
        if status != 101:
            code = POLICY if 400 <= status < 500 else BAD_GATEWAY
            await ws.close(code, f"upstream refused the upgrade ({status})")
            return
        up = asyncio.ensure_future(self._client_to_upstream())
        down = asyncio.ensure_future(self._upstream_to_client())
        try:
            done, _ = await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
            if down in done:
                upstream_code, reason = down.result()
                up.cancel()
                await ws.close(_sendable(upstream_code, INTERNAL), reason[:123])
            else:
                with contextlib.suppress(TimeoutError):  # the upstream's echo of our Close
                    async with asyncio.timeout(CLOSE_WAIT):
                        await asyncio.shield(down)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    async def _handshake(self) -> int:
        while True:
            data = await self.reader.read(READ_SIZE)
            self.conn.receive_data(data or None)
            for event in self.conn.events():
                if isinstance(event, AcceptConnection):
                    return 101
                if isinstance(event, RejectConnection):
                    return event.status_code
                if isinstance(event, RejectData):
                    continue
            if not data:
                raise OSError("upstream closed during the handshake")

    async def _send(self, event: Any) -> None:
        self.writer.write(self.conn.send(event))
        await self.writer.drain()

    async def _client_to_upstream(self) -> None:
        """Client messages upstream; when the client closes, the upstream gets its code."""
        ws = self.ws
        try:
            async for message in ws:
                if isinstance(message, str):
                    await self._send(TextMessage(data=message))
                else:
                    await self._send(BytesMessage(data=message))
            if self.conn.state is ConnectionState.OPEN:
                await self._send(CloseConnection(code=_sendable(ws.close_code, GOING_AWAY)))
        except (OSError, LocalProtocolError):
            return  # the upstream is gone: the other direction reports it

    async def _upstream_to_client(self) -> tuple[int | None, str]:
        """Upstream messages to the client, until the upstream closes: (code, reason)."""
        parts: list[Any] = []
        while True:
            try:
                data = await self.reader.read(READ_SIZE)
            except OSError:
                data = b""
            if not data:
                return None, "upstream connection lost"
            try:
                self.conn.receive_data(data)
            except RemoteProtocolError:
                return INTERNAL, "upstream protocol error"
            for event in self.conn.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    if event.message_finished:
                        message = parts[0] if len(parts) == 1 else type(parts[0])().join(parts)
                        parts = []
                        try:
                            await self.ws.send(message)
                        except ConnectionClosed:
                            return None, "client gone"
                elif isinstance(event, Ping):
                    with contextlib.suppress(OSError, LocalProtocolError):
                        await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    if self.conn.state is ConnectionState.REMOTE_CLOSING:
                        with contextlib.suppress(OSError, LocalProtocolError):
                            await self._send(event.response())
                    return event.code, event.reason or ""
