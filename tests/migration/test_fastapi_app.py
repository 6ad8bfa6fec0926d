"""The FastAPI reference app over real HTTP, once per bridge (``inprocess`` and ``cli``).

Each bridge gets its own server: ``python -m llmstruct.migration.serve_fastapi`` in a
real process on a free loopback port, on its own small project, with a fake
OpenAI-compatible LLM (``fakellm.py``) behind ``/api/v1/query``. Tests talk to it
with httpx and, for the WebSocket, a small wsproto client. Waits are bounded by
``HANG`` only to avoid hanging; nothing asserts on time.

The ``cli`` bridge runs ``python -m llmstruct engine-call`` for every engine call, so
it needs ``engine-call`` registered in ``llmstruct/cli.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakellm import FakeLLM

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("wsproto")

from wsclient import WSClient  # noqa: E402

import llmstruct  # noqa: E402

KEY = "test-key-0123456789abcdef"
HANG = 60.0  # upper bound on one wait; never asserted on
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
SOURCES = sorted(name for name in FILES if not name.endswith(".toml"))
AUTH_401 = {"detail": "Invalid or missing API key"}
NO_STRUCT = {"detail": "No struct.json yet: run a scan first"}
TASK_404 = {"detail": "Task not found"}
ENDPOINTS = (
    "/api/v1/system/health",
    "/api/v1/system/metrics",
    "/api/v1/project/info",
    "/api/v1/project/scan",
    "/api/v1/project/struct",
    "/api/v1/project/context/{mode}",
    "/api/v1/context",
    "/api/v1/tasks",
    "/api/v1/tasks/{id}",
    "/api/v1/query",
)


def _child_env(**extra: str) -> dict[str, str]:
    """This environment, with the llmstruct under test first on PYTHONPATH."""
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": parent + (os.pathsep + path if path else ""), **extra}


@dataclass
class Served:
    bridge: str
    root: Path
    port: int
    process: subprocess.Popen
    log: Path
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = KEY, **options: Any) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=HANG, **options)


def _start(root: Path, bridge: str, log: Path, llm: FakeLLM) -> Served:
    command = [
        sys.executable, "-m", "llmstruct.migration.serve_fastapi",
        "--port", "0", "--root", str(root), "--bridge", bridge, "--api-key", KEY,
        "--log-level", "warning",
    ]  # fmt: skip
    env = _child_env(LLMSTRUCT_LLM_BASE_URL=llm.url, LLMSTRUCT_LLM_MODEL="fake-model",
                     LLMSTRUCT_LLM_RETRIES="0")  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        found = re.search(r"serving FastAPI on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return Served(bridge, root, int(found.group(1)), process, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"serve-fastapi did not start:\n{log.read_text()}")


def _stop(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(HANG)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module", params=["inprocess", "cli"])
def served(request, tmp_path_factory, llm) -> Iterator[Served]:
    bridge = request.param
    if bridge == "cli":
        wired = subprocess.run(
            [sys.executable, "-m", "llmstruct", "engine-call", "--help"],
            env=_child_env(), capture_output=True, stdin=subprocess.DEVNULL, timeout=HANG,
        )  # fmt: skip
        if wired.returncode != 0:
            pytest.fail("the cli bridge needs 'engine-call' registered in llmstruct/cli.py")
    base = tmp_path_factory.mktemp(bridge)
    root = base / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    server = _start(root, bridge, base / "server.log", llm)
    yield server
    _stop(server)


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as http:
        yield http


@pytest.fixture
def scanned(served: Served, client: httpx.Client) -> Served:
    """The server after one successful scan of its project."""
    if not served.state.get("scanned"):
        response = client.post("/api/v1/project/scan", json={})
        assert response.status_code == 200, response.text
        served.state["scanned"] = True
    return served


# -- system, openapi, auth ------------------------------------------------------------------------
def test_health_is_open_and_reports_status_version_uptime(served: Served) -> None:
    with served.client(key=None) as http:
        response = http.get("/api/v1/system/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == llmstruct.__version__
    assert isinstance(body["uptime_s"], float)


def test_openapi_is_open_and_declares_every_endpoint(served: Served) -> None:
    with served.client(key=None) as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert set(ENDPOINTS) <= set(document["paths"])
    assert "TaskCreateRequest" in document["components"]["schemas"]


def test_requests_without_the_key_are_401(served: Served) -> None:
    cases = [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
             {"Authorization": f"Basic {KEY}"}]  # fmt: skip
    with served.client(key=None) as http:
        for headers in cases:
            response = http.get("/api/v1/tasks", headers=headers)
            assert response.status_code == 401, headers
            assert response.json() == AUTH_401
            assert response.headers["www-authenticate"] == "Bearer"
        assert http.get("/api/v1/no/such/path").status_code == 401
        assert http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {KEY}"}).is_success
        assert http.get("/api/v1/no/such/path", headers={"X-API-Key": KEY}).json() == {
            "detail": "Not Found"
        }


def test_metrics_are_prometheus_text_counting_requests(client: httpx.Client) -> None:
    client.get("/api/v1/system/health")
    response = client.get("/api/v1/system/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE api_requests_total counter" in response.text
    assert (
        'api_requests_total{method="GET",endpoint="/api/v1/system/health",status="200"}'
        in response.text
    )


# -- before any scan -------------------------------------------------------------------------------
def test_without_struct_json_project_endpoints_answer_409(
    served: Served, client: httpx.Client
) -> None:
    struct = served.root / "struct.json"
    aside = served.root / "struct.json.aside"
    if struct.exists():
        struct.rename(aside)
    try:
        for response in (
            client.get("/api/v1/project/info"),
            client.get("/api/v1/project/struct"),
            client.get("/api/v1/project/context/MINIMAL"),
            client.post("/api/v1/context", json={"mode": "FULL"}),
        ):
            assert (response.status_code, response.json()) == (409, NO_STRUCT)
    finally:
        if aside.exists():
            aside.rename(struct)


# -- scan ------------------------------------------------------------------------------------------
def test_scan_answers_a_scan_response(served: Served, client: httpx.Client) -> None:
    response = client.post("/api/v1/project/scan", json={"incremental": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed" and body["files_processed"] == len(SOURCES)
    assert body["output_path"] == "struct.json" and body["warnings"] == []
    assert body["summary"]["modules_count"] == len(SOURCES)
    assert (served.root / "struct.json").exists()
    served.state["scanned"] = True


def test_scan_streams_ndjson_progress_for_every_file_then_the_response(
    client: httpx.Client,
) -> None:
    headers = {"Accept": "application/x-ndjson"}
    with client.stream("POST", "/api/v1/project/scan", json={}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    progress, final = lines[:-1], lines[-1]
    assert sorted(item["file"] for item in progress) == SOURCES
    assert [item["current"] for item in progress] == list(range(1, len(SOURCES) + 1))
    assert all(item["total"] == len(SOURCES) for item in progress)
    assert final["status"] == "completed" and final["files_processed"] == len(SOURCES)


@pytest.mark.parametrize("accept", ["application/json", "application/x-ndjson"])
def test_scan_refusals_are_400_with_the_engine_message(client: httpx.Client, accept) -> None:
    headers = {"Accept": accept}
    outside = client.post("/api/v1/project/scan", json={"output_path": "../x.json"},
                          headers=headers)  # fmt: skip
    assert outside.status_code == 400
    assert outside.json() == {"detail": "output_path must name a file inside the project root"}
    glob = client.post("/api/v1/project/scan", json={"include_patterns": ["["]}, headers=headers)
    assert glob.status_code == 400
    assert glob.json() == {"detail": "bad include pattern '[': unbalanced '['"}


def test_scan_body_is_required_and_validated(client: httpx.Client) -> None:
    empty = client.post("/api/v1/project/scan")
    assert empty.status_code == 422
    assert empty.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }
    wrong = client.post("/api/v1/project/scan", json={"include_patterns": "*.py"})
    assert wrong.status_code == 422
    assert [(e["type"], e["loc"]) for e in wrong.json()["detail"]] == [
        ("list_type", ["body", "include_patterns"])
    ]


# -- project info and struct -----------------------------------------------------------------------
def test_project_info_reads_the_manifest_and_the_struct(
    scanned: Served, client: httpx.Client
) -> None:
    response = client.get("/api/v1/project/info")
    assert response.status_code == 200
    info = response.json()
    assert (info["name"], info["version"], info["description"]) == ("shop", "1.2.3", "A shop.")
    assert info["file_count"] == len(SOURCES)
    assert info["languages"] == ["javascript", "python"]


def test_struct_has_an_etag_answers_304_and_is_gzipped(
    scanned: Served, client: httpx.Client
) -> None:
    response = client.get("/api/v1/project/struct", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    struct = response.json()  # httpx decodes the gzip
    assert sorted(m["path"] for m in struct["modules"]) == SOURCES
    assert struct == json.loads((scanned.root / "struct.json").read_bytes())
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', response.headers["etag"])  # gzipped: weak
    etag = response.headers["etag"].removeprefix("W/")

    for match in (f"W/{etag}", f'"other", {etag}'):
        again = client.get("/api/v1/project/struct", headers={"If-None-Match": match})
        assert (again.status_code, again.content) == (304, b""), match
        assert again.headers["etag"] == etag
    changed = client.get("/api/v1/project/struct", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200

    plain = client.get("/api/v1/project/struct", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == (scanned.root / "struct.json").read_bytes()


def test_gzip_leaves_small_answers_alone(scanned: Served, client: httpx.Client) -> None:
    raw = client.get("/api/v1/system/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in raw.headers
    headers = {"Accept-Encoding": "gzip"}
    with client.stream("GET", "/api/v1/project/struct", headers=headers) as response:
        compressed = b"".join(response.iter_raw())
    assert json.loads(gzip.decompress(compressed))["metadata"]["schema_version"].startswith("2.")


# -- context ---------------------------------------------------------------------------------------
def test_context_by_path(scanned: Served, client: httpx.Client) -> None:
    params = {"query": "total of the items", "budget": 300}
    response = client.get("/api/v1/project/context/FOCUSED", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["mode"], body["budget"], body["truncated"]) == ("FOCUSED", 300, False)
    assert 0 < body["token_count"] <= 300
    assert "def total(items):" in body["context_data"]["text"]
    assert {"uid": "shop.cart#total", "level": "full"} in body["context_data"]["symbols"]
    as_json = client.get("/api/v1/project/context/MINIMAL", params={"format": "json"})
    assert as_json.json()["context_data"]["format"] == "json"


def test_context_bad_mode_is_400_and_bad_query_is_422(
    scanned: Served, client: httpx.Client
) -> None:
    for mode in ("BOGUS", "focused"):
        response = client.get(f"/api/v1/project/context/{mode}")
        assert (response.status_code, response.json()) == (400, {"detail": "Invalid context mode"})
    budget = client.get("/api/v1/project/context/FULL", params={"budget": "-1"})
    assert budget.status_code == 422
    assert [(e["type"], e["loc"]) for e in budget.json()["detail"]] == [
        ("greater_than_equal", ["query", "budget"])
    ]
    fmt = client.get("/api/v1/project/context/FULL", params={"format": "yaml"})
    assert [(e["type"], e["loc"]) for e in fmt.json()["detail"]] == [
        ("literal_error", ["query", "format"])
    ]


def test_context_by_post(scanned: Served, client: httpx.Client) -> None:
    request = {"mode": "FOCUSED", "include_files": ["shop/pricing.py"], "budget": 400}
    response = client.post("/api/v1/context", json=request)
    assert response.status_code == 200, response.text
    assert "discounted" in response.json()["context_data"]["text"]

    bad_mode = client.post("/api/v1/context", json={"mode": "focused"})
    assert bad_mode.status_code == 422
    assert [(e["type"], e["loc"]) for e in bad_mode.json()["detail"]] == [
        ("literal_error", ["body", "mode"])
    ]
    unknown = client.post("/api/v1/context", json={"mode": "FULL", "include_files": ["nope.py"]})
    assert (unknown.status_code, unknown.json()) == (400, {"detail": "not in the struct: nope.py"})


# -- tasks -----------------------------------------------------------------------------------------
def test_tasks_crud_and_filters(client: httpx.Client) -> None:
    first = client.post(
        "/api/v1/tasks",
        json={
            "title": "Fix the cart total",
            "priority": "high",
            "tags": ["cart", "bug"],
            "estimated_effort": 3,
        },
    )
    second = client.post(
        "/api/v1/tasks",
        json={"title": "Document pricing", "description": "Explain the DISCOUNT rate"},
    )
    assert (first.status_code, second.status_code) == (201, 201)
    one, two = first.json(), second.json()
    assert (one["status"], one["priority"], one["tags"]) == ("todo", "high", ["cart", "bug"])
    assert (two["priority"], two["tags"], two["estimated_effort"]) == ("medium", [], None)
    assert client.get(f"/api/v1/tasks/{one['id']}").json() == one

    patched = client.patch(
        f"/api/v1/tasks/{one['id']}", json={"status": "in_progress", "estimated_effort": None}
    )
    assert patched.status_code == 200
    changed = patched.json()
    assert (changed["status"], changed["estimated_effort"], changed["title"]) == (
        "in_progress", None, "Fix the cart total")  # fmt: skip
    assert changed["updated_at"] > one["updated_at"]

    def ids(**params: Any) -> list[str]:
        response = client.get("/api/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return [task["id"] for task in response.json() if task["id"] in (one["id"], two["id"])]

    assert ids() == [one["id"], two["id"]]
    assert ids(status="in_progress") == [one["id"]]
    assert ids(priority="medium") == [two["id"]]
    assert ids(tag="bug") == [one["id"]]
    assert ids(q="discount") == [two["id"]]
    assert ids(limit=1, offset=1) == [two["id"]]  # the suite's only tasks, oldest first

    deleted = client.delete(f"/api/v1/tasks/{one['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    for response in (
        client.get(f"/api/v1/tasks/{one['id']}"),
        client.patch(f"/api/v1/tasks/{one['id']}", json={"title": "again"}),
        client.delete(f"/api/v1/tasks/{one['id']}"),
    ):
        assert (response.status_code, response.json()) == (404, TASK_404)


def test_task_validation_errors_have_fastapis_shape(client: httpx.Client) -> None:
    def errors(response: httpx.Response) -> list[tuple[str, list[Any]]]:
        assert response.status_code == 422, response.text
        return [(e["type"], e["loc"]) for e in response.json()["detail"]]

    assert errors(client.post("/api/v1/tasks", json={"title": ""})) == [
        ("string_too_short", ["body", "title"])
    ]
    assert errors(client.post("/api/v1/tasks", json={"title": "x", "priority": "soon"})) == [
        ("literal_error", ["body", "priority"])
    ]
    assert errors(client.post("/api/v1/tasks", json={})) == [("missing", ["body", "title"])]
    invalid = client.post("/api/v1/tasks", content=b'{"title": ', headers={
        "Content-Type": "application/json"})  # fmt: skip
    assert errors(invalid) == [("json_invalid", ["body", 10])]
    assert errors(client.get("/api/v1/tasks", params={"limit": "0"})) == [
        ("greater_than_equal", ["query", "limit"])
    ]
    assert errors(client.get("/api/v1/tasks", params={"status": "later"})) == [
        ("literal_error", ["query", "status"])
    ]
    created = client.post("/api/v1/tasks", json={"title": "null title test"}).json()
    assert errors(client.patch(f"/api/v1/tasks/{created['id']}", json={"title": None})) == [
        ("string_type", ["body", "title"])
    ]
    client.delete(f"/api/v1/tasks/{created['id']}")


# -- query -----------------------------------------------------------------------------------------
def test_query_asks_the_llm_and_maps_its_errors(
    scanned: Served, client: httpx.Client, llm: FakeLLM
) -> None:
    llm.mode = "echo"
    response = client.post("/api/v1/query", json={"query": "How is the total computed?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == "How is the total computed?"
    assert body["response"].startswith("You asked: 'How is the total computed?'")
    assert body["token_usage"]["total_tokens"] > 0
    assert body["context_used"]["mode"] == "FOCUSED"

    llm.mode = "error"
    try:
        failed = client.post("/api/v1/query", json={"query": "again?"})
    finally:
        llm.mode = "echo"
    assert failed.status_code == 502
    assert "The fake model failed on purpose." in failed.json()["detail"]
    assert client.post("/api/v1/query", json={"query": ""}).status_code == 422


# -- WebSocket -------------------------------------------------------------------------------------
@pytest.fixture
def ws(served: Served) -> Iterator[WSClient]:
    client = WSClient(served.port, "/api/v1/ws", [("X-API-Key", KEY)])
    assert client.rejected is None, client.rejected
    yield client
    client.close()


def test_websocket_ping_pong_and_errors_keep_the_socket_open(ws: WSClient) -> None:
    ws.send({"type": "ping"})
    assert ws.recv() == {"type": "pong"}
    for message, detail in (
        ("not json", "Invalid JSON"),
        ("[1, 2]", "Message must be a JSON object with a string 'type'"),
        ({"type": 7}, "Message must be a JSON object with a string 'type'"),
        ({"type": "dance"}, "Unknown message type: dance"),
    ):
        ws.send(message)
        assert ws.recv() == {"type": "error", "data": {"detail": detail}}
    ws.send({"type": "context_request", "data": {"mode": "nope"}})
    error = ws.recv()
    assert error["type"] == "error"
    assert [(e["type"], e["loc"]) for e in error["data"]["detail"]] == [
        ("literal_error", ["data", "mode"])
    ]
    ws.send({"type": "ping"})
    assert ws.recv() == {"type": "pong"}


def test_websocket_scan_then_context_on_one_connection(ws: WSClient) -> None:
    ws.send({"type": "scan_request", "data": {"incremental": False}})
    progress = []
    while (message := ws.recv())["type"] == "scan_progress":
        progress.append(message["data"])
    assert message["type"] == "scan_complete", message
    assert message["data"]["files_processed"] == len(SOURCES)
    assert sorted(item["file"] for item in progress) == SOURCES

    ws.send({"type": "context_request", "data": {"mode": "FOCUSED", "query": "discounted"}})
    result = ws.recv()
    assert result["type"] == "context_result", result
    assert result["data"]["mode"] == "FOCUSED"
    assert "discounted" in result["data"]["context_data"]["text"]


def test_websocket_needs_the_key_by_header_or_query(served: Served) -> None:
    refused = WSClient(served.port, "/api/v1/ws")
    refused.close()
    assert refused.rejected is not None
    status, body = refused.rejected
    assert (status, json.loads(body)) == (401, AUTH_401)

    by_query = WSClient(served.port, f"/api/v1/ws?api_key={KEY}")
    try:
        assert by_query.rejected is None
        by_query.send({"type": "ping"})
        assert by_query.recv() == {"type": "pong"}
    finally:
        by_query.close()


# -- start-up --------------------------------------------------------------------------------------
def test_no_auth_on_a_public_host_is_refused(tmp_path: Path) -> None:
    env = _child_env()
    env.pop("LLMSTRUCT_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "llmstruct.migration.serve_fastapi", "--host", "0.0.0.0",
         "--port", "0", "--root", str(tmp_path)],
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=HANG,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("llmstruct: error: serving without an API key")
    assert len(result.stderr.strip().splitlines()) == 1


# -- the engine-call protocol ----------------------------------------------------------------------
def _engine_call(root: Path, *args: str, stdin: bytes) -> tuple[int, list[Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "llmstruct.migration.engine_call", *args],
        cwd=root, env=_child_env(), input=stdin, capture_output=True, timeout=HANG,
    )  # fmt: skip
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def test_engine_call_speaks_json_with_status_and_detail_on_errors(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    assert _engine_call(root, "task_get", stdin=b"[1]") == (
        2, [{"status": 400, "detail": "engine-call: stdin must hold one JSON object"}])  # fmt: skip
    assert _engine_call(root, "task_get", stdin=b'{"id": "nope"}') == (
        1, [{"status": 404, **TASK_404}])  # fmt: skip
    code, lines = _engine_call(root, "scan", "--stream", stdin=b"")
    assert code == 0
    assert [line["type"] for line in lines] == ["scan_progress"] * len(SOURCES) + ["scan_complete"]
    assert lines[-1]["data"]["files_processed"] == len(SOURCES)
