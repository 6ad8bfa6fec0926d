"""What a WebSocket handler sees: ``ws`` in ``async def handler(ws)``.

``WebSocket`` is a thin view over one ``WebSocketProtocol`` (``websocket.py``)
that exposes only the handler's side: the request it was opened with, messages
in and out, and closing. Messages are whole (fragments are reassembled before a
handler sees them): ``str`` for text frames, ``bytes`` for binary ones.

Ending: once no message can come any more (the peer closed, the connection
failed or was lost, or ``close`` was called), ``receive`` raises
``ConnectionClosed`` carrying the close code (1006 when the connection ended
without a Close frame), and so does every send. ``async for message in ws``
stops instead of raising.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

if TYPE_CHECKING:
    from wsproto.events import Request

    from llmstruct.server.websocket import WebSocketProtocol

__all__ = ["ConnectionClosed", "WebSocket"]


class ConnectionClosed(Exception):
    """The WebSocket connection is closed: ``code`` and ``reason`` say how (RFC 6455 §7.4)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (
            f": {self.reason}" if self.reason else ""
        )


def _sendable_close_code(code: int) -> bool:
    """Codes an endpoint may put in a Close frame (RFC 6455 §7.4.1-2; IANA registry)."""
    if 3000 <= code <= 4999:  # registered by libraries (3xxx) and private use (4xxx)
        return True
    return 1000 <= code <= 1014 and code not in (1004, 1005, 1006)


class WebSocket:
    """An open WebSocket connection, as its handler uses it.

    Attributes from the opening request: ``path`` (raw, without the query),
    ``query_string``, ``query_params`` (decoded; the last of a repeated name
    wins), ``headers`` (lower-case names, repeated ones joined by ``", "``),
    ``path_params`` (from the router) and ``client`` (``(host, port)`` or None).
    """

    __slots__ = (
        "_protocol",
        "path",
        "query_string",
        "query_params",
        "headers",
        "path_params",
        "client",
    )

    def __init__(
        self,
        protocol: WebSocketProtocol,
        request: Request,
        path_params: dict[str, str],
        client: tuple[str, int] | None,
    ) -> None:
        self._protocol = protocol
        self.path, _, self.query_string = request.target.partition("?")
        self.query_params = dict(parse_qsl(self.query_string, keep_blank_values=True))
        headers: dict[str, str] = {"host": request.host}
        for name, value in request.extra_headers:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers = headers
        self.path_params = path_params
        self.client = client

    async def receive(self) -> str | bytes:
        """The next whole message: ``str`` (text) or ``bytes`` (binary).

        Raises ``ConnectionClosed`` when the connection has ended. Only one task
        may wait in ``receive`` at a time (``RuntimeError`` otherwise).
        """
        return await self._protocol.receive()

    async def send(self, data: str | bytes) -> None:
        """Send ``data`` as one text (``str``) or binary (``bytes``) message.

        Returns once the message is written or queued; waits while the send queue
        is full. Raises ``ConnectionClosed`` if the connection is closing or closed.
        """
        if not isinstance(data, str | bytes | bytearray | memoryview):
            raise TypeError(f"send() takes str or bytes, got {type(data).__name__}")
        await self._protocol.send(data if isinstance(data, str) else bytes(data))

    async def send_text(self, text: str) -> None:
        """Send ``text`` as a text message."""
        if not isinstance(text, str):
            raise TypeError(f"send_text() takes str, got {type(text).__name__}")
        await self._protocol.send(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send ``data`` as a binary message."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}")
        await self._protocol.send(bytes(data))

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` serialised by orjson as a text message."""
        await self._protocol.send(orjson.dumps(obj).decode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` and wait until the connection is over.

        The wait is bounded: the peer has ``ws_close_timeout`` to answer the Close,
        then the connection is closed regardless. Closing twice does nothing.
        """
        if not _sendable_close_code(code):
            raise ValueError(f"{code} is not a close code an endpoint may send")
        if len(reason.encode()) > 123:  # control frame payload <= 125 (RFC 6455 §5.5)
            raise ValueError("close reason longer than 123 bytes")
        self._protocol.close(code, reason)
        if self._protocol.done is not None:
            await self._protocol.done

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closing or closed, else None."""
        return self._protocol.close_code

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """``async for message in ws``: messages until the connection ends."""
        try:
            return await self._protocol.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None
