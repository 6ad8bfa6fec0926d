"""The ``/api/v1/ws`` message protocol: JSON ``{"type", "data"}`` objects in and out.

``api_ws`` is the WebSocket handler to register on ``/api/v1/ws``::

    app.websocket("/api/v1/ws")(api_ws)

Each client message is a JSON object with a string ``type`` and optional
``data`` (text or binary frames both work). ``MessageDispatcher`` looks the type
up in its table and runs the matching function with ``(ws, data)``; the function
answers with ``ws.send_json``. Anything malformed (not JSON, not an object, no
string ``type``, an unknown type, a handler rejecting ``data`` with
``MessageError``) is answered ``{"type": "error", "data": {"detail": ...}}`` and
the connection stays open: one bad message never ends a session.

Messages are handled one at a time, in order, unless a type is registered with
``background=True``: it then runs in its own task (for long work such as a scan
that streams progress), so the connection keeps answering ``ping`` meanwhile.
Background tasks still running when the connection ends are cancelled.

This issue ships ``ping`` -> ``pong``; ``scan_request`` and ``context_request``
(DESIGN.md, API contract) are added with the engine endpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from llmstruct.server.ws_socket import ConnectionClosed, WebSocket

__all__ = ["MessageDispatcher", "MessageError", "api_ws", "dispatcher"]

logger = logging.getLogger("llmstruct.server.ws_api")

MessageHandler = Callable[[WebSocket, Any], Awaitable[None]]


class MessageError(Exception):
    """Raised by a message handler to answer an ``error`` with ``detail`` and go on."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


async def send_error(ws: WebSocket, detail: Any) -> None:
    await ws.send_json({"type": "error", "data": {"detail": detail}})


class MessageDispatcher:
    """A table of message types, and the WebSocket handler that dispatches on it."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[MessageHandler, bool]] = {}

    def on(
        self, type_: str, background: bool = False
    ) -> Callable[[MessageHandler], MessageHandler]:
        """Register ``async def handler(ws, data)`` for messages of type ``type_``."""

        def register(handler: MessageHandler) -> MessageHandler:
            if type_ in self._handlers:
                raise ValueError(f"message type {type_!r} is already handled")
            self._handlers[type_] = (handler, background)
            return handler

        return register

    async def __call__(self, ws: WebSocket) -> None:
        background: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                await self._dispatch(ws, message, background)
        finally:
            for task in background:
                task.cancel()
            if background:
                await asyncio.gather(*background, return_exceptions=True)

    async def _dispatch(
        self, ws: WebSocket, message: str | bytes, background: set[asyncio.Task[None]]
    ) -> None:
        try:
            payload = orjson.loads(message)
        except orjson.JSONDecodeError:
            await send_error(ws, "Invalid JSON")
            return
        type_ = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(type_, str):
            await send_error(ws, "Message must be a JSON object with a string 'type'")
            return
        entry = self._handlers.get(type_)
        if entry is None:
            await send_error(ws, f"Unknown message type: {type_}")
            return
        handler, in_background = entry
        run = self._run(handler, ws, payload.get("data"))
        if in_background:
            task = asyncio.ensure_future(run)
            background.add(task)
            task.add_done_callback(background.discard)
        else:
            await run

    @staticmethod
    async def _run(handler: MessageHandler, ws: WebSocket, data: Any) -> None:
        try:
            try:
                await handler(ws, data)
            except MessageError as exc:
                await send_error(ws, exc.detail)
            except ConnectionClosed:
                raise
            except Exception:
                # One failed request must not end the session: the client gets an error.
                logger.exception("WebSocket message handler %s failed", handler.__name__)
                await send_error(ws, "Internal server error")
        except ConnectionClosed:
            pass  # the dispatch loop sees the end of the connection itself


dispatcher = MessageDispatcher()


@dispatcher.on("ping")
async def ping(ws: WebSocket, data: Any) -> None:
    """``{"type": "ping"}`` -> ``{"type": "pong"}`` (a client-level liveness check)."""
    await ws.send_json({"type": "pong"})


async def api_ws(ws: WebSocket) -> None:
    """The WebSocket handler for ``/api/v1/ws``."""
    await dispatcher(ws)
