"""The open WebSocket connections of a worker, so that shutdown can close them.

``WebSocketProtocol`` adds itself in ``connection_made`` and removes itself in
``connection_lost``; the graceful shutdown calls ``close_all()``, which sends
every connection a Close with 1001 (going away, RFC 6455 §7.4.1), waits for the
closing handshakes and the handlers, and after a timeout cancels and aborts
whatever is left. ``CONNECTIONS`` is the registry a protocol uses when it is not
given one (one per worker process).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmstruct.server.websocket import WebSocketProtocol

__all__ = ["CONNECTIONS", "GOING_AWAY", "WebSocketConnections"]

GOING_AWAY = 1001


class WebSocketConnections:
    """The open WebSocket connections of a worker, so shutdown can close them (1001)."""

    def __init__(self) -> None:
        self._protocols: set[WebSocketProtocol] = set()

    def add(self, protocol: WebSocketProtocol) -> None:
        self._protocols.add(protocol)

    def discard(self, protocol: WebSocketProtocol) -> None:
        self._protocols.discard(protocol)

    def __len__(self) -> int:
        return len(self._protocols)

    def __iter__(self) -> Iterator[WebSocketProtocol]:
        return iter(list(self._protocols))

    async def close_all(
        self, code: int = GOING_AWAY, reason: str = "server shutting down", timeout: float = 10.0
    ) -> None:
        """Close every connection with ``code`` and wait for them and their handlers.

        After ``timeout`` seconds (websockets close_timeout, 10 s), handlers still
        running are cancelled and connections still open are aborted.
        """
        protocols = list(self._protocols)
        for protocol in protocols:
            protocol.close(code, reason)
        waits = [p.done for p in protocols if p.done is not None]
        waits += [p.task for p in protocols if p.task is not None]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for protocol in protocols:
            if protocol.task is not None and not protocol.task.done():
                protocol.task.cancel()
            if protocol.done is not None and not protocol.done.done():
                protocol.abort()
        if pending:
            await asyncio.wait(pending, timeout=1.0)


#: The worker's registry, used unless a protocol is given another one.
CONNECTIONS = WebSocketConnections()
