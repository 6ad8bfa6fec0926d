"""WebSocket connections on wsproto: the protocol an upgraded connection is handed to.

Hand-over. When the HTTP protocol has a valid, authorised upgrade request for a
WebSocket route, it stops handling the connection and does::

    ws = WebSocketProtocol(handler, limits)
    transport.set_protocol(ws)
    ws.connection_made(transport)
    ws.data_received(raw_request_head + bytes_read_after_it)

From then on this module alone writes to the transport. wsproto performs the
opening handshake from the raw head (a bad one gets its 400/426 and a close),
the server accepts without extensions (permessage-deflate is never negotiated)
and runs ``await handler(ws)`` in a task, ``ws`` being the ``WebSocket`` of
``ws_socket.py``. The handler returning closes with 1000, raising with 1011.
Every protocol registers in a ``WebSocketConnections`` (``ws_registry.py``) so
that shutdown can close them all with 1001.

Closing (RFC 6455 §7). A Close from the peer is echoed and the server closes the
TCP connection (§7.1.1: the server closes first). A close started here (the
handler, shutdown with 1001, a missed pong with 1011) waits ``ws_close_timeout``
for the echo. A peer that breaks the protocol is failed at once (§7.1.7): a
Close with 1002 (framing), 1007 (invalid UTF-8) or 1009 (message over
``ws_max_message``), then the transport is closed. Every close ends in
``transport.close()`` with an abort ``ws_close_timeout`` later if the peer does
not take the last bytes, so no connection outlives its timers.

Flow control. Outgoing frames go straight to the transport while it accepts
them; while it is paused (above its high-water mark) they wait in an outbox, and
a sender waits once the outbox holds ``ws_send_queue`` messages. A transport
paused for ``send_timeout`` is aborted. Incoming: reading pauses while the
handler has ``RECEIVE_QUEUE`` unread messages (or ``ws_max_message`` bytes of
them), and while writing is paused, so a peer that sends pings but never reads
cannot grow the outbox. Keepalive pings are only owed an answer while reading
is on: a peer is never blamed for our own backpressure.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import Enum
from http import HTTPStatus
from typing import Any, cast

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from llmstruct.server.limits import DEFAULT_LIMITS, Limits
from llmstruct.server.ws_registry import CONNECTIONS, GOING_AWAY, WebSocketConnections
from llmstruct.server.ws_socket import ConnectionClosed, WebSocket

__all__ = [
    "CONNECTIONS",
    "GOING_AWAY",
    "ConnectionClosed",
    "WebSocket",
    "WebSocketConnections",
    "WebSocketProtocol",
]

logger = logging.getLogger("llmstruct.server.websocket")

Handler = Callable[[WebSocket], Awaitable[None]]

# Unread incoming messages before the socket stops being read. The websockets
# library's max_queue (16 frames) bounds the same thing; uvicorn stops after one.
RECEIVE_QUEUE = 16
# Close codes (RFC 6455 §7.4.1).
NORMAL, INTERNAL_ERROR, ABNORMAL = 1000, 1011, 1006
SERVER_HEADER = (b"server", b"llmstruct")


class _State(Enum):
    HANDSHAKE = 1  # waiting for the complete request head
    OPEN = 2
    CLOSING = 3  # our Close sent, waiting for the echo
    CLOSED = 4  # no more frames either way; the transport is closing or gone


class WebSocketProtocol(asyncio.Protocol):
    """One upgraded connection: wsproto in the middle, the handler task on top.

    ``limits`` supplies every size and timeout (``ws_*``, ``send_timeout``, and
    ``header_timeout``/``max_head_bytes`` for a head that arrives incomplete).
    ``path_params`` (from the router) are shown to the handler as
    ``ws.path_params``; ``extra_headers`` are added to the 101 response.
    """

    def __init__(
        self,
        handler: Handler,
        limits: Limits = DEFAULT_LIMITS,
        *,
        connections: WebSocketConnections | None = None,
        path_params: Mapping[str, str] | None = None,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self._handler = handler
        self._limits = limits
        self._connections = CONNECTIONS if connections is None else connections
        self._path_params = dict(path_params or {})
        self._extra_headers = [SERVER_HEADER, *extra_headers]
        self._conn = WSConnection(ConnectionType.SERVER)
        self._state = _State.HANDSHAKE
        self._head = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.socket: WebSocket | None = None  # made by the handshake
        self.task: asyncio.Task[None] | None = None  # the handler
        self.done: asyncio.Future[None] | None = None  # resolved by connection_lost
        self._closed: ConnectionClosed | None = None  # why no more messages come
        # receive side
        self._inbox: deque[tuple[str | bytes, int]] = deque()  # (message, its size)
        self._inbox_bytes = 0
        self._parts: list[Any] = []  # fragments of the message being received
        self._parts_bytes = 0
        self._reader: asyncio.Future[None] | None = None
        self._read_paused = False
        # send side
        self._outbox: deque[bytes] = deque()
        self._write_paused = False
        self._senders: deque[asyncio.Future[None]] = deque()
        # timers
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ping_payload: bytes | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self.done = self._loop.create_future()
        self._connections.add(self)
        high = self._transport.get_write_buffer_limits()[1]
        self._write_paused = self._transport.get_write_buffer_size() > high
        if not self._transport.is_reading():  # the HTTP side may have paused it
            self._transport.resume_reading()
        self._timer("handshake", self._limits.header_timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._state is _State.HANDSHAKE:
            self._receive_head(data)
        elif self._state is not _State.CLOSED:
            self._receive_frames(data)

    def eof_received(self) -> bool | None:
        # A half-close without a Close frame: nothing more will come (1006), and
        # a WebSocket has no use for the half that is left.
        self._finish(ConnectionClosed(ABNORMAL, "peer closed the connection"))
        self._close_transport()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _State.CLOSED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._finish(ConnectionClosed(ABNORMAL, "connection lost"))
        self._connections.discard(self)
        self._outbox.clear()
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._timer("send", self._limits.send_timeout, self._send_timed_out)
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._cancel_timer("send")
        assert self._transport is not None
        while self._outbox and not self._write_paused:
            self._transport.write(self._outbox.popleft())
        self._wake_senders()
        self._update_reading()

    # -- opening handshake -----------------------------------------------------------------

    def _receive_head(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > self._limits.max_head_bytes:
                self._reject(431)
            return
        head, rest = bytes(self._head[: end + 4]), bytes(self._head[end + 4 :])
        self._head = bytearray()
        self._cancel_timer("handshake")
        try:
            self._conn.receive_data(head)
            request = next((e for e in self._conn.events() if isinstance(e, Request)), None)
            if request is None:  # h11 wants more (a body?): not an upgrade we serve
                raise RemoteProtocolError("incomplete upgrade request", RejectConnection())
            # No extensions: permessage-deflate is never accepted, whatever is offered.
            accept = AcceptConnection(extensions=[], extra_headers=self._extra_headers)
            response = self._conn.send(accept)
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            if isinstance(hint, RejectConnection):
                self._reject(hint.status_code, hint.headers)
            else:
                self._reject(400)
            return
        except (LocalProtocolError, h11.ProtocolError):  # h11 would not send the 101
            self._reject(400)
            return
        self._accept(request, response)
        if rest and self._state is _State.OPEN:
            self._receive_frames(rest)

    def _accept(self, request: Request, response: bytes) -> None:
        assert self._transport is not None and self._loop is not None
        self._transport.write(response)
        self._state = _State.OPEN
        self.socket = WebSocket(self, request, self._path_params, self._client())
        self._schedule_ping()
        self.task = self._loop.create_task(self._run_handler(self.socket))

    def _reject(self, status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Answer the upgrade request with ``status`` and close (written here, not by
        wsproto, whose h11 may be in a state that cannot send it)."""
        assert self._transport is not None
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
        lines += [b"%s: %s" % (name, value) for name, value in headers]
        lines += [b"content-length: 0", b"connection: close", b"", b""]
        self._transport.write(b"\r\n".join(lines))
        self._finish(ConnectionClosed(ABNORMAL, f"handshake rejected ({status})"))
        self._close_transport()

    def _handshake_timed_out(self) -> None:
        self._timers.pop("handshake", None)
        self._reject(408)

    def _client(self) -> tuple[str, int] | None:
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None

    # -- frames in ----------------------------------------------------------------------------

    def _receive_frames(self, data: bytes) -> None:
        try:
            self._conn.receive_data(data)
        except LocalProtocolError:  # bytes after the closing handshake completed
            self._close_transport()
            return
        for event in self._conn.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._receive_part(event)
            elif isinstance(event, Ping):
                if self._conn.state is ConnectionState.OPEN:
                    self._write(self._conn.send(event.response()))
            elif isinstance(event, Pong):
                self._receive_pong(event.payload)
            elif isinstance(event, CloseConnection):
                self._receive_close(event)
            if self._state is _State.CLOSED:
                break
        self._update_reading()

    def _receive_part(self, event: TextMessage | BytesMessage) -> None:
        if self._state is not _State.OPEN:
            return  # after our Close, data is discarded (RFC 6455 §5.5.1)
        data = event.data
        # The cap is in bytes; an ASCII str (O(1) to check) has one byte per char.
        size = (
            len(data)
            if isinstance(data, bytes | bytearray) or data.isascii()
            else len(data.encode())
        )
        self._parts_bytes += size
        if self._parts_bytes > self._limits.ws_max_message:
            self._fail(1009, f"message over {self._limits.ws_max_message} bytes")
            return
        self._parts.append(data)
        if not event.message_finished:
            return
        if len(self._parts) == 1:
            message = self._parts[0]
        else:
            message = "".join(self._parts) if isinstance(data, str) else b"".join(self._parts)
        if isinstance(message, bytearray):
            message = bytes(message)
        self._inbox.append((message, self._parts_bytes))
        self._inbox_bytes += self._parts_bytes
        self._parts, self._parts_bytes = [], 0
        self._wake_reader()

    def _receive_close(self, event: CloseConnection) -> None:
        state = self._conn.state
        if state is ConnectionState.REMOTE_CLOSING:  # the peer closes: echo, then close TCP
            self._write(self._conn.send(event.response()))
            self._finish(ConnectionClosed(event.code, event.reason or ""))
            self._close_transport()
        elif state is ConnectionState.CLOSED:  # the echo of our Close
            self._close_transport()
        else:  # wsproto reports a protocol error (1002) or invalid UTF-8 (1007)
            self._fail(event.code, event.reason or "")

    def _receive_pong(self, payload: bytes | bytearray) -> None:
        if self._ping_payload is not None and bytes(payload) == self._ping_payload:
            self._ping_payload = None
            self._cancel_timer("pong")
            self._schedule_ping()

    # -- the handler's side (called by WebSocket) ---------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message; raises ``ConnectionClosed`` once none can come."""
        while not self._inbox:
            if self._closed is not None:
                raise ConnectionClosed(self._closed.code, self._closed.reason)
            if self._reader is not None:
                raise RuntimeError("another task is already waiting in receive()")
            assert self._loop is not None
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        message, size = self._inbox.popleft()
        self._inbox_bytes -= size
        self._update_reading()
        return message

    async def send(self, data: str | bytes) -> None:
        """Queue one message; waits while the outbox is full (see the module docstring)."""
        while True:
            if self._state is not _State.OPEN or self._closed is not None:
                closed = self._closed or ConnectionClosed(ABNORMAL, "not open")
                raise ConnectionClosed(closed.code, closed.reason)
            if len(self._outbox) < self._limits.ws_send_queue:
                break
            assert self._loop is not None
            waiter = self._loop.create_future()
            self._senders.append(waiter)
            await waiter
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self._write(self._conn.send(event))

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake (idempotent); ``done`` resolves when it is over."""
        if self._state is _State.HANDSHAKE:
            self._reject(503)
        elif self._state is _State.OPEN:
            self._write(self._conn.send(CloseConnection(code=code, reason=reason)))
            self._state = _State.CLOSING
            self._finish(ConnectionClosed(code, reason))
            self._timer("close", self._limits.ws_close_timeout, self._close_transport)

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closing or closed, else None."""
        return None if self._closed is None else self._closed.code

    async def _run_handler(self, ws: WebSocket) -> None:
        try:
            await self._handler(ws)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("WebSocket handler for %s failed", ws.path)
            self.close(INTERNAL_ERROR, "internal error")
        finally:
            self.close(NORMAL)

    # -- frames out, closing, keepalive --------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        if self._outbox or self._write_paused:
            self._outbox.append(data)
        else:
            self._transport.write(data)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 §7.1.7): a Close with ``code``, then close TCP."""
        if self._conn.state is ConnectionState.OPEN:
            self._write(self._conn.send(CloseConnection(code=code, reason=reason)))
        self._finish(ConnectionClosed(code, reason))
        self._close_transport()

    def _finish(self, closed: ConnectionClosed) -> None:
        """Record why the connection ended (the first reason wins) and wake the handler."""
        if self._closed is None:
            self._closed = closed
        self._cancel_timer("ping")
        self._cancel_timer("pong")
        self._wake_reader()
        self._wake_senders(everyone=True)

    def _close_transport(self) -> None:
        if self._state is _State.CLOSED or self._transport is None:
            return
        self._state = _State.CLOSED
        self._cancel_timer("close")
        while self._outbox:  # hand the queued frames (and the last Close) to the transport
            self._transport.write(self._outbox.popleft())
        self._transport.close()
        # close() waits for the buffer to drain; a peer that never reads gets an abort.
        self._timer("abort", self._limits.ws_close_timeout, self._transport.abort)

    def _send_timed_out(self) -> None:
        self._timers.pop("send", None)
        logger.info("WebSocket peer %s stopped reading; aborting", self._client())
        self._finish(ConnectionClosed(ABNORMAL, "send timeout"))
        self.abort()

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        self._state = _State.CLOSED
        if self._transport is not None:
            self._transport.abort()

    def _schedule_ping(self) -> None:
        if self._state is _State.OPEN:
            self._timer("ping", self._limits.ws_ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        self._timers.pop("ping", None)
        if self._state is not _State.OPEN:
            return
        if self._read_paused:  # we could not read the pong: try again later
            self._schedule_ping()
            return
        self._ping_payload = os.urandom(4)  # names this ping; stale pongs do not match
        self._write(self._conn.send(Ping(payload=self._ping_payload)))
        self._timer("pong", self._limits.ws_ping_timeout, self._pong_missed)

    def _pong_missed(self) -> None:
        self._timers.pop("pong", None)
        if self._state is not _State.OPEN:
            return
        if self._read_paused:  # the pong may be waiting unread behind our backpressure
            self._timer("pong", self._limits.ws_ping_timeout, self._pong_missed)
            return
        # websockets and uvicorn close an unresponsive peer with 1011 too.
        self._fail(INTERNAL_ERROR, "keepalive ping timeout")

    # -- small helpers --------------------------------------------------------------------------

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._state is _State.CLOSED:
            return
        backlog = self._state is _State.OPEN and (
            len(self._inbox) >= RECEIVE_QUEUE or self._inbox_bytes >= self._limits.ws_max_message
        )
        pause = backlog or self._write_paused
        if pause and not self._read_paused:
            transport.pause_reading()
            self._read_paused = True
        elif not pause and self._read_paused:
            transport.resume_reading()
            self._read_paused = False

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _wake_senders(self, everyone: bool = False) -> None:
        room = len(self._senders) if everyone else self._limits.ws_send_queue - len(self._outbox)
        while self._senders and room > 0:
            waiter = self._senders.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def _timer(self, name: str, delay: float, callback: Callable[[], object]) -> None:
        assert self._loop is not None
        self._cancel_timer(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()
