"""The system endpoints and the assembled application of a worker.

``GET /api/v1/system/health`` (no auth): ``{"status": "ok", "version", "uptime_s"}``
-- cheap and synchronous, for load balancers and systemd watchdogs.
``GET /api/v1/system/metrics``: this worker's Prometheus metrics (``metrics.py``).
``GET /openapi.json`` (no auth): the OpenAPI document of every route (``openapi.py``).
``WS /api/v1/ws``: the JSON message protocol of ``ws_api.py`` (``ping`` -> ``pong``).

``build_app`` wires them behind the default middleware chain; the API routes of
the engine are added to the same ``App`` by their own modules.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llmstruct import __version__
from llmstruct.server.app import App, Request, Response, encoded_json
from llmstruct.server.metrics import Metrics
from llmstruct.server.middleware import LogSink, default_chain
from llmstruct.server.openapi_route import add_openapi_route

__all__ = ["build_app", "add_system_routes", "HEALTH_PATH", "METRICS_PATH"]

HEALTH_PATH = "/api/v1/system/health"
METRICS_PATH = "/api/v1/system/metrics"
WS_PATH = "/api/v1/ws"


def add_system_routes(app: App, metrics: Metrics) -> None:
    monotonic = time.monotonic
    started = monotonic()

    # [uptime in whole milliseconds, the body saying so]: the load balancer's hot
    # path encodes its answer once a millisecond, not once a probe (at full load,
    # tens of probes a millisecond share it). Whole milliseconds: round(x, 3) goes
    # through a decimal string and costs as much as the rest of this handler.
    latest: list[Any] = [-1, b""]

    def health(request: Request) -> Response:
        milliseconds = round((monotonic() - started) * 1000)
        if milliseconds != latest[0]:
            latest[1] = orjson.dumps(
                {"status": "ok", "version": __version__, "uptime_s": milliseconds / 1000}
            )
            latest[0] = milliseconds
        return encoded_json(latest[1])

    def metrics_text(request: Request) -> Response:
        return metrics.response()

    app.add_route(HEALTH_PATH, health, public=True, summary="Health", tags=("system",),
                  response="llmstruct.api.models:HealthResponse")  # fmt: skip
    app.add_route(METRICS_PATH, metrics_text, summary="Metrics Text", tags=("system",),
                  media_type="text/plain")  # fmt: skip


def build_app(
    api_key: str | None,
    *,
    cors_origins: tuple[str, ...] = (),
    rate_limit: float = 100.0,
    rate_burst: int = 200,
    forwarded_allow_ips: tuple[str, ...] = (),
    access_log: bool = True,
    log_sink: LogSink | None = None,
    websocket: bool = True,
) -> App:
    """The worker's App: middleware chain, system routes, and the ``/api/v1/ws`` socket.

    ``api_key=None`` is the no-auth mode (``serve`` allows it on loopback only).
    ``app.state["metrics"]`` is the ``Metrics`` (``/api/v1/system/metrics`` renders it).
    """
    metrics = Metrics()
    chain = default_chain(
        api_key,
        cors_origins=cors_origins,
        rate=rate_limit,
        burst=rate_burst,
        forwarded_allow_ips=forwarded_allow_ips,
        log_sink=log_sink,
        metrics=metrics,
    )
    if not access_log:
        chain = [m for m in chain if type(m).__name__ != "AccessLog"]
    app = App(chain)
    app.state["metrics"] = metrics
    app.state["log_sink"] = next((m.sink for m in chain if hasattr(m, "sink")), None)
    add_system_routes(app, metrics)
    add_openapi_route(app)
    if websocket:
        from llmstruct.server.ws_api import install

        install(app, WS_PATH)  # the app's own dispatcher: the engine adds its messages
    return app
