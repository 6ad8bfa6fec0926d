"""Prometheus metrics for one worker, rendered as the text exposition format (0.0.4).

Every request runs through these hooks, so this module is a hot path with two
twins of one source: this is the pure twin, and the build compiles this same
file as ``_metrics_c`` with the types declared in ``_metrics_c.pxd`` (Cython's pure
Python mode). ``llmstruct.server.metrics`` is the selector the server imports.

``Metrics`` is a middleware (it counts every response and every protocol-level
refusal) and the source of ``/api/v1/system/metrics``. The request series keep
the FastAPI service's names (``api_requests_total``, ``api_request_duration_seconds``)
so existing dashboards keep working, labelled by the route *template* (bounded
cardinality: ``/api/v1/tasks/{id}``, never the raw path) and the status.

Counters live in plain dicts updated on the event loop thread: no locks. Each
worker process has its own; with ``--workers N`` a scrape sees the worker that
accepted it (the ``pid`` of the worker is a label of ``llmstruct_worker_info``).
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from llmstruct import __version__
from llmstruct.server.app import PlainTextResponse, Request, Response

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# prometheus_client's default histogram buckets (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_UNMATCHED = "<unmatched>"
_perf_counter = time.perf_counter


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts and latencies, refusals, in-flight requests, open connections."""

    __slots__ = ("state", "started", "_series", "refused")  # the fields of _metrics_c.pxd

    def __init__(self, state: Any = None) -> None:
        self.state = state  # the ServerState, for connection gauges (see on_server)
        self.started = time.time()
        # (method, endpoint, status) -> [seconds in all, then a count per bucket]: one
        # dict probe per response; the exposition sums them into its two families.
        self._series: dict[tuple[str, str, int], list[Any]] = {}
        self.refused: dict[str, int] = {}

    # -- middleware hooks ---------------------------------------------------------------------
    # No on_request hook: the in-flight gauge is read from the connections when a
    # scrape asks (ServerState.requests_in_flight), not counted up and down per request.
    def on_server(self, state: Any) -> None:
        self.state = state

    def on_response(self, request: Request, response: Response) -> Response:
        key = (request.method, request.route or _UNMATCHED, response.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] + [0] * (len(BUCKETS) + 1)
        elapsed = _perf_counter() - request.started
        series[0] += elapsed
        # bisect_left by hand: compiled, a loop with a C double compare that nearly always
        # stops at the first bound, where a call to bisect cost a fifth of this hook.
        index = 1
        for bound in BUCKETS:
            if elapsed <= bound:
                break
            index += 1
        series[index] += 1
        return response

    def requests(self) -> dict[tuple[str, str, int], int]:
        """Responses so far by (method, endpoint, status)."""
        return {key: sum(series[1:]) for key, series in self._series.items()}

    def durations(self) -> dict[str, tuple[list[int], float, int]]:
        """Per endpoint: (count per bucket, seconds in all, count)."""
        merged: dict[str, tuple[list[int], float, int]] = {}
        for (_, endpoint, _), series in self._series.items():
            counts, total, count = merged.get(endpoint, ([0] * (len(BUCKETS) + 1), 0.0, 0))
            buckets = series[1:]
            counts = [a + b for a, b in zip(counts, buckets, strict=True)]
            merged[endpoint] = (counts, total + series[0], count + sum(buckets))
        return merged

    def on_refusal(self, status: int | None, detail: str, client: Any) -> None:
        key = str(status) if status is not None else "aborted"
        self.refused[key] = self.refused.get(key, 0) + 1

    # -- exposition -----------------------------------------------------------------------------
    def render(self) -> str:
        lines: list[str] = []
        add = lines.append
        add("# HELP api_requests_total Total API requests")
        add("# TYPE api_requests_total counter")
        for (method, endpoint, status), count in sorted(self.requests().items()):
            add(
                f'api_requests_total{{method="{_label(method)}",endpoint="{_label(endpoint)}",'
                f'status="{status}"}} {count}'
            )
        add("# HELP api_request_duration_seconds Request duration, to the response head")
        add("# TYPE api_request_duration_seconds histogram")
        for endpoint, (counts, total, count) in sorted(self.durations().items()):
            label = _label(endpoint)
            cumulative = 0
            for bound, bucket in zip((*BUCKETS, "+Inf"), counts, strict=True):
                cumulative += bucket
                le = bound if isinstance(bound, str) else repr(bound)
                add(
                    f"api_request_duration_seconds_bucket"
                    f'{{endpoint="{label}",le="{le}"}} {cumulative}'
                )
            add(f'api_request_duration_seconds_sum{{endpoint="{label}"}} {total!r}')
            add(f'api_request_duration_seconds_count{{endpoint="{label}"}} {count}')
        add(
            "# HELP llmstruct_http_refused_total Requests refused by the protocol (status; aborted)"
        )
        add("# TYPE llmstruct_http_refused_total counter")
        for status, count in sorted(self.refused.items()):
            add(f'llmstruct_http_refused_total{{status="{status}"}} {count}')
        add("# HELP llmstruct_http_requests_in_flight Requests being handled")
        add("# TYPE llmstruct_http_requests_in_flight gauge")
        in_flight = self.state.requests_in_flight() if self.state is not None else 0
        add(f"llmstruct_http_requests_in_flight {in_flight}")
        if self.state is not None:
            websockets = len(self.state.websockets)
            add("# HELP llmstruct_http_connections_open Open HTTP connections")
            add("# TYPE llmstruct_http_connections_open gauge")
            add(f"llmstruct_http_connections_open {len(self.state.connections) - websockets}")
            add("# HELP llmstruct_websocket_connections_open Open WebSocket connections")
            add("# TYPE llmstruct_websocket_connections_open gauge")
            add(f"llmstruct_websocket_connections_open {websockets}")
        add("# HELP llmstruct_worker_info The worker answering this scrape")
        add("# TYPE llmstruct_worker_info gauge")
        add(f'llmstruct_worker_info{{pid="{os.getpid()}",version="{__version__}"}} 1')
        add("# HELP process_resident_memory_bytes Resident memory size in bytes")
        add("# TYPE process_resident_memory_bytes gauge")
        add(f"process_resident_memory_bytes {_rss_bytes()}")
        add("# HELP process_start_time_seconds Start time of the process since the epoch")
        add("# TYPE process_start_time_seconds gauge")
        add(f"process_start_time_seconds {self.started!r}")
        return "\n".join(lines) + "\n"

    def response(self) -> Response:
        return PlainTextResponse(self.render(), media_type=CONTENT_TYPE)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
