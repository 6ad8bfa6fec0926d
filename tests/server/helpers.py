"""Server test helpers: a real server on a loopback port, a raw HTTP client, a fake transport.

``ServerThread`` starts ``llmstruct.server.listener.Server`` on 127.0.0.1 port 0 in
a background thread with its own event loop (stopped and joined at teardown);
tests talk to it with plain blocking sockets. ``backend`` runs a test over every
parser driver in ``BACKENDS``. ``harness`` drives one
``HttpProtocol`` through a fake transport, for byte-exact protocol tests.

Every socket, loop and thread opened here is closed here: pytest runs with
warnings as errors, so a leaked socket fails the test that leaked it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from llmstruct.server.app import App, JSONResponse, PlainTextResponse, Response, StreamingResponse
from llmstruct.server.limits import Limits
from llmstruct.server.listener import Server, bind_socket, driver_class
from llmstruct.server.protocol import HttpProtocol, ServerState

#: The parser drivers every protocol test runs over: h11, and both twins of the
#: httptools driver -- ``httptools`` is the one the server loads (compiled where
#: built), ``httptools-py`` the pure twin (``llmstruct._ext._llhttp_py``), served by
#: the pure twins of the protocol and the request too (``pure_twins_for``), so the
#: same tests run the compiled request path and the pure one.
BACKENDS = ("h11", "httptools", "httptools-py")


def driver_for(backend: str) -> type:
    """The driver class of a ``BACKENDS`` id, or of any ``--http`` choice (``auto``)."""
    if backend == "httptools-py":
        from llmstruct._ext._llhttp_py import HttpToolsDriver

        return HttpToolsDriver
    return driver_class(backend)


def pure_twins_for(backend: str, app: App) -> type | None:
    """For ``httptools-py``, the whole pure request path: ``app`` gets the pure
    ``Request`` and the pure ``HttpProtocol`` class is returned (None otherwise:
    the selectors' choice, compiled when built)."""
    if backend != "httptools-py":
        return None
    from llmstruct._ext import _protocol_py, _request_py

    app.request_class = _request_py.Request
    return _protocol_py.HttpProtocol


def serve_backend(backend: str) -> tuple[str, dict[str, str]]:
    """The ``--http`` choice and the environment that make a ``serve`` process run
    ``backend`` (``httptools-py``: the pure build, every twin pure, not the driver alone)."""
    if backend == "httptools-py":
        return "httptools", {"LLMSTRUCT_NO_EXTENSIONS": "1"}
    return backend, {}


HANG = 10.0  # upper bound on any single wait: only to avoid hanging, never asserted on


def wait_for(condition: Any, what: str) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after HANG seconds."""
    deadline = time.monotonic() + HANG
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- the app the protocol tests run ----------------------------------------------------------------
ITEMS = {"1": {"id": "1", "name": "one"}, "2": {"id": "2", "name": "two"}}


def make_app(middleware: list[Any] | None = None) -> App:
    app = App(middleware or [])

    @app.route("/health", public=True)
    def health(request):
        return {"status": "ok"}

    @app.route("/items/{item_id}")
    def item(request):
        found = ITEMS.get(request.path_params["item_id"])
        return found if found else JSONResponse({"detail": "Item not found"}, 404)

    @app.route("/echo", methods=["POST", "PUT"])
    async def echo(request):
        body = await request.body()
        return Response(body, headers={"x-length": str(len(body))}, media_type="text/plain")

    @app.route("/ignore", methods=["POST"])
    def ignore(request):
        return PlainTextResponse("ignored")

    @app.route("/slow")
    async def slow(request):
        await asyncio.sleep(float(request.query.get("s", "0.2")))
        return PlainTextResponse("slow done")

    @app.route("/stream")
    def stream(request):
        count = int(request.query.get("n", "3"))
        size = int(request.query.get("size", "4"))

        async def chunks():
            for index in range(count):
                yield (b"%d" % (index % 10)) * size
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.route("/big")
    def big(request):
        return PlainTextResponse(b"b" * int(request.query.get("size", "100000")))

    @app.route("/fail")
    def fail(request):
        raise RuntimeError("boom (expected by the test)")

    return app


# -- a server in a thread --------------------------------------------------------------------------
class ServerThread:
    """A ``Server`` on 127.0.0.1:<free port>, run by a private loop in a daemon thread."""

    def __init__(self, app: App, limits: Limits, http: str) -> None:
        """``http``: an ``--http`` choice or a ``BACKENDS`` id."""
        self.app = app
        self.limits = limits
        self.http = http
        self.port = 0
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(HANG):
            raise RuntimeError("test server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start() or stop()
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        sock = bind_socket("127.0.0.1", 0, self.limits.backlog)
        self.port = sock.getsockname()[1]
        self.server = Server(self.app, self.limits, driver_for(self.http))
        pure = pure_twins_for(self.http, self.app)
        if pure is not None:
            self.server.state.protocol_class = pure
        self.server.start(sock)
        self._ready.set()
        await self._stop.wait()
        await self.server.shutdown(self._grace)

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the server's loop."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, grace: float = 1.0) -> None:
        if not self._thread.is_alive():
            return
        self._grace = grace
        self.call(self._stop.set)
        self._thread.join(HANG + grace)
        if self._thread.is_alive():
            raise RuntimeError("test server did not stop")
        if self._error is not None:
            raise self._error


# -- a raw client ----------------------------------------------------------------------------------
def connect(port: int, timeout: float = HANG) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Reads HTTP/1.1 responses from a socket (Content-Length, chunked, or until close)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise EOFError(f"connection closed with {len(self.buffer)}/{n} bytes")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _line(self, end: bytes = b"\r\n") -> bytes:
        start = 0
        while (index := self.buffer.find(end, start)) < 0:
            start = max(0, len(self.buffer) - len(end))
            if not self._fill():
                raise EOFError("connection closed mid-line")
        line = bytes(self.buffer[:index])
        del self.buffer[: index + len(end)]
        return line

    def response(self, head_only: Any = False) -> HTTPResponse:
        """The next response; ``head_only`` for a HEAD request (no body follows).

        ``head_only`` may also be a function of the parsed head deciding it.
        """
        head = self._line(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
        response = HTTPResponse(int(status_line.split()[1]), headers, b"")
        if callable(head_only):
            head_only = head_only(response)
        if head_only or response.status in (204, 304) or response.status < 200:
            return response
        if response.header("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if not size:
                    self._line()
                    break
                parts.append(self._take(size))
                self._line()
            response.body = b"".join(parts)
        elif response.header("content-length") is not None:
            response.body = self._take(int(response.header("content-length")))
        else:
            while self._fill():
                pass
            response.body, self.buffer = bytes(self.buffer), bytearray()
        return response

    def closed(self) -> bool:
        """True if the server closed (or reset) the connection, with nothing more sent."""
        while self._fill():
            pass
        return not self.buffer


class HTTPResponse:
    def __init__(self, status: int, headers: list[tuple[str, ...]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for item in self.headers:
            if item[0].lower() == name:
                return item[1] if len(item) > 1 else ""
        return None

    def __repr__(self) -> str:
        return f"HTTPResponse({self.status}, {self.headers!r}, {self.body[:80]!r})"


def exchange(port: int, data: bytes, count: int = 1) -> tuple[list[HTTPResponse], bool]:
    """Send ``data`` on a new connection; read ``count`` responses; report whether it then closed.

    Whether it closed is probed without waiting on a clock: a last request with
    ``Connection: close`` gets a response only on a connection still open.
    """
    with connect(port) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        responses = [reader.response() for _ in range(count)]
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return responses, True
        return responses, reader.closed()


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


# -- a protocol on a fake transport ----------------------------------------------------------------
class FakeTransport(asyncio.Transport):
    """Records what the protocol writes and how it closes; no socket involved."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.eof_written = False
        self.reading = True
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        assert not self.eof_written and not self.closed, "write after close"
        self.written += data

    def write_eof(self) -> None:
        self.eof_written = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class Harness:
    """One ``HttpProtocol`` with a fake transport, on a private event loop."""

    def __init__(self, backend: str, app: App | None = None, **limits: Any) -> None:
        self.loop = asyncio.new_event_loop()
        app = app or make_app()
        pure = pure_twins_for(backend, app)
        self.state = ServerState(
            app, Limits().replace(**limits), driver_for(backend), pure or HttpProtocol
        )
        self.state.loop = self.loop
        self.transport = FakeTransport()
        self.protocol = self.state.protocol_class(self.state)
        self.protocol.connection_made(self.transport)

    def feed(self, data: bytes, bytewise: bool = False) -> Harness:
        pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
        for piece in pieces:
            if self.transport.closed or self.protocol.closing:
                break
            self.protocol.data_received(piece)
            self.run()
        self.run()
        return self

    def run(self, ticks: int = 20) -> None:
        """Let tasks the protocol started run (handlers, streaming)."""
        for _ in range(ticks):
            self.loop.run_until_complete(asyncio.sleep(0))

    @property
    def output(self) -> bytes:
        return bytes(self.transport.written)

    def responses(self) -> list[HTTPResponse]:
        reader = Reader(_BytesSocket(self.output))
        found = []
        while reader.buffer or not reader.eof:
            try:
                found.append(reader.response())
            except EOFError:
                break
        return found

    def close(self) -> None:
        if not self.transport.closed:
            self.transport.closed = True
        self.protocol.connection_lost(None)
        self.run()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


class _BytesSocket:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def recv(self, n: int) -> bytes:
        data, self.data = self.data[:n], self.data[n:]
        return data


# -- ``llmstruct serve`` as a process --------------------------------------------------------------
SERVE_APP = Path(__file__).with_name("serve_app.py")


class Served:
    """A running ``serve`` process and what it said (stderr lines, sd_notify messages)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp_path
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify.sock"))
        self.notify.settimeout(HANG)
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
            **(env or {}),
        }
        self.env.pop("LLMSTRUCT_API_KEY", None)
        self.process = subprocess.Popen(
            [sys.executable, str(SERVE_APP), "--port", "0", "--root", str(tmp_path), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: close() can end its workers too
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_serving(self) -> Served:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                return self
        raise AssertionError(f"server did not start: {''.join(self.stderr)}")

    def message(self) -> str:
        return self.notify.recv(4096).decode()

    @property
    def key(self) -> str:
        return (self.tmp / "xdg" / "llmstruct" / "api_key").read_text().strip()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(HANG)

    def close(self) -> None:
        """Kill the server and anything it forked (its process group), then close pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(HANG)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers of a failed test, if any
        self._reader.join(HANG)
        if not self._reader.is_alive():
            self.process.stderr.close()
        self.notify.close()
