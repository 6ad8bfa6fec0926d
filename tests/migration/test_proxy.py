"""The traffic splitter over real processes: ``llmstruct migrate proxy`` in front of the FastAPI
reference (legacy) and ``llmstruct serve`` with test routes (custom).

Where a request landed is read from the backends themselves (the task each one
stored) and from the proxy's ``/_proxy/stats``. Waits are bounded by ``HANG``
only to avoid hanging; nothing asserts on time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from wsproto import events as ws_events

from llmstruct.migration.histogram import LatencyHistogram
from llmstruct.migration.proxy import hash_point
from llmstruct.migration.proxy_stats import BackendStats
from tests.migration.proxy_helpers import (
    HANG,
    Proc,
    WSClient,
    child_env,
    closed_port,
    custom,
    fastapi,
    make_project,
    proxy,
    wait_for,
)

pytest.importorskip("fastapi")  # the legacy side is the FastAPI reference

ADMIN_KEY = "admin-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
STICKY = "X-Client"


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> Iterator[dict[str, Proc]]:
    base = tmp_path_factory.mktemp("split")
    legacy = fastapi(make_project(base / "legacy"), base / "legacy.log")
    try:
        new = custom(make_project(base / "custom"), base / "custom.log")
    except BaseException:
        legacy.stop()
        raise
    try:
        front = proxy(legacy.url, new.url, base / "proxy.log", "--weight", "0",
                      "--sticky-header", STICKY, "--admin-key", ADMIN_KEY)  # fmt: skip
    except BaseException:
        legacy.stop()
        new.stop()
        raise
    yield {"legacy": legacy, "custom": new, "proxy": front}
    for proc in (front, new, legacy):
        proc.stop()


@pytest.fixture
def front(sides) -> Iterator[httpx.Client]:
    with sides["proxy"].client() as client:
        yield client


def set_weight(client: httpx.Client, weight: float) -> None:
    response = client.put("/_proxy/weight", json={"weight": weight}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["weight"] == weight


def landed(sides: dict[str, Proc], tag: str) -> dict[str, list[str]]:
    """Titles of the tasks tagged ``tag`` in each backend's own store."""
    found = {}
    for side in ("legacy", "custom"):
        with sides[side].client() as client:
            response = client.get("/api/v1/tasks", params={"q": tag, "limit": 100})
            assert response.status_code == 200, response.text
            found[side] = sorted(task["title"] for task in response.json())
    return found


def create(client: httpx.Client, title: str, headers: dict[str, str] | None = None) -> None:
    response = client.post("/api/v1/tasks", json={"title": title}, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == title


def websockets(client: httpx.Client) -> dict[str, int]:
    """WebSocket sessions relayed so far, per backend (from /_proxy/metrics)."""
    text = client.get("/_proxy/metrics", headers=ADMIN).text
    found = re.findall(r'^llmstruct_proxy_websockets_total\{backend="(\w+)"\} (\d+)$', text, re.M)
    return {side: int(count) for side, count in found}


def window(client: httpx.Client) -> dict:
    response = client.post("/_proxy/stats/window", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


# -- splitting -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("weight", "to_custom"), [(0.0, 0), (1.0, 20), (0.5, 10)])
def test_weight_sends_that_share_of_requests_to_custom(sides, front, weight, to_custom) -> None:
    set_weight(front, weight)
    window(front)  # start a clean window
    tag = f"split{uuid.uuid4().hex[:8]}"
    for index in range(20):
        create(front, f"{tag}-{index:02d}")
    stores = landed(sides, tag)
    assert len(stores["custom"]) == to_custom
    assert len(stores["legacy"]) == 20 - to_custom
    stats = window(front)
    assert stats["mode"] == "split" and stats["weight"] == weight
    assert stats["backends"]["custom"]["requests"] == to_custom
    assert stats["backends"]["legacy"]["requests"] == 20 - to_custom
    for side, count in (("custom", to_custom), ("legacy", 20 - to_custom)):
        entry = stats["backends"][side]
        assert entry["errors"] == 0 and entry["upstream_failures"] == 0
        if count:
            assert LatencyHistogram.decode(entry["latency_hdr"]).count == count
            assert entry["latency_ms"]["p50"] <= entry["latency_ms"]["max"]
        else:
            assert entry["latency_ms"] is None and entry["latency_hdr"] is None


def test_sticky_header_keeps_each_client_on_one_side_and_raising_weight_only_moves_to_custom(
    sides, front
) -> None:
    tag = f"sticky{uuid.uuid4().hex[:8]}"
    clients = [f"client-{index}" for index in range(12)]
    before: dict[str, str] = {}
    for weight, phase in ((0.3, "a"), (0.8, "b")):
        set_weight(front, weight)
        for name in clients:
            for attempt in range(3):
                create(front, f"{tag}-{phase}-{name}-{attempt}", {STICKY: name})
        stores = landed(sides, f"{tag}-{phase}")
        for name in clients:
            where = {side for side, titles in stores.items()
                     for title in titles if f"-{name}-" in title}  # fmt: skip
            assert len(where) == 1, (name, stores)  # all three requests on one side
            side = where.pop()
            assert side == ("custom" if hash_point(name.encode()) < weight else "legacy")
            if phase == "b" and before[name] == "custom":
                assert side == "custom", name  # never moved back to legacy
            before[name] = side
    assert set(before.values()) == {"legacy", "custom"}  # the 12 clients did split


def test_unknown_admin_paths_are_not_forwarded(front) -> None:
    window(front)
    response = front.get("/_proxy/nothing-here", headers=ADMIN)
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    stats = window(front)
    assert stats["backends"]["legacy"]["requests"] == stats["backends"]["custom"]["requests"] == 0


# -- streaming -------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_ndjson_scan_streams_through_the_proxy(front, weight) -> None:
    set_weight(front, weight)
    headers = {"Accept": "application/x-ndjson"}
    with front.stream("POST", "/api/v1/project/scan", json={}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert "content-length" not in response.headers  # passed on as a stream
        lines = [json.loads(line) for line in response.iter_lines() if line]
    progress, final = lines[:-1], lines[-1]
    assert [item["current"] for item in progress] == list(range(1, len(progress) + 1))
    assert len(progress) == 3 and final["status"] == "completed"


def test_stream_reaches_the_client_line_by_line(front, tmp_path: Path) -> None:
    set_weight(front, 1.0)
    mark = tmp_path / "first-line-seen"
    with front.stream("GET", "/test/lines", params={"mark": str(mark)}) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines)) == {"line": 1}
        mark.touch()  # only now may the upstream send the second line
        assert json.loads(next(lines)) == {"line": 2, "mark_seen": True}


def test_request_body_streams_upstream_and_headers_follow_rfc_9110(front) -> None:
    set_weight(front, 1.0)
    size = 900 * 1024

    def body() -> Iterator[bytes]:
        for _ in range(size // 4096):
            yield b"x" * 4096

    headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "1", "X-End": "2",
               "Keep-Alive": "timeout=5", "X-Forwarded-For": "203.0.113.9"}  # fmt: skip
    response = front.post("/test/echo", content=body(), headers=headers)
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert echoed["length"] == size
    seen = dict(echoed["headers"])
    assert "x-hop" not in seen and "keep-alive" not in seen  # named in Connection / hop-by-hop
    assert seen["x-end"] == "2" and seen["via"] == "1.1 llmstruct-proxy"
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http" and seen["x-forwarded-host"].startswith("127.0.0.1")
    assert seen["transfer-encoding"] == "chunked"  # a body of unknown length stays chunked


def test_upstream_failing_mid_stream_leaves_the_response_unfinished(front) -> None:
    set_weight(front, 1.0)
    window(front)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):  # no final chunk: never a complete body
        with front.stream("GET", "/test/broken") as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                received.append(line)
    assert received[:1] == ['{"line": 1}']
    custom_side = window(front)["backends"]["custom"]
    assert custom_side["upstream_failures"] == 1 and custom_side["errors"] == 1


# -- WebSocket -------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_websocket_ping_and_context_request_through_the_proxy(sides, front, weight) -> None:
    set_weight(front, weight)
    assert front.post("/api/v1/project/scan", json={}).status_code == 200
    side = "custom" if weight == 1.0 else "legacy"
    before = websockets(front)
    ws = WSClient(sides["proxy"].port, "/api/v1/ws")
    try:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"type": "context_request", "data": {"mode": "MINIMAL"}})
        answer = ws.receive_json()
        assert answer["type"] == "context_result", answer
        assert answer["data"]["mode"] == "MINIMAL" and answer["data"]["token_count"] > 0
        ws.send_json({"type": "nonsense"})
        assert ws.receive_json()["type"] == "error"  # the upstream's answer, connection open
        assert ws.close(1000) == 1000
    finally:
        ws.shutdown()
    after = websockets(front)
    assert after[side] == before[side] + 1
    assert sum(after.values()) == sum(before.values()) + 1  # relayed to that side only


def test_websocket_closes_propagate_both_ways(sides, front, tmp_path: Path) -> None:
    set_weight(front, 1.0)
    ws = WSClient(sides["proxy"].port, "/test/ws/close?code=4001")
    try:
        ws.send_json({"type": "bye"})
        closed = ws.receive()
        assert isinstance(closed, ws_events.CloseConnection) and closed.code == 4001
    finally:
        ws.shutdown()
    mark = tmp_path / "close-code"
    ws = WSClient(sides["proxy"].port, f"/test/ws/record?mark={mark}")
    try:
        ws.send_json({"echo": 1})
        assert ws.receive_json() == {"echo": 1}
        ws.close(4002)
    finally:
        ws.shutdown()
    assert wait_for(lambda: mark.exists() and mark.read_text(), "the upstream's close") == "4002"


# -- failures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(sides, tmp_path_factory) -> Iterator[Proc]:
    """A proxy whose legacy side is down and whose read timeout is short (1 s)."""
    base = tmp_path_factory.mktemp("broken")
    down = f"http://127.0.0.1:{closed_port()}"
    front = proxy(down, sides["custom"].url, base / "proxy.log", "--weight", "0",
                  "--read-timeout", "1")  # fmt: skip
    yield front
    front.stop()


def test_upstream_down_is_502_with_detail(broken: Proc) -> None:
    with broken.client() as client:
        response = client.get("/api/v1/project/info")
        assert response.status_code == 502
        assert "unreachable" in response.json()["detail"]
        stats = client.get("/_proxy/stats").json()["backends"]["legacy"]
    assert stats["upstream_failures"] >= 1 and stats["errors"] >= stats["upstream_failures"]


def test_websocket_to_a_down_upstream_closes_with_1011_bad_gateway(broken: Proc) -> None:
    ws = WSClient(broken.port, "/api/v1/ws")
    try:
        closed = ws.receive()
        assert isinstance(closed, ws_events.CloseConnection) and closed.code == 1011
        assert closed.reason.startswith("Bad Gateway")
    finally:
        ws.shutdown()


def test_slow_upstream_is_504_after_the_read_timeout(broken: Proc) -> None:
    with broken.client() as client:
        assert client.put("/_proxy/weight", json={"weight": 1}).status_code == 200
        response = client.get("/test/slow", params={"s": "30"})
        assert response.status_code == 504
        assert "timed out" in response.json()["detail"]
        assert client.get("/api/v1/system/health").status_code == 200  # the pool recovered


def test_weight_changes_under_load_fail_no_request(sides, front) -> None:
    set_weight(front, 0.0)
    window(front)
    stop = threading.Event()

    def load() -> list[int]:
        statuses = []
        with sides["proxy"].client() as client:
            while not stop.is_set() or len(statuses) < 50:
                statuses.append(client.get("/api/v1/tasks", params={"limit": 1}).status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(load) for _ in range(4)]
        for weight in (0.1, 0.5, 1.0, 0.0, 0.7, 0.25, 1.0, 0.0):
            set_weight(front, weight)
            front.get("/api/v1/system/health")
        stop.set()
        statuses = [status for run in runs for status in run.result(HANG)]
    assert statuses and set(statuses) == {200}
    stats = window(front)["backends"]
    assert stats["legacy"]["errors"] == stats["custom"]["errors"] == 0
    assert stats["legacy"]["requests"] > 0 and stats["custom"]["requests"] > 0


# -- admin API -------------------------------------------------------------------------------------
def test_admin_api_needs_the_admin_key(front) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": ADMIN_KEY}):
        for method, path in (("GET", "/_proxy/config"), ("GET", "/_proxy/stats"),
                             ("POST", "/_proxy/stats/window"), ("GET", "/_proxy/metrics"),
                             ("PUT", "/_proxy/weight")):  # fmt: skip
            response = front.request(method, path, headers=headers, json={"weight": 1})
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"detail": "Invalid or missing admin key"}
    config = front.get("/_proxy/config", headers=ADMIN).json()
    assert config["mode"] == "split" and config["sticky_header"] == STICKY
    assert config["legacy"].startswith("http://127.0.0.1:") and config["weight"] in (0.0, 1.0)


@pytest.mark.parametrize("body", [{"weight": 1.5}, {"weight": -0.1}, {"weight": "lots"},
                                  {"weight": True}, {"w": 1}, [1], "not json"])  # fmt: skip
def test_bad_weight_is_400_and_changes_nothing(front, body) -> None:
    set_weight(front, 0.0)
    if isinstance(body, str):
        response = front.put("/_proxy/weight", content=body, headers=ADMIN)
    else:
        response = front.put("/_proxy/weight", json=body, headers=ADMIN)
    assert response.status_code == 400 and isinstance(response.json()["detail"], str)
    assert front.get("/_proxy/config", headers=ADMIN).json()["weight"] == 0.0


def test_weight_accepts_a_percentage(front) -> None:
    response = front.put("/_proxy/weight", json={"weight": "25%"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["weight"] == 0.25


def test_metrics_count_per_backend(front) -> None:
    text = front.get("/_proxy/metrics", headers=ADMIN).text
    for series in ("llmstruct_proxy_requests_total", "llmstruct_proxy_responses_total",
                   "llmstruct_proxy_upstream_failures_total",
                   "llmstruct_proxy_latency_seconds_bucket"):  # fmt: skip
        assert f'{series}{{backend="legacy"' in text and f'{series}{{backend="custom"' in text


def test_admin_key_from_the_environment_and_a_clean_stop(tmp_path: Path) -> None:
    front = proxy("http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path / "proxy.log",
                  LLMSTRUCT_PROXY_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    try:
        with front.client() as client:
            assert client.get("/_proxy/config").status_code == 401
            assert client.get("/_proxy/config", headers=ADMIN).status_code == 200
    finally:
        front.stop()
    assert front.process.returncode == 0  # SIGTERM: a graceful stop


def test_without_admin_key_loopback_clients_are_answered(broken: Proc) -> None:
    with broken.client() as client:
        response = client.get("/_proxy/config")
    assert response.status_code == 200 and response.json()["mode"] == "split"


def test_admin_without_key_refuses_other_addresses() -> None:
    from llmstruct.migration.proxy_admin import AdminAuth
    from llmstruct.server.app import Request
    from llmstruct.server.http_common import RequestHead

    head = RequestHead("GET", b"/_proxy/config", "1.1", [(b"host", b"x")])
    auth = AdminAuth(None)
    assert auth.on_request(Request(head, ("127.0.0.1", 5000))) is None
    assert auth.on_request(Request(head, ("::1", 5000))) is None
    refused = auth.on_request(Request(head, ("192.0.2.7", 5000)))
    assert refused is not None and refused.status == 403


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--weight", "2"], "weight must be in [0, 1]"),
        (["--weight", "x"], "weight must be a number"),
        (["--read-timeout", "0"], "--read-timeout must be > 0"),
        (["--sla-ms", "GET /x"], "--sla-ms"),
        (["--admin-key", "short"], "--admin-key"),
        (["--admin-key", "ключ-ключ-ключ-ключ"], "--admin-key: visible ASCII characters only"),
        (["--sticky-header", "X-Ключ"], "--sticky-header: 'X-Ключ' is not a header name"),
        (["--sticky-header", "X Key"], "--sticky-header: 'X Key' is not a header name"),
        (["--sticky-header", " "], "is not a header name"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(flags, message) -> None:
    command = [sys.executable, "-m", "llmstruct.migration.proxy_command", "--legacy",
               "http://127.0.0.1:1", "--custom", "http://127.0.0.1:2", *flags]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(),
                          stdin=subprocess.DEVNULL, timeout=HANG)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("legacy", "says"),
    [
        ("https://example.org", "https is not supported"),
        ("http://127.0.0.1:0", "the port must be in 1..65535"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://a b:8000", "'a b' is not a host name or address"),
        ("http://127.0.0.1:8000/pre fix", "the path may only hold URL characters"),
    ],
)
def test_bad_upstream_url_is_one_line_and_exit_2(legacy, says) -> None:
    # Through the real command line: ``llmstruct migrate proxy``. A URL no request
    # could be forwarded to is refused at start-up, not answered 502 ever after.
    command = [sys.executable, "-m", "llmstruct", "migrate", "proxy",
               "--legacy", legacy, "--custom", "http://127.0.0.1:2"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(),
                          stdin=subprocess.DEVNULL, timeout=HANG)  # fmt: skip
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_timeouts_and_shed_load_count_as_errors_with_the_5xx() -> None:
    # A custom server answering 429 to everyone must fail error_rate, not migrate.
    stats = BackendStats()
    for status in (200, 201, 304, 400, 404, 408, 422, 429, 500, 503):
        stats.record(status, 0.001)
    stats.failure(502, 0.001)
    figures = stats.as_json(1.0)
    assert figures["requests"] == 11
    assert figures["errors"] == 5  # 408, 429, 500, 503 and the upstream failure
    assert figures["upstream_failures"] == 1
