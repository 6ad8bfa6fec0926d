"""A fake OpenAI-compatible LLM server on loopback, for testing the AI bridge end to end.

``FakeLLM`` is a real HTTP/1.1 server (``http.server.ThreadingHTTPServer`` on
127.0.0.1, port 0, in a background thread) answering ``POST /v1/chat/completions``
as OpenAI does: a JSON completion with ``usage``, or with ``"stream": true`` a
chunked ``text/event-stream`` of ``chat.completion.chunk`` events (``delta.content``),
a final usage chunk when ``stream_options.include_usage`` is set, and
``data: [DONE]``. Set ``mode`` to change what it does for the next request:

* ``echo``      answers ``You asked: '<question>'. The system message has N characters.``
* ``error``     HTTP ``error_status`` (500) with an OpenAI error body (``error_message``)
* ``garbage``   HTTP 200 whose body (or first event) is not JSON
* ``nochoices`` HTTP 200 with a completion object that has no ``choices``
* ``slow``      waits ``delay`` seconds before answering (longer than a test's timeout)
* ``stall``     (streaming) sends the first delta, then waits ``delay`` seconds
* ``drop``      reads the request, then closes the connection without answering
* ``whole``     answers a streaming request with one JSON completion (no SSE)

``stream_usage = False`` makes it ignore ``stream_options`` (no usage chunk), as
backends that predate the option do.

It records every request (``requests``: path, lower-cased headers, JSON body) and
counts accepted connections (``connections``). Waits end at ``stop()``, so a slow
mode never holds up teardown. ``HangUp`` accepts and resets every connection (with
an ``https://`` URL the TLS handshake fails: a connect error) and counts them;
``unused_port()`` gives a port where nothing listens.

Use as ``with FakeLLM() as llm: ... llm.url ...``, as the ``fake_llm`` fixture, or
from a shell: ``python tests/fakellm.py [--port N] [--mode echo]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MODES = ("echo", "error", "garbage", "nochoices", "slow", "stall", "drop", "whole")
HOST = "127.0.0.1"
#: Backstop for a client that neither sends nor closes; tests never wait for it.
HANDLER_TIMEOUT = 30.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    json: Any  # the decoded body, or None if it was not JSON
    usage: dict[str, int] = field(default_factory=dict)  # what the fake answered with


def unused_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def echo_answer(messages: list[dict[str, Any]]) -> str:
    system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    question = users[-1] if users else ""
    return f"You asked: {question!r}. The system message has {len(system)} characters."


def usage_for(messages: list[dict[str, Any]], answer: str) -> dict[str, int]:
    """Deterministic fake token counts (words), distinct per request."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion = len(answer.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _Background:
    """A socketserver in a daemon thread; ``stop()`` wakes waits, ends every open
    connection and joins every thread, so nothing outlives the test."""

    server: socketserver.TCPServer

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> _Background:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self._drop_connections()
        self.server.server_close()  # joins the handler threads

    def _drop_connections(self) -> None:
        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- the fake LLM -------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins them
    block_on_close = True

    def __init__(self, fake: FakeLLM, port: int) -> None:
        self.fake = fake
        self.live: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def process_request(self, request, client_address):
        with self.lock:  # registered before the thread runs, so stop() always sees it
            self.live.add(request)
            self.fake.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.lock:
            self.live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that timed out and left: writing to it fails. Expected, not news.
        pass


class FakeLLM(_Background):
    """The fake backend; ``url`` is its OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""

    server: _Server

    def __init__(
        self, mode: str = "echo", delay: float = 30.0, model: str = "fake-model", port: int = 0
    ) -> None:
        super().__init__()
        self.mode = mode
        self.delay = delay
        self.model = model
        self.error_status = 500
        self.error_message = "The fake model failed on purpose."
        self.stream_usage = True
        self.requests: list[Received] = []
        self.connections = 0
        self.server = _Server(self, port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def _drop_connections(self) -> None:
        with self.server.lock:
            live = list(self.server.live)
        for conn in live:  # wakes handlers blocked reading the next keep-alive request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- dispatch ---------------------------------------------------------------------
    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        fake.requests.append(received)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"Unknown path {self.path}", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "Body must be JSON with messages", "invalid_request_error")
        mode = fake.mode
        if mode == "drop":
            self.close_connection = True
            return None
        if mode == "slow" and self._wait():
            return None
        if mode == "error":
            return self._error(fake.error_status, fake.error_message, "server_error")
        if mode == "nochoices":
            return self._json(200, {"id": "chatcmpl-fake", "object": "chat.completion"})
        answer = echo_answer(body["messages"])
        received.usage = usage_for(body["messages"], answer)
        if body.get("stream") and mode != "whole":
            return self._stream(body, answer, received.usage)
        if mode == "garbage":
            return self._send(200, "application/json", b'{"choices": [{"message": oops')
        return self._json(200, self._completion(body, answer, received.usage))

    def _wait(self) -> bool:
        """Sleep ``delay`` seconds; True if the fake is stopping (give up the request)."""
        stopped = self.server.fake.stopping.wait(self.server.fake.delay)
        self.close_connection = True
        return stopped

    # -- answers ----------------------------------------------------------------------
    def _completion(self, body: dict, answer: str, usage: dict[str, int]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.server.fake.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }

    def _stream(self, body: dict, answer: str, usage: dict[str, int]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(b": keep-alive comment, as some proxies send\n\n")
        if self.server.fake.mode == "garbage":
            self._chunk(b"data: {not json\n\n")
            return self._chunk(b"")
        words = answer.split(" ")
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
        for n, delta in enumerate(deltas):
            self._event(
                self._chunk_object(body, [{"index": 0, "delta": delta, "finish_reason": None}])
            )
            if n == 1 and self.server.fake.mode == "stall" and self._wait():
                return None
        self._event(self._chunk_object(body, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and self.server.fake.stream_usage:
            self._event({**self._chunk_object(body, []), "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk_object(self, body: dict, choices: list) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model") or self.server.fake.model,
            "choices": choices,
        }

    def _event(self, data: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(data).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _error(self, status: int, message: str, kind: str) -> None:
        error = {"message": message, "type": kind, "param": None, "code": None}
        self._json(status, {"error": error})

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# -- a listener that hangs up ---------------------------------------------------------
class _HangUpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # Linger 0: close() sends RST, the peer sees a reset rather than an orderly end.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.hangup.accepted += 1  # type: ignore[attr-defined]


class HangUp(_Background):
    """Accepts each connection and resets it at once, counting them (``accepted``).

    ``url`` is ``https://``: the client's TLS handshake fails, so every attempt is
    a connect error that no request can have got past.
    """

    def __init__(self) -> None:
        super().__init__()
        self.accepted = 0
        self.server = socketserver.TCPServer((HOST, 0), _HangUpHandler)
        self.server.hangup = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/v1"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A running ``FakeLLM`` in echo mode, stopped at teardown."""
    with FakeLLM() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible LLM server.")
    parser.add_argument("--mode", choices=MODES, default="echo")
    parser.add_argument("--delay", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeLLM(args.mode, args.delay, port=args.port) as server:
        print(f"fake LLM at {server.url} (mode {server.mode}); Ctrl-C stops it", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
