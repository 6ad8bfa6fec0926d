"""Shadow compare over real processes: ``llmstruct migrate proxy --mode shadow``.

Three custom servers (``proxy_backend.py``) on identical project copies: ``legacy``,
``twin`` (identical) and ``tampered`` (``PROXY_TEST_TAMPER``: one field of
``GET /api/v1/project/info`` changed; and its ``/test/slow`` 8 s slower). A proxy
in front of legacy+twin must report no difference over a mix of reads and writes;
one in front of legacy+tampered must name that endpoint and that field, and
nothing else. The comparison's
pure parts (``compare``, ``diff_json``, ``parse_sla``) are tested directly too.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from llmstruct.migration.shadow import (
    DEFAULT_IGNORED,
    Answer,
    EndpointMap,
    compare,
    diff_json,
    parse_sla,
)
from tests.migration.proxy_helpers import (
    HANG,
    Proc,
    child_env,
    custom,
    fastapi,
    make_project,
    proxy,
    wait_for,
)

JSON = [(b"content-type", b"application/json")]


@pytest.fixture(scope="module")
def backends(tmp_path_factory) -> Iterator[dict[str, Proc]]:
    base = tmp_path_factory.mktemp("shadow")
    started: dict[str, Proc] = {}
    try:
        for name, env in (("legacy", {}), ("twin", {}), ("tampered", {
            "PROXY_TEST_TAMPER": 'file_count="many"', "PROXY_TEST_SLOW_EXTRA": "8"})):  # fmt: skip
            root = make_project(base / name / "project")  # the same name: it is in answers
            started[name] = custom(root, base / f"{name}.log", **env)
        yield started
    finally:
        for proc in started.values():
            proc.stop()


def settled(client: httpx.Client) -> dict:
    """The shadow stats once every mirrored request has been compared or has failed."""

    def done() -> dict | None:
        shadow = client.get("/_proxy/stats").json()["shadow"]
        return shadow if shadow["compared"] + shadow["failures"] == shadow["mirrored"] else None

    return wait_for(done, "the mirror queue to drain")


def traffic(client: httpx.Client) -> int:
    """A mix of the contract's reads and writes; returns the number of requests sent."""
    sent = 0

    def call(method: str, path: str, status: int, **options) -> httpx.Response:
        nonlocal sent
        sent += 1
        response = client.request(method, path, **options)
        assert response.status_code == status, (method, path, response.text)
        return response

    call("POST", "/api/v1/project/scan", 200, json={"incremental": False})
    with client.stream("POST", "/api/v1/project/scan", json={},
                       headers={"Accept": "application/x-ndjson"}) as response:  # fmt: skip
        sent += 1
        assert response.status_code == 200 and len(list(response.iter_lines())) > 1
    call("GET", "/api/v1/system/health", 200)
    call("GET", "/api/v1/project/info", 200)
    call("GET", "/api/v1/project/struct", 200)
    call("GET", "/api/v1/project/context/MINIMAL", 200)
    call("GET", "/api/v1/project/context/BOGUS", 400)
    call("POST", "/api/v1/context", 200, json={"mode": "FOCUSED", "query": "total prices"})
    task = call("POST", "/api/v1/tasks", 201, json={"title": "mirror me", "tags": ["x"]}).json()
    call("GET", f"/api/v1/tasks/{task['id']}", 200)
    call("PATCH", f"/api/v1/tasks/{task['id']}", 200, json={"status": "in_progress"})
    call("GET", "/api/v1/tasks", 200, params={"status": "in_progress"})
    call("POST", "/api/v1/tasks", 422, json={"title": ""})
    call("DELETE", f"/api/v1/tasks/{task['id']}", 204)
    call("GET", f"/api/v1/tasks/{task['id']}", 404)
    return sent


def test_identical_servers_show_no_difference(backends, tmp_path) -> None:
    front = proxy(backends["legacy"].url, backends["twin"].url, tmp_path / "proxy.log",
                  "--mode", "shadow")  # fmt: skip
    try:
        with front.client() as client:
            sent = traffic(client)
            shadow = settled(client)
            stats = client.get("/_proxy/stats").json()
    finally:
        front.stop()
    assert shadow["schema"] == "loaded"  # the twin's /openapi.json
    assert shadow["mirrored"] == shadow["compared"] == sent
    assert shadow["dropped"] == shadow["failures"] == 0
    differing = {name: entry["samples"] for name, entry in shadow["by_endpoint"].items()
                 if entry["differences"]}  # fmt: skip
    assert shadow["differences"] == 0, differing
    # One request broke the contract's schema: the empty title answered 422 by both.
    assert shadow["schema_violations"] == 1, shadow["by_endpoint"]
    assert shadow["by_endpoint"]["POST /api/v1/tasks"]["schema_samples"] == [
        {"side": "request", "error": "title: '' should be non-empty",
         "request": "POST /api/v1/tasks"}
    ]  # fmt: skip
    assert {"GET /api/v1/tasks/{id}", "PATCH /api/v1/tasks/{id}", "POST /api/v1/project/scan",
            "DELETE /api/v1/tasks/{id}"} <= set(shadow["by_endpoint"])  # fmt: skip
    assert shadow["by_endpoint"]["GET /api/v1/tasks/{id}"]["compared"] == 2
    # Clients were answered by legacy; custom saw every mirrored request.
    assert stats["backends"]["legacy"]["requests"] == sent
    assert stats["backends"]["custom"]["requests"] == sent
    # Writes were mirrored: the proxy said at start that custom needs its own project.
    assert "needs its own copy of the project" in (tmp_path / "proxy.log").read_text()


def test_a_shadow_proxy_takes_no_weight_and_no_migration(backends, tmp_path) -> None:
    # In shadow mode every client is answered by legacy: a weight would move nothing,
    # so a migrator must not be able to "finish" such a migration.
    front = proxy(backends["legacy"].url, backends["twin"].url, tmp_path / "proxy.log",
                  "--mode", "shadow")  # fmt: skip
    try:
        with front.client() as client:
            refused = client.put("/_proxy/weight", json={"weight": 1})
            rollback = client.put("/_proxy/weight", json={"weight": 0})  # what shadow does
            config = client.get("/_proxy/config").json()
        started = subprocess.run(
            [sys.executable, "-m", "llmstruct", "migrate", "start", "--proxy", front.url,
             "--stages", "100", "--gate", "error_rate<=0.01", "--window", "1",
             "--state", str(tmp_path / "m.json")],
            env=child_env(), capture_output=True, text=True, timeout=HANG,
        )  # fmt: skip
    finally:
        front.stop()
    assert refused.status_code == 409
    assert refused.json() == {"detail": "the proxy runs in shadow mode: no weight"}
    assert rollback.status_code == 200
    assert config["mode"] == "shadow" and config["weight"] == 0.0
    assert started.returncode == 1 and "Traceback" not in started.stderr
    assert "runs in shadow mode; a migration needs a proxy in split mode" in started.stderr
    assert not (tmp_path / "m.json").exists()


def test_a_custom_server_that_never_answers_does_not_hold_up_clients(backends, tmp_path) -> None:
    # It accepts (the kernel's backlog does) and says nothing, /openapi.json included;
    # with an hour's read timeout the proxy would not serve for an hour if it waited.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        front = proxy(backends["legacy"].url, silent_url, tmp_path / "proxy.log",
                      "--mode", "shadow", "--read-timeout", "3600")  # fmt: skip
        try:
            with front.client() as client:
                answered = client.get("/api/v1/system/health")
                shadow = client.get("/_proxy/stats").json()["shadow"]
        finally:
            front.stop()
    assert answered.status_code == 200 and answered.json()["status"] == "ok"
    # The fetch is still waiting on the silent server: said so, not passed off as failed.
    assert shadow["schema"] == "loading" and shadow["mirrored"] == 1


def test_a_custom_server_that_is_down_leaves_the_schema_unavailable(backends, tmp_path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    front = proxy(backends["legacy"].url, dead_url, tmp_path / "proxy.log", "--mode", "shadow")
    try:
        with front.client() as client:
            answered = client.get("/api/v1/system/health")
            shadow = settled(client)
    finally:
        front.stop()
    assert answered.status_code == 200
    assert shadow["schema"] == "unavailable" and shadow["mirrored"] == 1


def test_the_fastapi_reference_and_the_custom_server_agree_in_shadow(tmp_path) -> None:
    """The migration's own question, on the same mix: legacy FastAPI vs the custom server."""
    pytest.importorskip("fastapi")
    legacy = fastapi(make_project(tmp_path / "legacy" / "project"), tmp_path / "legacy.log")
    new = front = None
    try:
        new = custom(make_project(tmp_path / "custom" / "project"), tmp_path / "custom.log")
        front = proxy(legacy.url, new.url, tmp_path / "proxy.log", "--mode", "shadow")
        with front.client() as client:
            sent = traffic(client)
            shadow = settled(client)
    finally:
        for proc in (front, new, legacy):
            if proc is not None:
                proc.stop()
    assert shadow["compared"] == sent and shadow["schema"] == "loaded"
    differing = {name: entry["samples"] for name, entry in shadow["by_endpoint"].items()
                 if entry["differences"]}  # fmt: skip
    assert shadow["differences"] == 0, differing
    assert shadow["schema_violations"] == 1  # the empty title, as above


def test_a_changed_field_is_reported_with_its_endpoint_and_values(backends, tmp_path) -> None:
    front = proxy(backends["legacy"].url, backends["tampered"].url, tmp_path / "proxy.log",
                  "--mode", "shadow", "--sla-ms", "GET /api/v1/system/health=0.001",
                  "--sla-default-ms", "60000")  # fmt: skip
    try:
        with front.client() as client:
            full = {"incremental": False}  # each side's scan cache may differ
            assert client.post("/api/v1/project/scan", json=full).status_code == 200
            for path in ("/api/v1/project/info", "/api/v1/system/health",
                         "/api/v1/project/context/MINIMAL", "/api/v1/project/info"):  # fmt: skip
                answer = client.get(path)
                assert answer.status_code == 200, answer.text
                if path.endswith("/info"):
                    assert isinstance(answer.json()["file_count"], int)  # legacy answered
            shadow = settled(client)
            window = client.post("/_proxy/stats/window").json()["shadow"]
            empty = client.post("/_proxy/stats/window").json()["shadow"]
    finally:
        front.stop()
    assert shadow["compared"] == 5 and shadow["differences"] == 2, shadow["by_endpoint"]
    info = shadow["by_endpoint"]["GET /api/v1/project/info"]
    assert info["differences"] == 2
    assert info["samples"][0] == {"field": "body.file_count", "legacy": 3, "custom": "many",
                                  "request": "GET /api/v1/project/info"}  # fmt: skip
    assert {sample["field"] for sample in info["samples"]} == {"body.file_count"}
    others = [name for name, entry in shadow["by_endpoint"].items() if entry["differences"]]
    assert others == ["GET /api/v1/project/info"]
    # The tampered value also breaks the contract's schema (file_count is an integer).
    assert shadow["schema_violations"] == 2 == info["schema_violations"]
    assert info["schema_samples"][0]["side"] == "custom"
    assert "file_count" in info["schema_samples"][0]["error"]
    # Only health has a (1 µs) SLA small enough to miss.
    assert shadow["sla_violations"] == 1
    assert shadow["by_endpoint"]["GET /api/v1/system/health"]["sla_violations"] == 1
    # The window that just ended holds the same, and the next one starts empty.
    assert window["differences"] == 2 and window["compared"] == 5
    assert empty["compared"] == empty["differences"] == 0 and empty["by_endpoint"] == {}


def test_no_shadow_writes_mirrors_only_reads(backends, tmp_path) -> None:
    front = proxy(backends["legacy"].url, backends["tampered"].url, tmp_path / "proxy.log",
                  "--mode", "shadow", "--no-shadow-writes")  # fmt: skip
    title = f"not-mirrored-{uuid.uuid4().hex[:8]}"
    try:
        with front.client() as client:
            assert client.post("/api/v1/tasks", json={"title": title}).status_code == 201
            assert client.get("/api/v1/system/health").status_code == 200
            shadow = settled(client)
    finally:
        front.stop()
    assert shadow["skipped_writes"] == 1 and shadow["mirrored"] == 1
    for name, present in (("legacy", True), ("tampered", False)):
        with backends[name].client() as direct:
            titles = [t["title"] for t in direct.get("/api/v1/tasks", params={"q": title}).json()]
        assert (title in titles) is present, name
    assert "needs its own copy" not in (tmp_path / "proxy.log").read_text()  # nothing to warn


def test_a_full_mirror_queue_drops_and_never_slows_the_client(backends, tmp_path) -> None:
    # Legacy answers /test/slow?s=0 at once; the tampered side takes 8 s more, so the
    # mirror copies hold the four mirror slots and the one-job queue until the proxy's
    # 3 s read timeout, while the client's twelve requests are answered.
    front = proxy(backends["legacy"].url, backends["tampered"].url, tmp_path / "proxy.log",
                  "--mode", "shadow", "--shadow-queue", "1", "--read-timeout", "3")  # fmt: skip
    try:
        with front.client() as client:
            statuses = [client.get("/test/slow", params={"s": "0", "n": str(n)}).status_code
                        for n in range(12)]  # fmt: skip
            shadow = client.get("/_proxy/stats").json()["shadow"]
            final = settled(client)
    finally:
        front.stop()
    assert statuses == [200] * 12
    assert shadow["dropped"] >= 1  # while the client was still being answered
    assert final["dropped"] >= 1 and final["mirrored"] + final["dropped"] == 12
    assert final["failures"] == final["mirrored"]  # each copy timed out on the slow side


# -- the comparison itself -------------------------------------------------------------------------
IGNORED = frozenset(DEFAULT_IGNORED)


def answer(status: int, body: bytes, headers=JSON) -> Answer:
    return Answer.of(status, list(headers), body)


def test_volatile_fields_are_ignored_anywhere_in_the_body() -> None:
    left = b'{"id": "a", "title": "t", "nested": [{"created_at": 1, "x": 1}], "uptime_s": 1.5}'
    right = b'{"id": "b", "title": "t", "nested": [{"created_at": 2, "x": 1}], "uptime_s": 9.0}'
    assert compare(answer(200, left), answer(200, right), IGNORED) == []
    assert compare(answer(200, left), answer(200, right), frozenset()) != []


def test_differences_name_the_field_path_and_both_values() -> None:
    found = list(diff_json({"a": [1, {"b": True}], "c": 1}, {"a": [1, {"b": 1}, 3]}, IGNORED))
    assert ("body.a.length", 2, 3) in found
    assert ("body.a[1].b", True, 1) in found  # a bool is not the number 1
    assert ("body.c", 1, "<missing>") in found


def test_status_content_type_and_etag_presence_are_compared() -> None:
    plain = [(b"content-type", b"text/plain")]
    tagged = [*JSON, (b"etag", b'"abc"')]
    other_tag = [*JSON, (b"etag", b'"def"')]
    assert compare(answer(200, b"{}"), answer(404, b"{}"), IGNORED) == [("status", 200, 404)]
    found = compare(answer(200, b"x", plain), answer(200, b"x", JSON), IGNORED)
    assert found == [("header.content-type", "text/plain", "application/json")]
    assert compare(answer(200, b"{}", tagged), answer(200, b"{}", JSON), IGNORED) == [
        ("header.etag", True, False)
    ]
    assert compare(answer(200, b"{}", tagged), answer(200, b"{}", other_tag), IGNORED) == []


def test_ndjson_and_gzip_bodies_are_compared_decoded() -> None:
    import gzip

    ndjson = [(b"content-type", b"application/x-ndjson")]
    zipped = [*ndjson, (b"content-encoding", b"gzip")]
    left = b'{"n": 1}\n{"n": 2}\n'
    right = gzip.compress(b'{"n": 1}\n{"n": 3}\n')
    assert compare(answer(200, left, ndjson), answer(200, right, zipped), IGNORED) == [
        ("body[1].n", 2, 3)
    ]


def test_endpoints_are_route_templates() -> None:
    endpoints = EndpointMap()
    assert endpoints.endpoint("GET", "/api/v1/tasks/42") == "GET /api/v1/tasks/{id}"
    assert endpoints.endpoint("GET", "/api/v1/project/context/FULL") == (
        "GET /api/v1/project/context/{mode}"
    )
    assert endpoints.endpoint("GET", "/somewhere/else") == "GET (other)"


def test_sla_flags_parse_or_fail_clearly() -> None:
    assert parse_sla(["GET /api/v1/project/info=200", "post /api/v1/tasks=50.5"]) == {
        "GET /api/v1/project/info": 200.0,
        "POST /api/v1/tasks": 50.5,
    }
    for bad in ("GET /x", "/x=5", "GET /x=fast", "GET /x=0", "GET x=5"):
        with pytest.raises(ValueError, match="METHOD /path"):
            parse_sla([bad])
