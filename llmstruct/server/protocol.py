"""What the server's connections share, and the connection protocol itself.

``HttpProtocol`` (one per HTTP/1.1 connection, with a ``Cycle`` per request) runs
for every request, so it is a hot path with two twins: ``llmstruct._ext._protocol_py``
(the source, with the protocol's invariants in its docstring) and its compiled
twin ``_protocol_c``. This module re-exports whichever the selector
``llmstruct._ext.protocol`` loaded, and holds ``ServerState``: what every
connection of one worker shares.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from llmstruct._ext.protocol import Cycle, HttpProtocol
from llmstruct.server.http_common import ClientDisconnect

if TYPE_CHECKING:
    from llmstruct.server.app import App
    from llmstruct.server.limits import Limits

__all__ = ["HttpProtocol", "Cycle", "ServerState", "ClientDisconnect"]


class ServerState:
    """What every connection of one worker shares."""

    def __init__(
        self, app: App, limits: Limits, driver_class: type, protocol_class: type = HttpProtocol
    ) -> None:
        self.app = app
        self.limits = limits
        self.driver_class = driver_class
        self.protocol_class = protocol_class  # the pure twin's, in the tests that run it
        self.connections: set[Any] = set()  # HttpProtocol and WebSocketProtocol
        self.websockets: Any = _websocket_registry()
        self.draining = False
        self.on_close: Any = None  # listener callback: a connection slot is free
        self.loop: asyncio.AbstractEventLoop | None = None

    def requests_in_flight(self) -> int:
        """Requests read and not yet answered in full, over every HTTP connection."""
        kind = self.protocol_class
        return sum(len(conn._cycles) for conn in self.connections if isinstance(conn, kind))

    def closed(self, conn: Any) -> None:
        self.connections.discard(conn)
        if self.on_close is not None:
            self.on_close()


def _websocket_registry() -> Any:
    from llmstruct.server.ws_registry import WebSocketConnections

    return WebSocketConnections()
