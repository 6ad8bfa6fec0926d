"""A fake of the proxy's admin API on loopback, for testing the migrator's decisions.

``FakeProxy`` is a real HTTP server (``http.server.ThreadingHTTPServer`` on
127.0.0.1, port 0, in a thread) implementing what notes/MIGRATION_INTERFACE.md
says the migrator and the report use: ``GET /_proxy/config``, ``PUT
/_proxy/weight``, ``GET /_proxy/stats``, ``POST /_proxy/stats/window``, plus both
"backends'" ``/api/v1/system/metrics`` (under ``/legacy`` and ``/custom``) with a
``process_resident_memory_bytes`` gauge.

No requests really flow: each window's stats come from ``traffic(weight)``, by
default ``per_window`` requests split by the current weight, with
``custom_error_share`` of the custom ones failing and fixed p95s. Tests change
those attributes (or replace ``traffic``) to script what the gates see;
``unavailable = N`` makes the next N admin calls answer 503. It records every
weight put (``puts``) and every window closed (``windows``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmstruct.migration.histogram import LatencyHistogram


def encoded_histogram(latencies_us: list[int]) -> str | None:
    """The ``latency_hdr`` field for these latencies (microseconds), as the proxy sends it."""
    if not latencies_us:
        return None
    histogram = LatencyHistogram()
    for value in latencies_us:
        histogram.record(value)
    return histogram.encode()


def backend_stats(requests: int, errors: int, p95_ms: float, seconds: float) -> dict[str, Any]:
    """One backend's block of the stats document; every request took ``p95_ms``."""
    latency = None
    if requests:
        value = round(p95_ms, 3)
        latency = {"p50": value, "p95": value, "p99": value, "max": value, "mean": value}
    return {
        "requests": requests,
        "errors": errors,
        "upstream_failures": 0,
        "rps": requests / seconds if seconds > 0 else 0.0,
        "latency_ms": latency,
        "latency_hdr": encoded_histogram([int(p95_ms * 1000)] * requests),
    }


class FakeProxy:
    def __init__(self, admin_key: str | None = None) -> None:
        self.admin_key = admin_key
        self.weight = 0.0
        self.per_window = 100
        self.custom_error_share = 0.0
        self.legacy_p95_ms = 20.0
        self.custom_p95_ms = 5.0
        self.rss: dict[str, int | None] = {"legacy": 80 * 2**20, "custom": 40 * 2**20}
        self.stats_document: dict[str, Any] | None = None  # what GET /_proxy/stats answers
        self.unavailable = 0  # answer ``refusal`` (503) to this many admin calls
        self.refusal = 503
        self.puts: list[float] = []
        self.metrics_headers: list[dict[str, str]] = []  # of each backend metrics read
        self.windows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._window_started = time.time()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def traffic(self, weight: float) -> dict[str, Any]:
        """The backends block of a window at ``weight`` (tests may replace this)."""
        custom = round(self.per_window * weight)
        legacy = self.per_window - custom
        errors = round(custom * self.custom_error_share)
        return {
            "legacy": backend_stats(legacy, 0, self.legacy_p95_ms, 1.0),
            "custom": backend_stats(custom, errors, self.custom_p95_ms, 1.0),
        }

    def config(self) -> dict[str, Any]:
        return {"mode": "split", "weight": self.weight, "sticky_header": None,
                "legacy": f"{self.url}/legacy", "custom": f"{self.url}/custom"}  # fmt: skip

    def close_window(self) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            document = {"mode": "split", "weight": self.weight, "started": self._window_started,
                        "ended": now, "backends": self.traffic(self.weight)}  # fmt: skip
            self._window_started = now
            self.windows.append(document)
            return document


def _handler_for(fake: FakeProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if not self.path.startswith("/_proxy/"):
                return True
            with fake.lock:
                down, fake.unavailable = fake.unavailable > 0, max(0, fake.unavailable - 1)
            if down:
                self._send(fake.refusal, {"detail": f"refused with {fake.refusal}"})
                return False
            if fake.admin_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {fake.admin_key}":
                return True
            self._send(401, {"detail": "Invalid or missing admin key"})
            return False

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path == "/_proxy/config":
                self._send(200, fake.config())
            elif self.path == "/_proxy/stats":
                self._send(200, fake.stats_document or {"backends": fake.traffic(fake.weight)})
            elif self.path in ("/legacy/api/v1/system/metrics", "/custom/api/v1/system/metrics"):
                side = self.path.split("/")[1]
                with fake.lock:
                    fake.metrics_headers.append(dict(self.headers))
                text = "# TYPE process_resident_memory_bytes gauge\n"
                if fake.rss[side] is not None:  # None: a server without the gauge
                    text += f"process_resident_memory_bytes {fake.rss[side]}\n"
                self._send(200, text.encode(), "text/plain; version=0.0.4")
            else:
                self._send(404, {"detail": "Not Found"})

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)  # read even when refused: the connection is reused
            if not self._authorised():
                return
            try:
                weight = json.loads(body)["weight"]
                if isinstance(weight, bool) or not 0 <= float(weight) <= 1:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                self._send(400, {"detail": "weight must be a number from 0 to 1"})
                return
            if self.path != "/_proxy/weight":
                self._send(404, {"detail": "Not Found"})
                return
            with fake.lock:
                fake.weight = float(weight)
                fake.puts.append(fake.weight)
            self._send(200, fake.config())

        def do_POST(self) -> None:
            if not self._authorised():
                return
            if self.path == "/_proxy/stats/window":
                self._send(200, fake.close_window())
            else:
                self._send(404, {"detail": "Not Found"})

    return Handler
