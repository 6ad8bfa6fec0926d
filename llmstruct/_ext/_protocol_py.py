"""One HTTP/1.1 connection (``HttpProtocol``) and its request cycles (``Cycle``).

The socket glue runs for every request, so it is a hot path with two twins of
one source: this module is the pure twin, and the build compiles this same file
as ``_protocol_c`` with the types declared in ``_protocol_c.pxd`` (Cython's pure
Python mode: the classes become extension types, their attributes C fields and
the per-request methods C calls). Selector: ``llmstruct._ext.protocol``;
``llmstruct.server.protocol`` is where the server imports it from. The protocol
needs no ``asyncio.Protocol`` base: the loop only calls its methods.

``HttpProtocol`` feeds received bytes to a driver (h11 or httptools, the same
``http_common.Driver`` interface), turns each parsed request into a ``Cycle``
and runs the app for it, writes responses, and owns every per-connection timer.

Invariants:

* Responses go out in request order. Parsed requests queue in ``_cycles``; only
  the first runs; once two are queued (a client pipelining) reading pauses, so
  the queue is bounded by what one read brought in.
* A response written while its request's body is still arriving ends the
  connection (``Connection: close``): the unread rest is never parsed as a
  request. Handlers that answer early (auth, 404, a sync handler) cost a close.
* A refused request (``HTTPError`` from the driver) is answered after the
  responses to the requests before it, then the connection ends: half-close,
  discard what the client still sends for ``linger_timeout``, close.
* One read timer per connection, by phase: ``_HEAD`` (header_timeout: 408 if part
  of a head came, else a silent close), ``_BODY`` (the receiving request's body
  deadline: 408), ``_IDLE`` (keepalive_timeout: close), ``_BUSY`` (none: the
  server is working, not the client). A second timer runs while the transport's
  write buffer is over its high-water mark (send_timeout: abort).
* Write flow control: ``pause_writing``/``resume_writing`` gate ``drain()``,
  which streaming responses await between chunks. Read flow control: reading
  pauses while a handler has ``body_buffer_bytes`` unread, or requests queue.
* A WebSocket upgrade (after the app's checks pass) hands the transport to the
  WebSocket protocol with the raw head and any bytes after it; this protocol is
  then detached and the connection keeps its slot until the WebSocket closes.

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
import logging
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from llmstruct.server.aio import finish_async, read_body, stream_response
from llmstruct.server.http_common import (
    ClientDisconnect,
    HTTPError,
    RequestHead,
    error_response,
    response_head,
)

if TYPE_CHECKING:
    from llmstruct.server.protocol import ServerState

__all__ = ["Cycle", "HttpProtocol"]

log = logging.getLogger("llmstruct.server")

_HEAD, _BODY, _BUSY, _IDLE = "head", "body", "busy", "idle"


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

    def read(self) -> Awaitable[bytes]:
        """The next buffered body bytes; b"" at the end. Raises the body's error."""
        return read_body(self)

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
            proto._write(
                response_head(
                    status, response.headers, len(body), keep_alive,
                    head.http_version == "1.0", tail,
                )
            )  # fmt: skip
            if rest:
                proto._write(rest)
        proto.complete(self, keep_alive)

    def stream(self, response: Any) -> Awaitable[None]:
        """Write a streaming response chunk by chunk, waiting while the client is behind."""
        return stream_response(self, response)


class HttpProtocol:
    # The fields _protocol_c.pxd declares for the compiled twin: keep the two in step.
    __slots__ = (
        "state", "app", "_response_class", "_request_class", "limits", "loop", "transport",
        "driver", "client", "closing", "_cycles", "_error", "_parsing", "_phase", "_head_seen",
        "_timer", "_timer_at", "_deadline", "_linger", "_read_paused", "write_paused",
        "_drain_waiters", "_send_timer", "_served", "_eof", "_running", "_detached", "_feeding",
        "_upgrade_pending", "_handle", "_time", "_write", "_feed", "_max_requests",
        "_keepalive_timeout",
    )  # fmt: skip

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.app = state.app
        self._response_class = state.app.response_class
        self._request_class = state.app.request_class
        limits = self.limits = state.limits
        self.loop = state.loop or asyncio.get_running_loop()
        # What every request uses, bound once: a lookup less each time (and, in the
        # compiled twin, a generic attribute lookup less).
        self._handle = state.app.handle
        self._time = self.loop.time
        self._write: Any = None  # transport.write, once there is a transport
        self._feed: Any = None  # driver.feed, likewise
        self._max_requests = limits.max_keepalive_requests
        self._keepalive_timeout = limits.keepalive_timeout
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.driver: Any = None
        self.client: tuple[str, int] | None = None
        self.closing = False
        self._cycles: deque[Cycle] = deque()
        self._error: HTTPError | None = None  # refusal to answer after the queue
        self._parsing = True  # False once the driver refused: it is unusable
        self._phase = _HEAD
        self._head_seen = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when _timer fires
        self._deadline = 0.0  # the current phase's deadline (_HEAD, _IDLE)
        self._linger: asyncio.TimerHandle | None = None
        self._read_paused = False
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self._send_timer: asyncio.TimerHandle | None = None
        self._served = 0
        self._eof = False
        self._running = False  # inside _run_queue (no re-entry)
        self._detached = False
        self._feeding = False  # inside driver.feed: callbacks run, the driver's state is partial
        self._upgrade_pending = False  # an upgrade waits for feed() to capture the bytes after it

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._write = transport.write  # type: ignore[attr-defined]
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        self.driver = self.state.driver_class(self, self.limits)
        self._feed = self.driver.feed
        self._set_phase(_HEAD)
        if self.state.draining:
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        if self.closing or not self._parsing:
            return  # lingering after a refusal, or closing: discard
        fresh = self._phase is _IDLE
        if fresh:
            self._phase = _HEAD  # its deadline is set below, if the head is still incomplete
        self._head_seen = True
        self._feeding = True
        try:
            self._feed(data)
        except HTTPError as exc:
            self._refuse(exc)
        except Exception:
            log.exception("internal error while parsing a request")
            self._refuse(HTTPError(500, "Internal Server Error"))
        finally:
            self._feeding = False
        if fresh and self._phase is _HEAD and not self.closing:
            # A head began in this read and did not end in it (a whole request in
            # one read, the usual case, never needs the head deadline).
            self._set_phase(_HEAD)
            self._head_seen = True
        if self._upgrade_pending:
            self._upgrade_pending = False
            self._run_queue()
        elif self.driver.finished and not self._read_paused and not self.closing:
            self._pause_reading()  # nothing more to parse; an upgrade's bytes wait their turn

    def eof_received(self) -> bool:
        # A half-closed client still reads: answer what it sent, then close.
        self._eof = True
        if self.closing:
            self.transport.close()  # it read our half-close (or left): done lingering
            return False
        if self._cycles:
            last = self._cycles[-1]
            if not last.complete:
                last.error = HTTPError(400, "Incomplete request body")
                last.wake()
            return True
        self._close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._cancel_timer()
        if self._linger is not None:
            self._linger.cancel()
        if self._send_timer is not None:
            self._send_timer.cancel()
        for cycle in self._cycles:
            if cycle.error is None:
                cycle.error = ClientDisconnect()
            cycle.wake()
        self._wake_drainers()
        if not self._detached:
            self.state.closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._send_expired)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._wake_drainers()

    # -- driver sink --------------------------------------------------------------------
    def on_request(self, head: RequestHead) -> None:
        request = self._request_class(head, self.client)
        cycle = Cycle(self, head, request)
        request._source = cycle
        self._cycles.append(cycle)
        if not cycle.complete:
            cycle.deadline = self.loop.time() + self.limits.body_timeout
            self._set_phase(_BODY)
        else:
            self._phase = _BUSY  # no deadline: the server is working, not the client
        if len(self._cycles) == 1:
            self._run_queue()
        elif not self._read_paused:
            self._pause_reading()  # pipelining: read no further until the queue drains

    def on_body(self, data: bytes) -> None:
        cycle = self._cycles[-1] if self._cycles else None
        if cycle is None or cycle.done:
            return  # answered already (and closing): nobody reads it
        cycle.chunks.append(data)
        cycle.buffered += len(data)
        cycle.received += len(data)
        cycle.deadline += len(data) / self.limits.body_min_rate
        if cycle.buffered > self.limits.body_buffer_bytes and not self._read_paused:
            self._pause_reading()
        cycle.wake()

    def on_end(self) -> None:
        if not self._cycles:
            return
        cycle = self._cycles[-1]
        cycle.complete = True
        cycle.wake()
        if self._phase is _BODY:
            self._set_phase(_BUSY)

    # -- running requests ---------------------------------------------------------------
    def _run_queue(self) -> None:
        """Start queued requests in order until one has to wait (or none is left)."""
        if self._running:
            return
        self._running = True
        try:
            while self._cycles and not self.closing:
                cycle = self._cycles[0]
                if cycle.task is not None or cycle.started and not cycle.done:
                    return  # the first is in progress
                self._start(cycle)
                if not cycle.done:
                    return
        finally:
            self._running = False
        if not self._cycles and not self.closing:
            if self._error is not None:
                self._write_error(self._error)
            elif self._eof or self.driver.finished or not self._parsing:
                self._close()
            else:
                if self._read_paused:
                    self._resume_reading()
                self._set_phase(_IDLE)

    def _start(self, cycle: Cycle) -> None:
        if cycle.error is not None and isinstance(cycle.error, HTTPError):
            self.complete(cycle, None, error=cycle.error)
            return
        head = cycle.head
        if head.upgrade is not None and self.app.is_websocket(cycle.request):
            if self._feeding:
                self._upgrade_pending = True  # the driver has not captured the tail yet
                return
            result = self.app.handle_websocket(cycle.request)
            if not isinstance(result, self.app.response_class):
                self._hand_over(cycle, result)
                return
        else:
            result = self._handle(cycle.request)
        if isinstance(result, self._response_class) and not result.streaming:
            cycle.write(result)
        else:
            cycle.task = self.loop.create_task(finish_async(self, cycle, result))

    def keep_alive(self, cycle: Cycle, response: Any) -> bool:
        return (
            cycle.head.keep_alive
            and cycle.complete
            and not self._eof
            and not self.state.draining
            and not (self.driver.finished and self._cycles[-1] is cycle)
            and self._served + 1 < self._max_requests
            and not response.close
        )

    def complete(
        self, cycle: Cycle, keep_alive: bool | None, error: HTTPError | None = None
    ) -> None:
        """The response of ``cycle`` is written (or, with ``error``, is that error)."""
        if cycle.done:
            return
        cycle.done = True
        # The request refers to its cycle (its body source); dropping the way back
        # lets both go by reference counting, not by the cyclic GC, whose
        # collections of every request's objects cost more than the rest of them.
        cycle.request = None
        if self._cycles and self._cycles[0] is cycle:
            self._cycles.popleft()
        self._served += 1
        if error is not None:
            self._cycles.clear()
            self._write_error(error)
        elif not keep_alive:
            self._cycles.clear()
            self._close()

    def drain(self) -> Any:
        """Wait until the transport's write buffer is below its low-water mark."""
        if self.closing:
            raise ClientDisconnect()
        future = self.loop.create_future()
        self._drain_waiters.append(future)
        if not self.write_paused:
            future.set_result(None)
        return future

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                if self.closing:
                    waiter.set_exception(ClientDisconnect())
                else:
                    waiter.set_result(None)

    # -- refusals, closing ----------------------------------------------------------------
    def _refuse(self, error: HTTPError) -> None:
        """The driver refused a request: answer it after the queue, then close."""
        self._parsing = False
        self._pause_reading()
        self.app.report_refusal(error.status, error.detail, self.client)
        if self._cycles:
            last = self._cycles[-1]
            if not last.complete:
                # The refusal is about this request's body (413, bad chunk): its
                # reader gets it, and an unstarted request is answered with it.
                last.error = error
                last.wake()
                return
        self._error = error
        if not self._cycles:
            self._write_error(error)

    def _write_error(self, error: HTTPError) -> None:
        if self.closing:
            return
        self.transport.write(error_response(error.status, error.detail))
        self._close()

    def _close(self) -> None:
        """End the connection after what is written: half-close, then linger briefly."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timer()
        for cycle in self._cycles:
            if cycle.task is not None:
                cycle.task.cancel()
        if self._read_paused:
            self._resume_reading()  # to see the client's close while lingering
        if self._eof:
            self.transport.close()
        elif self.transport.can_write_eof():
            try:
                self.transport.write_eof()
            except OSError:
                self.transport.close()
                return
            self._linger = self.loop.call_later(self.limits.linger_timeout, self.transport.close)
        else:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (RST), whatever is in flight."""
        self.closing = True
        self._cancel_timer()
        self.transport.abort()

    def shutdown(self) -> None:
        """Graceful stop: close now when idle, else after the response in progress."""
        if not self._cycles and not self.closing:
            self.closing = True  # idle (or mid-head): nothing of the client's is pending
            self._cancel_timer()
            self.transport.close()
        # else: _keep_alive() sees state.draining and the response closes the connection

    # -- timers -------------------------------------------------------------------------
    # One deadline per connection, set by phase, and one loop timer chasing it.
    # Phases change several times per request while deadlines mostly move later,
    # so the timer is not re-armed at each change: it fires at the earliest
    # deadline it was armed for and then re-arms for the current one if that is
    # later. A keep-alive request costs no timer operation in the steady state.
    def _set_phase(self, phase: str) -> None:
        self._phase = phase
        if phase is _BUSY or self.closing:
            return
        if phase is _HEAD:
            at = self.loop.time() + self.limits.header_timeout
            self._head_seen = False
        elif phase is _IDLE:
            at = self._time() + self._keepalive_timeout
        else:
            at = self._cycles[-1].deadline
        self._deadline = at
        if self._timer is None or self._timer_at > at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._timer_expired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_expired(self) -> None:
        self._timer = None
        phase = self._phase
        if self.closing or phase is _BUSY or phase is _BODY and self._read_paused:
            return  # no deadline now: the next phase change arms one
        deadline = self._cycles[-1].deadline if phase is _BODY else self._deadline
        if deadline > self.loop.time():
            self._arm(deadline)  # moved later since the timer was armed
        elif phase is _IDLE or phase is _HEAD and not self._head_seen:
            self.closing = True
            self.transport.close()
        elif phase is _HEAD:
            self.app.report_refusal(408, "Request head timeout", self.client)
            self._write_error(HTTPError(408, "Request head timeout"))
        else:
            cycle = self._cycles[-1]
            error = HTTPError(408, "Request body timeout")
            self.app.report_refusal(408, error.detail, self.client)
            cycle.error = error
            cycle.wake()
            if cycle is self._cycles[0] and not cycle.started:
                if cycle.task is not None:
                    cycle.task.cancel()
                self.complete(cycle, None, error=error)
            else:
                self._close()

    def _send_expired(self) -> None:
        self._send_timer = None
        if not self.closing:
            self.app.report_refusal(None, "Send timeout", self.client)
            self.abort()

    # -- read flow control -----------------------------------------------------------------
    def _pause_reading(self) -> None:
        if not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
            # In _BODY the deadline is now suspended (see _timer_expired): the
            # server is behind, not the client.

    def _resume_reading(self) -> None:
        if self._read_paused and not self.transport.is_closing():
            self._read_paused = False
            self.transport.resume_reading()

    def want_body(self, cycle: Cycle) -> None:
        """A handler drained ``cycle``'s buffer: read on if the buffer had paused reading."""
        if (
            self._read_paused
            and self._error is None
            and cycle is self._cycles[-1]
            and not cycle.complete
            and not self.driver.finished
        ):
            self._resume_reading()
            cycle.deadline = self.loop.time() + self.limits.body_timeout
            self._set_phase(_BODY)

    # -- WebSocket upgrade --------------------------------------------------------------------
    def _hand_over(self, cycle: Cycle, handler: Any) -> None:
        from llmstruct.server.websocket import WebSocketProtocol

        self._cycles.clear()
        self._cancel_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self._detached = True
        self.closing = True
        self.state.connections.discard(self)
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        request = cycle.request
        ws = WebSocketProtocol(
            handler,
            self.limits,
            connections=self.state.websockets,
            path_params=request.path_params,
            extra_headers=[(b"x-request-id", request.request_id.encode())]
            if request.request_id
            else (),
        )
        transport = self.transport
        transport.set_protocol(ws)
        ws.connection_made(transport)
        # The connection keeps its slot until the WebSocket closes.
        ws.done.add_done_callback(lambda _: self.state.closed(ws))
        self.state.connections.add(ws)
        raw = cycle.head.raw or cycle.head.rebuild_raw()
        ws.data_received(raw + self.driver.tail)
