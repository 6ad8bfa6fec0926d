"""Real processes for the proxy tests: backends, the proxy itself, and a small WebSocket client.

Every process runs on 127.0.0.1 port 0 and is found by the line it prints on
start; ``Proc.stop`` terminates it (SIGTERM, then SIGKILL after ``HANG``).
``custom`` runs ``proxy_backend.py`` (``llmstruct serve`` with test routes),
``fastapi`` the FastAPI reference, ``proxy`` ``llmstruct migrate proxy``. The
backends run without auth (loopback) and without the per-client rate limit:
behind a proxy every request comes from one address.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws_events

import llmstruct

HANG = 60.0  # upper bound on one wait; never asserted on
HERE = Path(__file__).resolve().parent
FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n',
    "shop/cart.py": (
        'def total(items):\n    """Add up the prices of the items."""\n    return sum(items)\n'
    ),
    "shop/pricing.py": (
        "from shop.cart import total\n\n\n"
        "def discounted(items, rate):\n    return total(items) * (1 - rate)\n"
    ),
    "shop/util.js": "export function fmt(x) { return String(x); }\n",
}


def make_project(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def child_env(**extra: str) -> dict[str, str]:
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": parent + (os.pathsep + path if path else "")}
    for name in ("LLMSTRUCT_API_KEY", "LLMSTRUCT_PROXY_ADMIN_KEY", "PROXY_TEST_TAMPER",
                 "PROXY_TEST_SLOW_EXTRA"):  # fmt: skip
        env.pop(name, None)
    env.update(LLMSTRUCT_RATE_LIMIT="0", **extra)
    return env


@dataclass
class Proc:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=HANG, **options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(HANG)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(command: list[str], log: Path, pattern: str, env: dict[str, str]) -> Proc:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return Proc(process, int(found.group(1)), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"{command[1:4]} did not start:\n{log.read_text(errors='replace')}")


def custom(root: Path, log: Path, **extra: str) -> Proc:
    """``proxy_backend.py`` on ``root``; ``extra`` environment such as ``PROXY_TEST_TAMPER``."""
    command = [sys.executable, str(HERE / "proxy_backend.py"), "--root", str(root),
               "--port", "0", "--no-auth"]  # fmt: skip
    return start(command, log, r"serving on http://127\.0\.0\.1:(\d+)", child_env(**extra))


def fastapi(root: Path, log: Path) -> Proc:
    command = [sys.executable, "-m", "llmstruct.migration.serve_fastapi", "--root", str(root),
               "--port", "0", "--log-level", "warning"]  # fmt: skip
    return start(command, log, r"serving FastAPI on http://127\.0\.0\.1:(\d+)", child_env())


def proxy(legacy: str, custom_url: str, log: Path, *flags: str, **env: str) -> Proc:
    command = [sys.executable, "-m", "llmstruct.migration.proxy_command", "--legacy", legacy,
               "--custom", custom_url, "--port", "0", *flags]  # fmt: skip
    return start(command, log, r"proxy on http://127\.0\.0\.1:(\d+)", child_env(**env))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Any, what: str) -> Any:
    """Poll ``predicate`` until it returns something true (bounded by ``HANG``)."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


# -- WebSocket -------------------------------------------------------------------------------------
class WSClient:
    """A blocking wsproto client: handshake, JSON messages, closing."""

    def __init__(self, port: int, target: str, headers: list[tuple[str, str]] = ()) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.events: deque[Any] = deque()
        request = ws_events.Request(host=f"127.0.0.1:{port}", target=target,
                                    extra_headers=list(headers))  # fmt: skip
        self.sock.sendall(self.conn.send(request))
        accepted = self._next()
        assert isinstance(accepted, ws_events.AcceptConnection), accepted

    def _next(self) -> Any:
        while not self.events:
            data = self.sock.recv(65536)
            self.conn.receive_data(data or None)
            self.events.extend(self.conn.events())
            if not data and not self.events:
                raise ConnectionError("connection closed")
        return self.events.popleft()

    def send_json(self, value: Any) -> None:
        self.sock.sendall(self.conn.send(ws_events.TextMessage(data=json.dumps(value))))

    def receive(self) -> Any:
        """The next whole message, or the ``CloseConnection`` event if the server closes."""
        parts: list[Any] = []
        while True:
            event = self._next()
            if isinstance(event, ws_events.Ping):
                self.sock.sendall(self.conn.send(event.response()))
            elif isinstance(event, ws_events.CloseConnection):
                return event
            elif isinstance(event, ws_events.Message):
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts) if isinstance(parts[0], str) else b"".join(parts)

    def receive_json(self) -> Any:
        message = self.receive()
        assert isinstance(message, str | bytes), message
        return json.loads(message)

    def close(self, code: int = 1000) -> int | None:
        """Close with ``code``; the code of the server's echo."""
        self.sock.sendall(self.conn.send(ws_events.CloseConnection(code=code)))
        try:
            while True:
                event = self._next()
                if isinstance(event, ws_events.CloseConnection):
                    return event.code
        except ConnectionError:
            return None
        finally:
            self.sock.close()

    def shutdown(self) -> None:
        self.sock.close()
