"""A client for the traffic-splitting proxy's admin API, and the backends' RSS gauge.

The migrator and the report speak to the proxy only through ``ProxyAdmin``
(``/_proxy/config``, ``PUT /_proxy/weight``, ``GET /_proxy/stats``, ``POST
/_proxy/stats/window``: see notes/MIGRATION_INTERFACE.md) and read each backend's
``process_resident_memory_bytes`` from its ``/api/v1/system/metrics``. Every
failure (refused connection, timeout, an error status, an answer that is not the
expected JSON) becomes one ``ProxyError`` whose message can be shown as it is.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import httpx

__all__ = [
    "ProxyAdmin", "ProxyError", "check_key", "check_url", "get_metrics", "metrics_url", "read_rss",
]  # fmt: skip

TIMEOUT = 10.0  # seconds for one admin call: the proxy answers these from memory
_RSS = re.compile(rb"^process_resident_memory_bytes(?:\{[^}]*\})?\s+(\S+)", re.MULTILINE)


class ProxyError(Exception):
    """The proxy (or a backend) could not be reached or gave an unusable answer.

    ``status`` is the HTTP status of a refusal, ``None`` when there was no answer.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def check_url(url: str) -> str:
    """``url`` without a trailing slash, or ``ValueError`` if it is not an http(s) URL."""
    try:
        parsed = httpx.URL(url)
    except Exception:
        raise ValueError(f"not a URL: {url!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http:// or https:// URL: {url!r}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"the port of {url!r} is not in 1..65535")
    if any(c in parsed.host for c in "% "):  # httpx %-encodes what a host cannot hold
        raise ValueError(f"{url!r} has no valid host name")
    return url.rstrip("/")


def check_key(key: str, what: str) -> str:
    """``key`` if it can travel in an HTTP header (visible ASCII), else ``ValueError``."""
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ValueError(f"{what} must be visible ASCII characters without spaces")
    return key


class ProxyAdmin:
    """The admin API of the proxy at ``url``; ``admin_key`` as a Bearer token if set."""

    def __init__(self, url: str, admin_key: str | None = None, api_key: str | None = None) -> None:
        self.url = check_url(url)
        if admin_key:
            check_key(admin_key, "the admin key")
        if api_key:
            check_key(api_key, "the API key")
        headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)
        # The backends' metrics are read with a client of their own: the admin key is
        # the proxy's secret and must never travel to the backends (other hosts).
        self._backends = httpx.Client(timeout=TIMEOUT)
        self._api_key = api_key

    def close(self) -> None:
        self._client.close()
        self._backends.close()

    def __enter__(self) -> ProxyAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_proxy/config")

    def put_weight(self, weight: float) -> dict[str, Any]:
        return self._call("PUT", "/_proxy/weight", {"weight": weight})

    def stats(self) -> dict[str, Any]:
        """Cumulative stats since the proxy started."""
        return self._checked_stats(self._call("GET", "/_proxy/stats"))

    def window(self) -> dict[str, Any]:
        """The stats of the window that just ended; a new window starts."""
        return self._checked_stats(self._call("POST", "/_proxy/stats/window"))

    def backend_rss(self, backend_url: str) -> RssReading:
        """A backend's resident memory in bytes, or why it cannot be read."""
        return read_rss(self._backends, backend_url, self._api_key)

    def backends_rss(self, config: dict[str, Any]) -> dict[str, RssReading]:
        """Each side's memory, from the backend URLs of the proxy's ``config``."""
        return {
            side: self.backend_rss(url)
            if isinstance(url := config.get(side), str)
            else RssReading(None, f"the proxy's config has no {side} URL")
            for side in ("legacy", "custom")
        }

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        where = f"{method} {self.url}{path}"
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ProxyError(f"cannot reach the proxy ({where}): {_why(exc)}") from None
        if response.status_code >= 400:
            raise ProxyError(
                f"the proxy answered {response.status_code} to {where}: {_detail(response)}",
                status=response.status_code,
            )
        try:
            data = response.json()
        except ValueError:
            raise ProxyError(f"the proxy's answer to {where} is not JSON") from None
        if not isinstance(data, dict):
            raise ProxyError(f"the proxy's answer to {where} is not a JSON object")
        return data

    def _checked_stats(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` if each backend's figures are of the right kind (where present)."""
        backends = data.get("backends")
        if not isinstance(backends, dict) or not all(
            isinstance(backends.get(side), dict) for side in ("legacy", "custom")
        ):
            raise ProxyError("the proxy's stats have no 'backends' with 'legacy' and 'custom'")
        for side in ("legacy", "custom"):
            problem = _figures_problem(backends[side])
            if problem is not None:
                raise ProxyError(f"the stats of the proxy at {self.url} are unusable: {problem}")
        return data


def _figures_problem(figures: dict[str, Any]) -> str | None:
    """What is wrong with one backend's stats (the report and the migrator read them)."""
    for name in ("requests", "errors", "upstream_failures"):
        value = figures.get(name) or 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{name!r} is {value!r}, not a count"
    rps = figures.get("rps") or 0.0
    if not isinstance(rps, int | float) or isinstance(rps, bool) or not 0 <= rps < float("inf"):
        return f"'rps' is {rps!r}, not a rate"
    encoded = figures.get("latency_hdr")
    if encoded is not None and not isinstance(encoded, str):
        return f"'latency_hdr' is {type(encoded).__name__}, not a string"
    return None


def metrics_url(backend_url: str) -> str:
    return f"{backend_url.rstrip('/')}/api/v1/system/metrics"


def get_metrics(client: httpx.Client, backend_url: str, api_key: str | None) -> httpx.Response:
    """A backend's Prometheus text, asked with the API key; ``httpx.HTTPError`` as httpx."""
    headers = {"X-API-Key": api_key} if api_key else {}
    return client.get(metrics_url(backend_url), headers=headers, timeout=TIMEOUT)


class RssReading(NamedTuple):
    """A backend's ``process_resident_memory_bytes``: ``value`` in bytes, or ``None``
    and ``problem``, what went wrong (for the gate's and the report's words)."""

    value: int | None
    problem: str = ""


def read_rss(client: httpx.Client, backend_url: str, api_key: str | None) -> RssReading:
    """``process_resident_memory_bytes`` from ``backend_url``/api/v1/system/metrics."""
    url = metrics_url(backend_url)
    try:
        response = get_metrics(client, backend_url, api_key)
    except httpx.HTTPError as exc:
        return RssReading(None, f"{url}: {_why(exc)}")
    if response.status_code != 200:
        return RssReading(None, f"{url} answered {response.status_code}")
    found = _RSS.search(response.content)
    if found is None:
        return RssReading(None, f"{url} has no process_resident_memory_bytes")
    try:
        return RssReading(int(float(found.group(1))))
    except (ValueError, OverflowError):  # "nan" passes float() and fails int(): ValueError
        return RssReading(None, f"{url} gives process_resident_memory_bytes as {found.group(1)!r}")


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {TIMEOUT:g} s"
    return str(exc) or type(exc).__name__


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else response.text
    return " ".join(text.split())[:200] or "(empty body)"  # one line, whatever came back
