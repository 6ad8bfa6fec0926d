"""The accept loop of one worker: a bounded number of connections, and a graceful stop.

The server accepts connections itself (``loop.add_reader`` on the listening
socket, then ``connect_accepted_socket``) rather than through
``loop.create_server``, because asyncio's server cannot stop accepting for a
while: at ``Limits.max_connections`` open connections this loop removes its
reader, so new connections wait in the kernel's listen queue (backpressure; no
in-flight work is dropped) and are accepted as soon as a slot frees. Running out
of file descriptors pauses accepting for a second, as asyncio's own loop does.

``Server.shutdown`` is the SIGTERM path: stop accepting at once (the listening
socket is closed), close idle keep-alive connections, let each busy one finish
its response (sent with ``Connection: close``), close WebSockets with 1001, and
after ``Limits.graceful_timeout`` abort whatever is left.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

from llmstruct.server.limits import Limits
from llmstruct.server.protocol import ServerState

__all__ = ["Server", "bind_socket", "driver_class"]

log = logging.getLogger("llmstruct.server")

_ACCEPT_BATCH = 64  # connections accepted per wake-up before yielding to the loop
_RESOURCE_ERRORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_RETRY_DELAY = 1.0  # asyncio's ACCEPT_RETRY_DELAY


def driver_class(http: str) -> type:
    """The driver for ``--http``: ``h11``, ``httptools``, or ``auto`` (httptools if installed)."""
    if http in ("httptools", "auto"):
        try:
            from llmstruct.server.http_httptools import HttpToolsDriver
        except ImportError:
            if http == "httptools":
                raise ValueError(
                    "--http httptools: the httptools package is not installed"
                ) from None
        else:
            return HttpToolsDriver
    if http in ("h11", "auto"):
        from llmstruct.server.http_h11 import H11Driver

        return H11Driver
    raise ValueError(f"--http must be h11, httptools or auto, not {http!r}")


def bind_socket(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening TCP socket on ``host``:``port`` (0 picks a free port).

    ``reuse_port`` sets SO_REUSEPORT so several worker processes can each bind
    the port and let the kernel spread connections between them.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """One worker's HTTP server on an event loop: ``start(sock)``, then ``shutdown()``."""

    def __init__(self, app: Any, limits: Limits, http: str | type = "auto") -> None:
        """``http`` is an ``--http`` choice, or a driver class itself (tests pick a twin)."""
        driver = http if isinstance(http, type) else driver_class(http)
        self.state = ServerState(app, limits, driver)
        app.on_server(self.state)
        self.limits = limits
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._pending = 0  # accepted, transport not yet made
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()

    @property
    def open_connections(self) -> int:
        return len(self.state.connections) + self._pending

    def start(self, sock: socket.socket) -> None:
        """Serve on the listening ``sock`` (must be called on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self.state.loop = self._loop
        self.state.on_close = self._connection_closed
        self._sock = sock
        self._resume_accepting()

    # -- accepting ---------------------------------------------------------------------
    def _resume_accepting(self) -> None:
        if not self._accepting and self._sock is not None and not self.state.draining:
            self._accepting = True
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _pause_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._loop.remove_reader(self._sock.fileno())

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            if self.open_connections >= self.limits.max_connections:
                self._pause_accepting()  # backpressure: the kernel queues the rest
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    log.warning("accept failed (%s); pausing accepts for 1 s", exc.strerror)
                    self._pause_accepting()
                    self._loop.call_later(_RETRY_DELAY, self._resume_accepting)
                    return
                if exc.errno == errno.ECONNABORTED:
                    continue
                raise
            conn.setblocking(False)
            self._pending += 1
            task = self._loop.create_task(self._attach(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _attach(self, conn: socket.socket) -> None:
        state = self.state
        protocol = state.protocol_class
        try:
            await self._loop.connect_accepted_socket(lambda: protocol(state), conn)
        except (OSError, RuntimeError) as exc:  # the peer reset already, or the loop closes
            log.debug("could not set up an accepted connection: %s", exc)
            conn.close()
        except Exception:  # a bug or a setting the protocol refuses: said, not swallowed
            log.exception("could not set up an accepted connection")
            conn.close()
        finally:
            self._pending -= 1
        self._connection_closed()

    def _connection_closed(self) -> None:
        if self.open_connections < self.limits.max_connections:
            self._resume_accepting()
        if self.state.draining and not self.open_connections:
            self._idle.set()

    # -- stopping -----------------------------------------------------------------------
    def stop_accepting(self) -> None:
        """Close the listening socket: new connections are refused from now on."""
        self.state.draining = True
        self._pause_accepting()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, drain in-flight requests for up to ``timeout``, close the rest."""
        grace = self.limits.graceful_timeout if timeout is None else timeout
        self.stop_accepting()
        for conn in list(self.state.connections):
            if isinstance(conn, self.state.protocol_class):
                conn.shutdown()
        closing_ws = asyncio.ensure_future(
            self.state.websockets.close_all(timeout=min(grace, self.limits.ws_close_timeout))
        )
        if self.open_connections:
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still open after %.1f s; closing them",
                            self.open_connections, grace)  # fmt: skip
        for conn in list(self.state.connections):
            conn.abort()
        await closing_ws
        for task in list(self._tasks):
            task.cancel()
        # Let the aborted transports run connection_lost before the loop goes away.
        await asyncio.sleep(0)
