"""The ``/api/v1/ws`` message protocol: JSON ``{"type", "data"}`` objects in and out.

``install(app)`` registers on ``/api/v1/ws`` of ``app`` a ``MessageDispatcher`` of its
own (kept in ``app.state["ws_dispatcher"]``, see ``dispatcher_of``), holding the base
messages; the engine messages are added to it where the app's engine is made
(``ws_engine.add_engine_messages``, called by ``api.configure_for``). A dispatcher
per app, not one per process: each app serves one engine, and tests run several
apps in one process. ``api_ws`` is a handler with only the base messages.

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

The base messages are ``ping`` -> ``pong``; ``scan_request`` and ``context_request``
(DESIGN.md, API contract) come with the engine (``ws_engine.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from llmstruct.server.ws_socket import ConnectionClosed, WebSocket

if TYPE_CHECKING:
    from llmstruct.server.app import App

__all__ = [
    "MessageDispatcher",
    "MessageError",
    "api_ws",
    "base_dispatcher",
    "dispatcher",
    "dispatcher_of",
    "install",
]

logger = logging.getLogger("llmstruct.server.ws_api")

WS_PATH = "/api/v1/ws"
STATE_KEY = "ws_dispatcher"  # app.state key of the app's dispatcher

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


async def ping(ws: WebSocket, data: Any) -> None:
    """``{"type": "ping"}`` -> ``{"type": "pong"}`` (a client-level liveness check)."""
    await ws.send_json({"type": "pong"})


def base_dispatcher() -> MessageDispatcher:
    """A new dispatcher with the messages every ``/api/v1/ws`` answers (``ping``)."""
    fresh = MessageDispatcher()
    fresh.on("ping")(ping)
    return fresh


#: The base messages only, for apps without an engine (``api_ws``).
dispatcher = base_dispatcher()


async def api_ws(ws: WebSocket) -> None:
    """A ``/api/v1/ws`` handler with the base messages only."""
    await dispatcher(ws)


def install(app: App, path: str = WS_PATH) -> MessageDispatcher:
    """Serve ``path`` of ``app`` with a new dispatcher of the base messages, and return it."""
    own = base_dispatcher()
    app.websocket(path)(own)
    app.state[STATE_KEY] = own
    return own


def dispatcher_of(app: App) -> MessageDispatcher | None:
    """The dispatcher ``install`` put on ``app``; None if the app has no ``/api/v1/ws``."""
    return app.state.get(STATE_KEY)
