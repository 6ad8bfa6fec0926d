"""The proxy's admin API under ``/_proxy/`` (never forwarded), per MIGRATION_INTERFACE.md.

``GET metrics`` (Prometheus text), ``GET config``, ``PUT weight``, ``GET stats``
(since start) and ``POST stats/window`` (the window that just ended; a new one
starts). Auth: with an admin key, ``Authorization: Bearer KEY`` (compared in
constant time; 401 otherwise); without one, only loopback clients are answered
(403 for others), as the servers allow no-auth only on loopback. Errors are
``{"detail": ...}``. (``admin.py`` is the other side: the migrator's client.)
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

import orjson

from llmstruct.server.app import (
    HTTPException,
    PlainTextResponse,
    Request,
    Response,
    encoded_json,
    error_json,
)

if TYPE_CHECKING:
    from llmstruct.migration.proxy import ProxyApp

__all__ = ["AdminAuth", "add_admin_routes"]

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdminAuth:
    """The admin API's auth rule, as a middleware of the proxy's App (admin routes only)."""

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None

    def on_request(self, request: Request) -> Response | None:
        if self._key is None:
            if _is_loopback(request.client[0] if request.client else None):
                return None
            return error_json(403, "The proxy admin API without --admin-key is loopback only")
        for name, value in request.raw_headers:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key):
                    return None
        return error_json(401, "Invalid or missing admin key", {"WWW-Authenticate": "Bearer"})


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _json(value: Any) -> Response:
    return encoded_json(orjson.dumps(value))


def add_admin_routes(app: ProxyApp) -> None:
    def config(request: Request) -> Any:
        return app.config()

    async def weight(request: Request) -> Any:
        from llmstruct.migration.proxy import SettingsError, parse_weight

        raw = await request.body()
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise HTTPException(400, 'Body must be JSON: {"weight": 0..1}') from None
        if not isinstance(payload, dict) or "weight" not in payload:
            raise HTTPException(400, "Body must be a JSON object with a 'weight'")
        value = payload["weight"]
        if not isinstance(value, int | float | str) or isinstance(value, bool):
            raise HTTPException(400, "weight must be a number in [0, 1]")
        try:
            weight = parse_weight(value)
        except SettingsError as exc:
            raise HTTPException(400, str(exc)) from None
        if weight and app.settings.mode != "split":
            # Every answer comes from legacy in shadow mode: a weight would be a
            # migration that moves nothing, and a migrator must not think otherwise.
            # 0 (a rollback) is what shadow mode does anyway, so it is accepted.
            raise HTTPException(409, f"the proxy runs in {app.settings.mode} mode: no weight")
        app.splitter.set_weight(weight)
        return app.config()

    def stats(request: Request) -> Response:
        return _json(_with_mode(app, app.stats.snapshot(), window=False))

    def window(request: Request) -> Response:
        return _json(_with_mode(app, app.stats.rotate(), window=True))

    def metrics(request: Request) -> Response:
        lines = app.stats.render()
        if app.shadow is not None:
            lines += app.shadow.render()
        return PlainTextResponse("\n".join(lines) + "\n", media_type=METRICS_TYPE)

    app.add_route("/_proxy/config", config)
    app.add_route("/_proxy/weight", weight, methods=("PUT",))
    app.add_route("/_proxy/stats", stats)
    app.add_route("/_proxy/stats/window", window, methods=("POST",))
    app.add_route("/_proxy/metrics", metrics)


def _with_mode(app: ProxyApp, snapshot: dict[str, Any], window: bool) -> dict[str, Any]:
    result = {"mode": app.settings.mode, "weight": app.splitter.weight, **snapshot}
    if app.shadow is not None:
        result["shadow"] = app.shadow.rotate() if window else app.shadow.snapshot()
    return result
