"""The proxy's per-backend counters: cumulative, per window, and as Prometheus text.

Every answered request is recorded twice, into the totals since start and into the
current window; ``POST /_proxy/stats/window`` hands the window over and starts a
new one (what the migrator's gates read). Both render to the JSON of
``notes/MIGRATION_INTERFACE.md``. Everything runs on the proxy's event loop: plain
attributes, no locks.

What is counted: ``requests`` -- responses this backend gave (in shadow mode the
custom side's are the mirrored requests); ``errors`` -- those with status >= 500,
408 or 429 (the backend did not serve the request: it failed, timed out or shed
load, which a client sees as a failure as much as a 503), plus upstream failures;
``upstream_failures`` -- no usable response (refused, broken, timed out: answered
502/503/504 by the proxy). Latency runs from the proxy having the request head to
the upstream response's last body byte passed on (streams included: a 10 s NDJSON
scan counts 10 s).
"""

from __future__ import annotations

import bisect
import time
from typing import Any

from llmstruct.migration.histogram import LatencyHistogram

__all__ = ["BackendStats", "ProxyStats", "BACKENDS", "LEGACY", "CUSTOM"]

LEGACY, CUSTOM = "legacy", "custom"
BACKENDS = (LEGACY, CUSTOM)
# The 4xx statuses counted as errors with the 5xx: the server's refusals, not the client's.
SERVER_REFUSALS = frozenset({408, 429})
# prometheus_client's default buckets, as the servers' own metrics (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class BackendStats:
    """One backend over one period."""

    __slots__ = ("requests", "errors", "upstream_failures", "classes", "latency", "websockets")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.upstream_failures = 0
        self.classes: dict[str, int] = {}  # "2xx" -> count
        self.latency = LatencyHistogram()
        self.websockets = 0

    def record(self, status: int, seconds: float) -> None:
        self.requests += 1
        key = f"{status // 100}xx"
        self.classes[key] = self.classes.get(key, 0) + 1
        if status >= 500 or status in SERVER_REFUSALS:
            self.errors += 1
        self.latency.record_seconds(seconds)

    def failure(self, status: int, seconds: float) -> None:
        self.upstream_failures += 1
        self.record(status, seconds)

    def as_json(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "upstream_failures": self.upstream_failures,
            "rps": round(self.requests / seconds, 3) if seconds > 0 else 0.0,
            "latency_ms": self.latency.summary(),
            "latency_hdr": self.latency.encode(),
        }


class ProxyStats:
    """Totals since start and the current window, for both backends."""

    def __init__(self) -> None:
        now = time.time()
        self.started = now
        self.window_started = now
        self.total = {name: BackendStats() for name in BACKENDS}
        self.window = {name: BackendStats() for name in BACKENDS}
        self.buckets = {name: [0] * (len(BUCKETS) + 1) for name in BACKENDS}
        self.latency_sum = dict.fromkeys(BACKENDS, 0.0)

    def record(self, backend: str, status: int, seconds: float, failure: bool = False) -> None:
        for period in (self.total[backend], self.window[backend]):
            if failure:
                period.failure(status, seconds)
            else:
                period.record(status, seconds)
        self.buckets[backend][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[backend] += seconds

    def websocket(self, backend: str) -> None:
        self.total[backend].websockets += 1
        self.window[backend].websockets += 1

    def snapshot(self, window: bool = False) -> dict[str, Any]:
        """The stats JSON of the totals, or of the current window."""
        started = self.window_started if window else self.started
        periods = self.window if window else self.total
        ended = time.time()
        return {
            "started": started,
            "ended": ended,
            "backends": {
                name: periods[name].as_json(ended - started) for name in BACKENDS
            },  # fmt: skip
        }

    def rotate(self) -> dict[str, Any]:
        """The current window's stats; a new window starts now."""
        result = self.snapshot(window=True)
        self.window = {name: BackendStats() for name in BACKENDS}
        self.window_started = result["ended"]
        return result

    def render(self) -> list[str]:
        """Prometheus lines of the totals, labelled ``backend``."""
        lines = [
            "# HELP llmstruct_proxy_requests_total Responses relayed, by backend",
            "# TYPE llmstruct_proxy_requests_total counter",
        ]
        add = lines.append
        for name in BACKENDS:
            add(f'llmstruct_proxy_requests_total{{backend="{name}"}} {self.total[name].requests}')
        add("# HELP llmstruct_proxy_responses_total Responses by status class")
        add("# TYPE llmstruct_proxy_responses_total counter")
        for name in BACKENDS:
            for cls, count in sorted(self.total[name].classes.items()):
                add(f'llmstruct_proxy_responses_total{{backend="{name}",class="{cls}"}} {count}')
        add("# HELP llmstruct_proxy_upstream_failures_total Requests the upstream did not answer")
        add("# TYPE llmstruct_proxy_upstream_failures_total counter")
        for name in BACKENDS:
            value = self.total[name].upstream_failures
            add(f'llmstruct_proxy_upstream_failures_total{{backend="{name}"}} {value}')
        add("# HELP llmstruct_proxy_websockets_total WebSocket sessions relayed")
        add("# TYPE llmstruct_proxy_websockets_total counter")
        for name in BACKENDS:
            count = self.total[name].websockets
            add(f'llmstruct_proxy_websockets_total{{backend="{name}"}} {count}')
        add("# HELP llmstruct_proxy_latency_seconds Head received to last body byte relayed")
        add("# TYPE llmstruct_proxy_latency_seconds histogram")
        for name in BACKENDS:
            cumulative = 0
            for bound, count in zip((*BUCKETS, "+Inf"), self.buckets[name], strict=True):
                cumulative += count
                add(f'llmstruct_proxy_latency_seconds_bucket{{backend="{name}",le="{bound}"}} '
                    f"{cumulative}")  # fmt: skip
            add(f'llmstruct_proxy_latency_seconds_sum{{backend="{name}"}} '
                f"{self.latency_sum[name]!r}")  # fmt: skip
            add(f'llmstruct_proxy_latency_seconds_count{{backend="{name}"}} {cumulative}')
        return lines
