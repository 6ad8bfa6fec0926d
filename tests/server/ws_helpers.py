"""Helpers for the WebSocket tests: a real server on loopback and a raw RFC 6455 client.

The client is written from RFC 6455 directly (no wsproto), so a bug shared by
wsproto's client and server halves cannot hide; it can also send what a real
client never would (unmasked frames, reserved bits, bad lengths).

Tests are ``async def`` functions wrapped by ``@async_test``: each runs in a
fresh event loop with an overall deadline (only a guard against hangs; no test
asserts on timing), and the loop is closed afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmstruct.server.app import App
from llmstruct.server.limits import DEFAULT_LIMITS, Limits
from llmstruct.server.listener import Server, bind_socket
from tests.server.helpers import driver_for

# Opcodes (RFC 6455 §5.2).
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEADLINE = 20.0  # seconds for a whole test: a hang guard, never a measurement
READ_TIMEOUT = 5.0  # for one expected frame

# Small timeouts so the tests exercise them quickly (see the non-negotiables).
FAST = DEFAULT_LIMITS.replace(
    ws_ping_interval=60.0, ws_close_timeout=0.5, send_timeout=5.0, header_timeout=2.0
)


def async_test(fn: Callable[..., Awaitable[None]] | None = None, *, deadline: float = DEADLINE):
    """Run the coroutine test ``fn`` in a new event loop, bounded by ``deadline`` seconds.

    Use as ``@async_test`` or ``@async_test(deadline=...)``.
    """

    def wrap(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                await asyncio.wait_for(fn(*args, **kwargs), deadline)

            asyncio.run(bounded())

        return run

    return wrap if fn is None else wrap(fn)


@contextlib.asynccontextmanager
async def running_server(
    app: App, limits: Limits = FAST, http: str = "h11"
) -> AsyncIterator[tuple[Server, int]]:
    """The real server, one worker in this loop, on a free loopback port (``http``: an
    ``--http`` choice or a ``BACKENDS`` id)."""
    server = Server(app, limits, http=driver_for(http))
    sock = bind_socket("127.0.0.1", 0, 128)
    port = sock.getsockname()[1]
    server.start(sock)
    try:
        yield server, port
    finally:
        await server.shutdown(timeout=2.0)


def handshake_request(path: str = "/echo", key: bytes | None = None, extra: bytes = b"") -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16))
    return (
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (path.encode(), key, extra)
    )


def accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def encode_frame(
    opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One frame as a client sends it (masked unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _xor(payload, key)


def _xor(data: bytes, key: bytes) -> bytes:
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


class RawClient:
    """A WebSocket client over a plain asyncio stream, frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.response_head = b""

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/echo",
        extra: bytes = b"",
        tail: bytes = b"",
        rcvbuf: int | None = None,
    ) -> RawClient:
        """Open the connection and complete the handshake (``tail`` is sent with the head).

        ``rcvbuf`` shrinks the socket's receive buffer, for a client that stops reading.
        """
        client = await cls.open(port, rcvbuf)
        key = base64.b64encode(os.urandom(16))
        client.writer.write(handshake_request(path, key, extra) + tail)
        head = await client.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        expected = b"\r\nsec-websocket-accept: " + accept_token(key).lower() + b"\r\n"
        assert expected in head.lower(), head
        return client

    @classmethod
    async def open(cls, port: int, rcvbuf: int | None = None) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        return cls(reader, writer)

    async def read_head(self) -> bytes:
        self.response_head = await asyncio.wait_for(
            self.reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT
        )
        return self.response_head

    def send_frame(self, opcode: int, payload: bytes = b"", **options: Any) -> None:
        self.writer.write(encode_frame(opcode, payload, **options))

    def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())

    def send_binary(self, data: bytes) -> None:
        self.send_frame(BINARY, data)

    async def recv_frame(self, timeout: float = READ_TIMEOUT) -> Frame:
        async def read() -> Frame:
            first, second = await self.reader.readexactly(2)
            assert not second & 0x80, "server frames must not be masked"
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            return Frame(bool(first & 0x80), first & 0x0F, payload)

        return await asyncio.wait_for(read(), timeout)

    async def recv_message(self, answer_pings: bool = True) -> tuple[int, bytes]:
        """The next data message as (opcode, payload), answering pings on the way."""
        opcode, parts = None, []
        while True:
            frame = await self.recv_frame()
            if frame.opcode == PING:
                if answer_pings:
                    self.send_frame(PONG, frame.payload)
                continue
            assert frame.opcode != CLOSE, f"closed: {frame.close_code} {frame.close_reason}"
            opcode = frame.opcode if opcode is None else opcode
            parts.append(frame.payload)
            if frame.fin:
                return opcode, b"".join(parts)

    async def recv_close(self) -> Frame:
        """Skip data and pings until the server's Close frame, and return it."""
        while True:
            frame = await self.recv_frame()
            if frame.opcode == CLOSE:
                return frame

    async def at_eof(self, timeout: float = READ_TIMEOUT) -> bool:
        """Whether the server closed the TCP connection (reading gives EOF or a reset)."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except ConnectionResetError:
            return True
        while data:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        return True

    async def close_handshake(self, code: int = 1000) -> Frame:
        """Send a Close, read the echo, and see the server close TCP."""
        self.send_frame(CLOSE, close_payload(code))
        echo = await self.recv_close()
        assert await self.at_eof()
        return echo

    def reset(self) -> None:
        """Drop the connection with a TCP reset (SO_LINGER 0), as a crashed client would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def echo_app() -> App:
    """An app with the echo handler Autobahn expects on ``/echo``."""
    app = App()

    @app.websocket("/echo")
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    return app


def only_websocket(server: Server) -> Any:
    """The one open ``WebSocketProtocol`` of ``server``."""
    (protocol,) = list(server.state.websockets)
    return protocol


async def wait_for(predicate: Callable[[], bool], timeout: float = READ_TIMEOUT) -> None:
    """Poll ``predicate`` until it holds; fail the test (not hang) if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)
