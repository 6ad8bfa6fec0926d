"""System endpoints, authentication and routing: the same answers on the three servers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.harness import KEY, Contract, Server

AUTH = ("www-authenticate",)


def test_health_is_open_and_the_same(contract: Contract) -> None:
    def scenario(s: Server) -> Any:
        return [
            s.observe("GET", "/api/v1/system/health", key=None),
            s.observe("GET", "/api/v1/system/health", key="wrong"),
        ]

    seen = contract.check(scenario)
    assert seen[0]["status"] == 200 and seen[0]["body"]["status"] == "ok"


def test_metrics_have_the_same_families_and_labels(contract: Contract) -> None:
    def scenario(s: Server) -> Any:
        s.call("GET", "/api/v1/tasks")  # at least one counted request on a template route
        s.call("GET", "/api/v1/nowhere")
        return [
            s.observe("GET", "/api/v1/system/metrics"),
            s.observe("GET", "/api/v1/system/metrics", key=None, show=AUTH),
        ]

    seen = contract.check(scenario)
    assert seen[0]["body"]["types"]["api_requests_total"] == "counter"
    assert seen[1]["status"] == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"bearer {KEY}"},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": "Bearer wrong", "X-API-Key": KEY},
        {"X-API-Key": KEY.upper()},
    ],
    ids=lambda h: "|".join(f"{k}:{v[:10]}" for k, v in h.items()) or "none",
)
def test_the_key_is_checked_the_same_way(contract: Contract, headers: dict[str, str]) -> None:
    def scenario(s: Server) -> Any:
        return [
            s.observe("GET", "/api/v1/tasks?limit=1", key=None, headers=headers, show=AUTH),
            s.observe("GET", "/api/v1/nowhere", key=None, headers=headers, show=AUTH),
            s.observe("POST", "/api/v1/tasks", key=None, headers=headers, content=b"{", show=AUTH),
        ]

    seen = contract.check(scenario)
    assert seen[0]["status"] in (200, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/tasks"),
        ("DELETE", "/api/v1/tasks"),
        ("GET", "/api/v1/project/scan"),
        ("POST", "/api/v1/project/info"),
        ("PUT", "/api/v1/tasks/some-id"),
        ("POST", "/api/v1/system/health"),
        ("GET", "/api/v1/query"),
        ("GET", "/api/v1/context"),
    ],
)
def test_a_wrong_method_is_405_with_allow(contract: Contract, method: str, path: str) -> None:
    seen = contract.check(lambda s: s.observe(method, path, show=("allow",)))
    assert seen["status"] == 405 and seen["allow"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nowhere", "/", "/api/v1/tasks/", "/api/v1/project/context/", "/docs", "/api/v2/x"],
)
def test_an_unknown_path_is_404(contract: Contract, path: str) -> None:
    seen = contract.check(lambda s: s.observe("GET", path))
    assert (seen["status"], seen["body"]) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize(
    "path",
    ["/api/v1/system/health", "/api/v1/tasks?limit=1", "/api/v1/query", "/api/v1/nowhere"],
)
def test_head_is_get_without_the_body(contract: Contract, path: str) -> None:
    stable_length = "health" not in path  # its uptime_s changes length
    show = ("allow", "content-length") if stable_length else ("allow",)
    seen = contract.check(lambda s: s.observe("HEAD", path, show=show))
    assert seen["body"] is None


MODELS = ("ContextRequest", "ContextResponse", "HTTPValidationError", "HealthResponse",
          "ProjectInfo", "QueryRequest", "QueryResponse", "ScanRequest", "ScanResponse",
          "TaskCreateRequest", "TaskResponse", "TaskUpdateRequest", "ValidationError")  # fmt: skip


def _schema(value: Any) -> Any:
    """A JSON Schema with what FastAPI writes differently from pydantic but means the
    same removed: ``"default": null`` (FastAPI drops it), ``"additionalProperties":
    true`` (the default), integers written as floats (``0.0``; FastAPI's
    ``9.223372036854776e+18`` is 2**63 as a float, the nearest to 2**63 - 1)."""
    if isinstance(value, dict):
        return {k: _schema(v) for k, v in value.items() if not _implied(k, v)}
    if isinstance(value, list):
        return [_schema(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _implied(key: str, value: Any) -> bool:
    return (key == "default" and value is None) or (key == "additionalProperties" and value is True)


def test_openapi_is_open_and_declares_the_same_operations_and_models(contract: Contract) -> None:
    """The operations, and the contract models' schemas as the reference declares them
    (the custom server may declare more: its ``HTTPError`` for ``{"detail"}`` bodies)."""

    def scenario(s: Server) -> Any:
        seen = s.observe("GET", "/openapi.json", key=None)
        document = seen.pop("body")
        seen["openapi"] = document["openapi"]
        seen["info"] = {k: document["info"].get(k) for k in ("title", "version")}
        seen["operations"] = sorted((p, m) for p, item in document["paths"].items() for m in item)
        schemas = document["components"]["schemas"]
        seen["schemas"] = {name: _schema(schemas.get(name)) for name in MODELS}
        return seen

    seen = contract.check(scenario)
    assert seen["status"] == 200 and seen["openapi"].startswith("3.1")
    assert len(seen["operations"]) == 13
