"""The v1 API endpoints (``llmstruct/server/api.py``) on the custom server, over real HTTP.

Two servers, each on its own copy of one small project: the custom server (a
``ServerThread`` on 127.0.0.1 port 0 running ``build_app`` plus ``add_api_routes``)
and the FastAPI reference (``python -m llmstruct.migration.serve_fastapi`` as a
process, in-process bridge, no key). A fake OpenAI-compatible LLM answers both.
The tests send the same requests to both and assert equal status codes and bodies,
after dropping the fields that differ by nature (timestamps, ids, scan ids, processing
time); some also check the answers themselves. Nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fakellm

from fakellm import FakeLLM  # noqa: E402

import llmstruct  # noqa: E402
from llmstruct.engine.core import STRUCT_RECHECK_S, CoreEngine  # noqa: E402
from llmstruct.server.api import add_api_routes  # noqa: E402
from llmstruct.server.limits import Limits  # noqa: E402
from llmstruct.server.system import build_app  # noqa: E402
from tests.server.helpers import ServerThread  # noqa: E402

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

HANG = 60.0  # an upper bound on one wait, never asserted on
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
VOLATILE = frozenset(
    ("timestamp", "scan_id", "created_at", "updated_at", "last_updated", "id",
     "processing_time", "uptime_s")
)  # fmt: skip
NO_STRUCT = {"detail": "No struct.json yet: run a scan first"}
NDJSON = "application/x-ndjson"


def _write_project(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _stable(value: Any) -> Any:
    """``value`` without the fields that differ between two servers by nature."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return _stable(response.json())
    except json.JSONDecodeError:
        return response.text


class Pair:
    """Both servers; ``send`` makes one request to each and returns both responses."""

    def __init__(self, custom: httpx.Client, reference: httpx.Client, roots: list[Path]) -> None:
        self.custom = custom
        self.reference = reference
        self.roots = roots  # the projects of the custom server and of the reference
        self.scanned = False

    def send(self, method: str, path: str, **options: Any) -> tuple[httpx.Response, ...]:
        return (
            self.custom.request(method, path, **options),
            self.reference.request(method, path, **options),
        )

    def same(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Send to both, assert equal status and stable body; the custom server's answer."""
        mine, theirs = self.send(method, path, **options)
        assert (mine.status_code, _body(mine)) == (theirs.status_code, _body(theirs)), (
            method, path, options,
        )  # fmt: skip
        return mine


# -- the servers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def _start_reference(root: Path, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    command = [
        sys.executable, "-m", "llmstruct.migration.serve_fastapi",
        "--port", "0", "--root", str(root), "--bridge", "inprocess", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        found = re.search(r"serving FastAPI on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return process, int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"serve-fastapi did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[Pair]:
    settings = {
        "LLMSTRUCT_LLM_BASE_URL": llm.url,
        "LLMSTRUCT_LLM_MODEL": "fake-model",
        "LLMSTRUCT_LLM_RETRIES": "0",
    }
    base = tmp_path_factory.mktemp("api")
    custom_root = _write_project(base / "custom" / "project")
    reference_root = _write_project(base / "reference" / "project")
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, **settings, "PYTHONPATH": parent + (os.pathsep + path if path else "")}
    process, port = _start_reference(reference_root, base / "reference.log", env)
    engine = CoreEngine(custom_root)
    app = build_app(None, access_log=False, websocket=False, rate_limit=1e6, rate_burst=10**6)
    add_api_routes(app, engine)
    server = ServerThread(app, Limits(), "h11")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        try:
            server.start()
            with (
                httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HANG) as mine,
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG) as theirs,
            ):
                yield Pair(mine, theirs, [custom_root, reference_root])
        finally:
            server.stop()
            engine.close()
            process.terminate()
            try:
                process.wait(HANG)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def scanned(pair: Pair) -> Pair:
    if not pair.scanned:
        response = pair.same("POST", "/api/v1/project/scan", json={})
        assert response.status_code == 200, response.text
        pair.scanned = True
    return pair


# -- before any scan -------------------------------------------------------------------------------
def test_without_struct_json_the_project_endpoints_are_409(pair: Pair) -> None:
    if pair.scanned:
        pytest.skip("runs first, before the scan")
    for method, path, options in (
        ("GET", "/api/v1/project/info", {}),
        ("GET", "/api/v1/project/struct", {}),
        ("GET", "/api/v1/project/context/FULL", {}),
        ("POST", "/api/v1/context", {"json": {"mode": "MINIMAL"}}),
        ("POST", "/api/v1/query", {"json": {"query": "anything?"}}),
    ):
        response = pair.same(method, path, **options)
        assert (response.status_code, response.json()) == (409, NO_STRUCT), path


# -- scan ------------------------------------------------------------------------------------------
def test_scan_answers_a_scan_response(scanned: Pair) -> None:
    response = scanned.same("POST", "/api/v1/project/scan", json={"incremental": False})
    body = response.json()
    assert body["status"] == "completed"
    assert body["files_processed"] == 3
    assert body["output_path"] == "struct.json"


def test_scan_streams_ndjson_lines_as_the_reference(scanned: Pair) -> None:
    headers = {"Accept": NDJSON}
    mine, theirs = scanned.send("POST", "/api/v1/project/scan", json={}, headers=headers)
    assert mine.status_code == theirs.status_code == 200
    assert mine.headers["content-type"].startswith(NDJSON)
    lines = [[json.loads(line) for line in r.text.splitlines()] for r in (mine, theirs)]
    for found in lines:
        assert [line["current"] for line in found[:-1]] == list(range(1, len(found)))
        assert found[-1]["status"] == "completed"

    def progress(found: list[Any]) -> list[Any]:  # files finish in any order
        return sorted(({**line, "current": 0} for line in found[:-1]), key=lambda x: x["file"])

    assert progress(lines[0]) == progress(lines[1])
    assert _stable(lines[0][-1]) == _stable(lines[1][-1])


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
def test_scan_errors_are_as_the_reference(pair: Pair, accept: str) -> None:
    headers = {"Accept": accept}
    for options in (
        {"json": {"output_path": "../outside.json"}},
        {"json": {"include_patterns": "not a list"}},
        {"content": b""},
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"content": b'{"incremental": false}', "headers": {"Content-Type": "text/plain"}},
    ):
        options = {**options, "headers": {**headers, **options.get("headers", {})}}
        response = pair.same("POST", "/api/v1/project/scan", **options)
        assert response.status_code in (400, 422), options


# -- project info, struct --------------------------------------------------------------------------
def test_project_info_is_as_the_reference(scanned: Pair) -> None:
    body = scanned.same("GET", "/api/v1/project/info").json()
    assert (body["name"], body["version"], body["file_count"]) == ("shop", "1.2.3", 3)


def test_struct_has_an_etag_and_answers_304(scanned: Pair) -> None:
    identity = {"Accept-Encoding": "identity"}
    for client in (scanned.custom, scanned.reference):
        first = client.get("/api/v1/project/struct", headers=identity)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('"') and first.json()["metadata"]
        # gzipped, the custom server's Gzip middleware weakens the ETag (W/, RFC 9110
        # §8.8.1) where the reference's GZipMiddleware keeps it strong: same tag either way
        gzipped = client.get("/api/v1/project/struct", headers={"Accept-Encoding": "gzip"})
        assert gzipped.headers["etag"].removeprefix("W/") == etag
        for header in (etag, f"W/{etag}", "*", f'"other", {etag}'):
            again = client.get("/api/v1/project/struct", headers={"If-None-Match": header})
            assert (again.status_code, again.content) == (304, b""), header
            assert again.headers["etag"] == etag
        other = client.get("/api/v1/project/struct", headers={"If-None-Match": '"other"'})
        assert other.status_code == 200
    mine, theirs = scanned.send("GET", "/api/v1/project/struct")
    assert mine.headers["content-type"] == theirs.headers["content-type"]
    assert _stable(mine.json()["modules"]) == _stable(theirs.json()["modules"])


# -- context ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/project/context/FULL",
        "/api/v1/project/context/MINIMAL?format=json",
        "/api/v1/project/context/FOCUSED?query=total&budget=500",
        "/api/v1/project/context/SESSION?format=xml",
        "/api/v1/project/context/full",
        "/api/v1/project/context/NOPE",
        "/api/v1/project/context/FULL?budget=-1",
        "/api/v1/project/context/nope?budget=x",
        "/api/v1/project/context/FULL?format=yaml",
        "/api/v1/project/context/FULL?budget=999999999999",
    ],
)
def test_context_by_path_is_as_the_reference(scanned: Pair, target: str) -> None:
    response = scanned.same("GET", target)
    if "/full" in target or "/NOPE" in target:
        assert response.json() == {"detail": "Invalid context mode"}


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "FULL"},
        {"mode": "FOCUSED", "include_files": ["shop/cart.py"], "format": "json"},
        {"mode": "MINIMAL", "budget": 100},
        {"mode": "full"},
        {"mode": "FOCUSED", "include_files": ["no/such.py"]},
        {"budget": -3},
        [],
    ],
)
def test_context_by_post_is_as_the_reference(scanned: Pair, body: Any) -> None:
    scanned.same("POST", "/api/v1/context", json=body)


def test_context_text_holds_the_source(scanned: Pair) -> None:
    body = scanned.same("GET", "/api/v1/project/context/FULL").json()
    assert "def total(items):" in body["context_data"]["text"]


# -- tasks -----------------------------------------------------------------------------------------
def test_tasks_crud_is_as_the_reference(pair: Pair) -> None:
    created = pair.send(
        "POST", "/api/v1/tasks", json={"title": "Write docs", "priority": "high", "tags": ["doc"]}
    )
    assert [r.status_code for r in created] == [201, 201]
    assert _body(created[0]) == _body(created[1])
    ids = [r.json()["id"] for r in created]
    clients = (pair.custom, pair.reference)

    def same(method: str, suffix: str = "", **options: Any) -> httpx.Response:
        answers = [
            client.request(method, f"/api/v1/tasks/{task_id}{suffix}", **options)
            for client, task_id in zip(clients, ids, strict=True)
        ]
        mine, theirs = answers
        assert (mine.status_code, _body(mine)) == (theirs.status_code, _body(theirs)), method
        return mine

    assert same("GET").json()["title"] == "Write docs"
    patched = same("PATCH", json={"status": "in_progress", "description": "all of them"})
    assert (patched.json()["status"], patched.json()["priority"]) == ("in_progress", "high")
    same("PATCH", json={"title": None})
    same("PATCH", json={"status": "nope"})
    same("PATCH", content=b"")
    pair.same("GET", "/api/v1/tasks")
    pair.same("GET", "/api/v1/tasks?status=in_progress&tag=doc")
    pair.same("GET", "/api/v1/tasks?q=docs&limit=1&offset=0")
    pair.same("GET", "/api/v1/tasks?limit=0")
    pair.same("GET", "/api/v1/tasks?status=bogus&offset=-1")
    pair.same("POST", "/api/v1/tasks", json={"title": ""})
    pair.same("POST", "/api/v1/tasks", json={"title": "x", "estimated_effort": 2**64})
    pair.same("POST", "/api/v1/tasks", content=b"[1,")
    deleted = same("DELETE")
    assert (deleted.status_code, deleted.content) == (204, b"")
    for method, options in (("GET", {}), ("DELETE", {}), ("PATCH", {"json": {"title": "t"}})):
        response = same(method, **options)
        assert (response.status_code, response.json()) == (404, {"detail": "Task not found"})
    pair.same("GET", "/api/v1/tasks/unknown-id")


# -- query -----------------------------------------------------------------------------------------
def test_query_is_as_the_reference(scanned: Pair, llm: FakeLLM) -> None:
    llm.mode = "echo"
    answer = scanned.same("POST", "/api/v1/query", json={"query": "How is the total computed?"})
    assert answer.status_code == 200
    assert answer.json()["response"].startswith("You asked: 'How is the total computed?'")
    scanned.same("POST", "/api/v1/query", json={"query": ""})
    scanned.same("POST", "/api/v1/query", json={"query": "q", "context_mode": "full"})
    llm.mode = "error"
    try:
        failed = scanned.same("POST", "/api/v1/query", json={"query": "again?"})
    finally:
        llm.mode = "echo"
    assert failed.status_code == 502


# -- routing ---------------------------------------------------------------------------------------
def test_unknown_paths_and_methods_are_as_the_reference(pair: Pair) -> None:
    pair.same("GET", "/api/v1/nowhere")
    pair.same("PUT", "/api/v1/tasks")
    pair.same("GET", "/api/v1/project/scan")


# -- an unusable struct.json (last: it spoils the scan until the next one) ------------------------
def test_an_unusable_struct_json_is_409_as_the_reference(scanned: Pair) -> None:
    for root in scanned.roots:
        (root / "struct.json").write_bytes(b"{ not a struct")
    time.sleep(STRUCT_RECHECK_S)  # a change behind the engine's back shows within this
    try:
        for method, path in (
            ("GET", "/api/v1/project/info"),
            ("GET", "/api/v1/project/struct"),
            ("GET", "/api/v1/project/context/FULL"),
        ):
            response = scanned.same(method, path)
            assert response.status_code == 409
            assert response.json() == {"detail": "struct.json is not usable: run a scan again"}
    finally:
        scanned.same("POST", "/api/v1/project/scan", json={"incremental": False})


# -- ``llmstruct serve --root DIR`` ----------------------------------------------------------------
def test_serve_registers_the_api_routes_for_its_root(served: Any) -> None:
    server = served("--no-auth").wait_serving()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HANG) as client:
        assert client.get("/api/v1/tasks").json() == []
        assert client.get("/api/v1/project/info").json() == NO_STRUCT
        created = client.post("/api/v1/tasks", json={"title": "from serve"})
        assert created.status_code == 201
        assert client.get(f"/api/v1/tasks/{created.json()['id']}").json()["title"] == "from serve"
        assert client.get("/test/pid").status_code == 200  # the caller's configure still runs
    assert server.terminate() == 0
