"""The engine's ``/api/v1/ws`` messages over real WebSockets, on both servers.

Two servers, each on its own copy of one small project on disk: the custom server
(``build_app`` plus ``api.configure_for``, the very hook ``serve`` runs, in a
``ServerThread`` on 127.0.0.1 port 0) and the FastAPI reference
(``python -m llmstruct.migration.serve_fastapi`` as a process, in-process bridge, no
key). Every behaviour test runs on both (ids ``custom`` and ``reference``), with the
raw RFC 6455 client of ``ws_helpers``; ``test_both_servers_answer_alike`` sends one
script to both and compares the answers. Waits are hang guards, never asserted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import llmstruct
from llmstruct.api import models
from llmstruct.api.errors import NO_STRUCT_DETAIL
from llmstruct.server.api import configure_for
from llmstruct.server.limits import Limits
from llmstruct.server.system import build_app
from tests.server.helpers import ServerThread
from tests.server.ws_helpers import CLOSE, CONT, PING, PONG, TEXT, RawClient, async_test

HANG = 60.0  # an upper bound on one wait, never asserted on
DEADLINE = 120.0  # for a whole test
FILES = {
    "shop/cart.py": (
        'def total(items):\n    """Add up the prices of the items."""\n    return sum(items)\n'
    ),
    "shop/pricing.py": (
        "from shop.cart import total\n\n\n"
        "def discounted(items, rate):\n    return total(items) * (1 - rate)\n"
    ),
    "shop/util.js": "export function fmt(x) { return String(x); }\n",
}
VOLATILE = frozenset(("timestamp", "scan_id"))
PING_MESSAGE = {"type": "ping"}
PONG_MESSAGE = {"type": "pong"}


@dataclass
class Endpoint:
    port: int
    root: Path


def _write_project(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# -- the servers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    root = _write_project(tmp_path_factory.mktemp("custom") / "project")
    app = build_app(None, access_log=False, rate_limit=1e6, rate_burst=10**6)
    configure_for(root)(app)
    server = ServerThread(app, Limits(), "h11")
    try:
        server.start()
        yield Endpoint(server.port, root)
    finally:
        server.stop()
        app.state["engine"].close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    base = tmp_path_factory.mktemp("reference")
    root = _write_project(base / "project")
    parent = str(Path(llmstruct.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": parent + (os.pathsep + path if path else "")}
    env.pop("LLMSTRUCT_API_KEY", None)
    log = base / "reference.log"
    command = [
        sys.executable, "-m", "llmstruct.migration.serve_fastapi",
        "--port", "0", "--root", str(root), "--bridge", "inprocess", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + HANG
        port = None
        while port is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"serving FastAPI on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found.group(1)) if found else None
            time.sleep(0.05)
        if port is None:
            pytest.fail(f"serve-fastapi did not start:\n{log.read_text()}")
        yield Endpoint(port, root)
    finally:
        process.terminate()
        try:
            process.wait(HANG)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["custom", "reference"])
def server(request: pytest.FixtureRequest) -> Endpoint:
    return request.getfixturevalue(request.param)


# -- the client ------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def session(server: Endpoint) -> AsyncIterator[RawClient]:
    """A connection to ``/api/v1/ws``, ended by a closing handshake (or dropped on failure)."""
    client = await RawClient.connect(server.port, path="/api/v1/ws")
    try:
        yield client
        await client.close_handshake()
    finally:
        await client.aclose()


def send(client: RawClient, message: Any) -> None:
    """Send ``message`` (bytes as they are, anything else as JSON) in one text frame."""
    client.send_frame(TEXT, message if isinstance(message, bytes) else orjson.dumps(message))


async def recv(client: RawClient) -> Any:
    """The next JSON message, answering pings; a Close fails the test."""
    parts: list[bytes] = []
    while True:
        frame = await client.recv_frame(HANG)  # a first scan may take a while on a busy box
        if frame.opcode == PING:
            client.send_frame(PONG, frame.payload)
            continue
        assert frame.opcode != CLOSE, f"closed: {frame.close_code} {frame.close_reason}"
        assert frame.opcode in (TEXT, CONT), frame.opcode
        parts.append(frame.payload)
        if frame.fin:
            return orjson.loads(b"".join(parts))


async def ask(client: RawClient, message: Any) -> Any:
    send(client, message)
    return await recv(client)


async def scan(client: RawClient, data: Any = None) -> tuple[list[dict], dict, list[dict]]:
    """Run one scan: (its progress data, its ScanResponse, other messages seen meanwhile)."""
    send(client, {"type": "scan_request", "data": data})
    progress, others = [], []
    while (message := await recv(client))["type"] != "scan_complete":
        if message["type"] == "scan_progress":
            progress.append(message["data"])
        else:
            others.append(message)
    return progress, message["data"], others


def error(detail: Any) -> dict:
    return {"type": "error", "data": {"detail": detail}}


def http_422_as_data(model: type, body: Any) -> list[dict]:
    """The 422 list a POST of ``body`` gets over HTTP, with ``loc`` starting ``"data"``."""
    with pytest.raises(models.RequestValidationFailed) as failed:
        models.validate_body(model, orjson.dumps(body), "application/json")
    detail = failed.value.detail
    assert all(item["loc"][0] == "body" for item in detail)
    return [{**item, "loc": ["data", *item["loc"][1:]]} for item in detail]


# -- the messages ----------------------------------------------------------------------------------
@async_test(deadline=DEADLINE)
async def test_scan_ping_and_context_on_one_connection(server: Endpoint) -> None:
    async with session(server) as client:
        send(client, {"type": "scan_request", "data": {"incremental": False}})
        send(client, PING_MESSAGE)  # answered while the scan runs in the background
        progress, complete = [], None
        pongs = 0
        while complete is None:
            message = await recv(client)
            if message["type"] == "scan_progress":
                progress.append(models.ScanProgress.model_validate(message["data"]))
            elif message["type"] == "scan_complete":
                complete = models.ScanResponse.model_validate(message["data"])
            else:
                assert message == PONG_MESSAGE
                pongs += 1
        if pongs == 0:  # the scan was done before the ping was read
            assert await recv(client) == PONG_MESSAGE
        else:
            assert pongs == 1
        assert {item.file for item in progress} == set(FILES)
        assert sorted(item.current for item in progress) == list(range(1, len(FILES) + 1))
        assert {item.total for item in progress} == {len(FILES)}
        assert all(item.error is None for item in progress)
        assert (complete.status, complete.files_processed) == ("completed", len(FILES))
        assert complete.output_path == "struct.json" and (server.root / "struct.json").is_file()

        answer = await ask(
            client, {"type": "context_request", "data": {"mode": "FOCUSED", "query": "discounted"}}
        )
        assert answer["type"] == "context_result", answer
        context = models.ContextResponse.model_validate(answer["data"])
        assert context.mode == "FOCUSED" and context.token_count > 0
        assert "def discounted(items, rate)" in context.context_data["text"]
        assert await ask(client, PING_MESSAGE) == PONG_MESSAGE


@async_test(deadline=DEADLINE)
async def test_context_before_any_scan_is_the_http_endpoints_409_detail(server: Endpoint) -> None:
    (server.root / "struct.json").unlink(missing_ok=True)
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HANG) as http:
        response = http.post("/api/v1/context", json={"mode": "MINIMAL"})
    assert (response.status_code, response.json()) == (409, {"detail": NO_STRUCT_DETAIL})
    async with session(server) as client:
        answer = await ask(client, {"type": "context_request", "data": {"mode": "MINIMAL"}})
        assert answer == error(response.json()["detail"])
        assert await ask(client, PING_MESSAGE) == PONG_MESSAGE


MALFORMED = [
    (b"{not json", "Invalid JSON"),
    (b"[1,2]", "Message must be a JSON object with a string 'type'"),
    (b'{"data":{"mode":"FULL"}}', "Message must be a JSON object with a string 'type'"),
    (b'{"type":["scan_request"]}', "Message must be a JSON object with a string 'type'"),
    (b'{"type":"scan_everything"}', "Unknown message type: scan_everything"),
]
# (message type, its data): each invalid, answered with the HTTP endpoint's 422 list.
INVALID_DATA = [
    ("context_request", {}),  # mode missing
    ("context_request", {"mode": "EVERYTHING"}),
    ("context_request", {"mode": "FULL", "budget": "lots", "include_files": "a.py"}),
    ("context_request", {"mode": "FULL", "budget": -1, "format": "pdf", "query": 7}),
    ("scan_request", {"deep_analysis": "maybe", "include_patterns": 7}),
    ("scan_request", {"output_path": ["x"], "exclude_patterns": [1]}),
]


@async_test(deadline=DEADLINE)
async def test_malformed_messages_get_errors_and_the_connection_stays_open(
    server: Endpoint,
) -> None:
    async with session(server) as client:
        for message, detail in MALFORMED:
            assert await ask(client, message) == error(detail), message
            assert await ask(client, PING_MESSAGE) == PONG_MESSAGE
        for kind, data in INVALID_DATA:
            model = models.ContextRequest if kind == "context_request" else models.ScanRequest
            answer = await ask(client, {"type": kind, "data": data})
            assert answer == error(http_422_as_data(model, data)), (kind, data)
            assert await ask(client, PING_MESSAGE) == PONG_MESSAGE
        for kind in ("context_request", "scan_request"):  # data that is not an object at all
            answer = await ask(client, {"type": kind, "data": [1]})
            assert answer["type"] == "error", answer
            (problem,) = answer["data"]["detail"]
            assert problem["loc"] == ["data"] and problem["input"] == [1]
        # ... and an engine refusal: the HTTP endpoint's 400 detail
        answer = await ask(client, {"type": "scan_request", "data": {"output_path": "../out.json"}})
        assert answer == error("output_path must name a file inside the project root")
        assert await ask(client, PING_MESSAGE) == PONG_MESSAGE


@async_test(deadline=DEADLINE)
async def test_requests_sent_together_on_one_connection_are_all_answered(
    server: Endpoint,
) -> None:
    async with session(server) as client:
        await scan(client)  # so that the contexts below have a struct to read
        for message in (
            {"type": "scan_request", "data": {}},
            {"type": "context_request", "data": {"mode": "MINIMAL"}},
            {"type": "scan_request"},  # no data: a default ScanRequest, as null
            {"type": "context_request", "data": {"mode": "FOCUSED", "query": "total"}},
            PING_MESSAGE,
        ):
            send(client, message)  # all at once, no answer awaited in between
        seen: Counter[str] = Counter()
        files: Counter[str] = Counter()
        contexts = []
        while seen["scan_complete"] < 2 or seen["context_result"] < 2 or seen["pong"] < 1:
            message = await recv(client)
            seen[message["type"]] += 1
            if message["type"] == "scan_progress":
                files[message["data"]["file"]] += 1
            elif message["type"] == "context_result":
                contexts.append(message["data"]["mode"])
        assert seen == {"scan_progress": 2 * len(FILES), "scan_complete": 2, "context_result": 2,
                        "pong": 1}  # fmt: skip
        assert files == {name: 2 for name in FILES}
        assert contexts == ["MINIMAL", "FOCUSED"]  # in the order asked
        assert await ask(client, PING_MESSAGE) == PONG_MESSAGE


# -- both servers, one script ----------------------------------------------------------------------
SCRIPT: list[Any] = [
    PING_MESSAGE,
    b"nope",
    {"type": "context_request", "data": None},
    {"type": "context_request", "data": "FULL"},
    {"type": "scan_request", "data": 5},
    b'{"type": "context_request", "data": {"mode": "FULL", "budget": 1000000000000000000000}}',
    {"type": "scan_request", "data": {"include_patterns": ["shop/[z-a].py"]}},
]
CONTEXTS: list[Any] = [
    {"mode": "FOCUSED", "query": "discounted", "budget": 200},
    {"mode": "FULL", "format": "json"},
    {"mode": "MINIMAL", "include_files": ["shop/nowhere.py"]},
]


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


async def _transcript(server: Endpoint) -> list[Any]:
    async with session(server) as client:
        answers = [_stable(await ask(client, message)) for message in SCRIPT]
        progress, complete, others = await scan(client, {"incremental": False})
        answers += others
        answers.append(sorted((p["file"], p["total"], p["error"], p["cached"]) for p in progress))
        answers.append(_stable(complete))
        for data in CONTEXTS:
            answers.append(await ask(client, {"type": "context_request", "data": data}))
    return answers


def test_both_servers_answer_alike(custom: Endpoint, reference: Endpoint) -> None:
    async def both() -> tuple[list[Any], list[Any]]:
        return await _transcript(custom), await _transcript(reference)

    mine, theirs = asyncio.run(asyncio.wait_for(both(), DEADLINE))
    assert mine == theirs
    # what is compared is more than errors: a scan and contexts answered in full
    assert [answer["type"] for answer in mine[-3:-1]] == ["context_result", "context_result"]
    assert mine[-1]["type"] == "error"
