"""One request/response cycle of an HTTP connection (uvicorn's RequestResponseCycle shape).

A ``Cycle`` is made by ``HttpProtocol`` for each parsed request head. It holds
the request body as it arrives -- the handler reads it with ``read()``, which
raises the body's error (413, 408, 400) or ``ClientDisconnect`` -- and it
writes the response: ``write()`` for a complete body in one transport write,
``stream()`` for a streaming body in chunked framing (unframed, ending with the
close, for an HTTP/1.0 client), awaiting the protocol's ``drain()`` while the
client is behind. Whether the connection stays open after it is the protocol's
decision (``keep_alive``), as is what happens next (``complete``).

``Expect: 100-continue`` is answered when the handler first reads the body, so
a request refused before that (auth, 413) never gets a 100.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from llmstruct.server.http_common import RequestHead, response_head

if TYPE_CHECKING:
    from llmstruct.server.protocol import HttpProtocol

__all__ = ["ClientDisconnect", "Cycle"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ClientDisconnect(Exception):
    """The client went away while a handler read the body or streamed a response."""


class Cycle:
    """One request and its response: the body buffer the handler reads, the response it gets."""

    __slots__ = (
        "proto", "head", "request", "chunks", "buffered", "received", "complete",
        "error", "waiter", "started", "done", "deadline", "task", "continue_sent",
    )  # fmt: skip

    def __init__(self, proto: HttpProtocol, head: RequestHead, request: Any) -> None:
        self.proto = proto
        self.head = head
        self.request = request
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.received = 0
        self.complete = not head.has_body
        self.error: BaseException | None = None  # what a body read raises
        self.waiter: asyncio.Future | None = None
        self.started = False  # response head written
        self.done = False
        self.deadline = 0.0
        self.task: asyncio.Task | None = None
        self.continue_sent = False

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def read(self) -> bytes:
        """The next buffered body bytes; b"" at the end. Raises the body's error."""
        proto = self.proto
        if self.head.expect_continue and not self.continue_sent and not self.started:
            self.continue_sent = True
            if not proto.closing:
                proto.transport.write(_CONTINUE)
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            proto.want_body(self)
            self.waiter = proto.loop.create_future()
            await self.waiter
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        proto.want_body(self)
        return data

    def write(self, response: Any) -> None:
        """Write a complete response (its body too unless HEAD/204/304), then finish."""
        proto = self.proto
        keep_alive = proto.keep_alive(self, response)
        body = response.body
        head = self.head
        status = response.status
        self.started = True
        if not proto.closing:
            if head.method == "HEAD" or status == 204 or status == 304:
                tail = rest = b""
            elif len(body) < 65536:
                tail, rest = body, b""  # in the head's bytes: one write, one send(2)
            else:
                tail, rest = b"", body
            proto.transport.write(
                response_head(
                    status, response.headers, len(body), keep_alive,
                    head.http_version == "1.0", tail,
                )
            )  # fmt: skip
            if rest:
                proto.transport.write(rest)
        proto.complete(self, keep_alive)

    async def stream(self, response: Any) -> None:
        """Write a streaming response chunk by chunk, waiting while the client is behind."""
        proto = self.proto
        keep_alive = proto.keep_alive(self, response)
        http10 = self.head.http_version == "1.0"
        if http10:
            keep_alive = False  # no chunked framing for 1.0: the close ends the body
        head_only = self.head.method == "HEAD" or response.status in (204, 304)
        self.started = True
        if proto.closing:
            await response.close_iterator()
            raise ClientDisconnect()
        proto.transport.write(
            response_head(response.status, response.headers, None, keep_alive, http10)
        )
        if head_only:
            await response.close_iterator()
            proto.complete(self, keep_alive)
            return
        chunked = not http10
        try:
            async for chunk in response.iterate():
                if proto.closing:
                    raise ClientDisconnect()
                if chunk:
                    if chunked:
                        proto.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        proto.transport.write(chunk)
                if proto.write_paused:
                    await proto.drain()
        finally:
            await response.close_iterator()
        if chunked and not proto.closing:
            proto.transport.write(b"0\r\n\r\n")
        proto.complete(self, keep_alive)
