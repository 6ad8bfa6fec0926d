"""A blocking WebSocket client on wsproto, enough for the JSON messages of ``/api/v1/ws``
(the contract suite's and the FastAPI reference's WebSocket tests)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto import events as ws_events
from wsproto.utilities import LocalProtocolError

HANG = 90.0  # an upper bound on one wait, never asserted on


class WSClient:
    """Connects at once; ``rejected`` is ``(status, body)`` if the handshake was refused."""

    def __init__(
        self,
        port: int,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list[Any] = []
        self.rejected: tuple[int, bytes] | None = None
        self._text = ""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        extra = [(k.encode(), v.encode()) for k, v in pairs]
        self.sock.sendall(self.ws.send(ws_events.Request("127.0.0.1", target, extra_headers=extra)))
        status, body = 0, b""
        while True:
            event = self._next()
            if isinstance(event, ws_events.AcceptConnection):
                return
            if isinstance(event, ws_events.RejectConnection):
                status = event.status_code
                if not event.has_body:
                    self.rejected = (status, b"")
                    return
            elif isinstance(event, ws_events.RejectData):
                body += event.data
                if event.body_finished:
                    self.rejected = (status, body)
                    return

    def _next(self) -> Any:
        while not self.events:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.events.extend(self.ws.events())
        return self.events.pop(0)

    def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.sock.sendall(self.ws.send(ws_events.Message(data=text)))

    def recv(self) -> Any:
        """The next JSON message; ``{"closed": code}`` if the server closed instead."""
        while True:
            event = self._next()
            if isinstance(event, ws_events.Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, ws_events.TextMessage):
                self._text += event.data
                if event.message_finished:
                    text, self._text = self._text, ""
                    return json.loads(text)
            elif isinstance(event, ws_events.CloseConnection):
                return {"closed": event.code}

    def close(self) -> None:
        try:
            if self.rejected is None:
                self.sock.sendall(self.ws.send(ws_events.CloseConnection(code=1000)))
                while not isinstance(self._next(), ws_events.CloseConnection):
                    pass
        except (OSError, LocalProtocolError):
            pass
        finally:
            self.sock.close()
