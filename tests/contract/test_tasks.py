"""Tasks: CRUD, filters, pagination and every 404/422, the same on the three servers.

Each scenario works on the tasks it creates (their ids differ per server) and on the
list, which every server fills in the same order because every scenario runs on all
three at the same point of the session.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.harness import Contract, Server

TASKS = "/api/v1/tasks"
NOT_FOUND = {"detail": "Task not found"}
JSON = {"Content-Type": "application/json"}


def _create(s: Server, **body: Any) -> str:
    response = s.call("POST", TASKS, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_task_is_created_read_patched_and_deleted(contract: Contract) -> None:
    def scenario(s: Server) -> Any:
        body = {
            "title": "Write docs",
            "priority": "high",
            "tags": ["doc", "ü"],
            "estimated_effort": 3,
        }
        created = s.call("POST", TASKS, json=body)
        path = f"{TASKS}/{created.json()['id']}"
        seen = [{"created": created.status_code, "body": s.observe("GET", path)["body"]}]
        for change in (
            {"status": "in_progress", "description": "all of them"},
            {"description": None, "estimated_effort": None},
            {"tags": [], "priority": "urgent", "title": "Write the docs", "unknown": 1},
        ):
            seen.append(s.observe("PATCH", path, json=change))
        for change in (
            {"title": None}, {"status": "nope"}, {"priority": None}, {"tags": None},
            {"title": ""}, {"title": "x" * 201}, {"estimated_effort": -1},
            {"estimated_effort": 2**64}, {"status": "done", "tags": "one"}, [],
        ):  # fmt: skip
            seen.append(s.observe("PATCH", path, json=change))
        seen.append(s.observe("PATCH", path, content=b""))
        seen.append(
            s.observe("PATCH", path, content=b"{", headers={"Content-Type": "application/json"})
        )
        seen.append(s.observe("DELETE", path, show=("content-length",)))
        seen.append(s.observe("DELETE", path))  # gone: 404 (the other methods: below)
        seen.append(s.observe("PATCH", path, json={"title": ""}))  # 422 before 404
        return seen

    seen = contract.check(scenario)
    assert seen[0]["created"] == 201 and seen[0]["body"]["title"] == "Write docs"
    assert seen[-3]["status"] == 204 and seen[-3]["body"] is None
    assert (seen[-2]["status"], seen[-2]["body"]) == (404, NOT_FOUND)
    assert seen[-1]["status"] == 422


@pytest.mark.parametrize(
    "body",
    [
        {"title": "Minimal"},
        {"title": "x" * 200, "description": "longest title", "priority": "low"},
        {"title": "Ünïcødé ✓ 世界 🚀", "description": "RTL: שלום, NUL-free", "tags": ["ß", "🚀"]},
        {"title": "effort", "estimated_effort": 2**63 - 1, "tags": []},
        {"title": "ignored keys", "id": "mine", "status": "done", "created_at": "yesterday"},
    ],
    ids=["minimal", "longest-title", "unicode", "max-effort", "ignored-keys"],
)
def test_create_task(contract: Contract, body: dict[str, Any]) -> None:
    seen = contract.check(lambda s: s.observe("POST", TASKS, json=body))
    assert seen["status"] == 201 and seen["body"]["title"] == body["title"]


@pytest.mark.parametrize(
    "options",
    [
        {"json": {"title": ""}},
        {"json": {"title": "x" * 201}},
        {"json": {"title": "🚀" * 201}},
        {"json": {}},
        {"json": {"title": None}},
        {"json": {"title": 5, "priority": "asap", "tags": "one"}},
        {"json": {"title": "x", "estimated_effort": 2**64}},
        {"json": {"title": "x", "estimated_effort": -1}},
        {"json": {"title": "x", "estimated_effort": 1.5}},
        {"json": {"title": "x", "tags": [1, {"a": 1}]}},
        {"json": [{"title": "x"}]},
        {"content": b""},
        {"content": b"[1,", "headers": {"Content-Type": "application/json"}},
        {"content": b'{"title": "x"', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"title": "x"}', "headers": {"Content-Type": "text/plain"}},
        {"content": b'{"title": "x"}', "headers": {"Content-Type": "application/json; charset=x"}},
        {"content": b'{"title": "x"}', "headers": {"Content-Type": "application/vnd.api+json"}},
        {"content": b'{"title": "\\ud800"}', "headers": {"Content-Type": "application/json"}},
        {"content": b'{"title": 1e400}', "headers": {"Content-Type": "application/json"}},
    ],
)  # fmt: skip
def test_create_task_errors(contract: Contract, options: dict[str, Any]) -> None:
    seen = contract.check(lambda s: s.observe("POST", TASKS, **options))
    assert seen["status"] in (201, 400, 422)  # the comparison is the test


def test_list_filters_and_pagination(contract: Contract) -> None:
    def scenario(s: Server) -> Any:
        for n, (priority, tags) in enumerate(
            [("low", ["a"]), ("high", ["a", "b"]), ("high", ["b"])]
        ):
            task_id = _create(s, title=f"list {n} needle" if n % 2 else f"list {n}",
                              priority=priority, tags=tags)  # fmt: skip
            if n == 2:
                s.call("PATCH", f"{TASKS}/{task_id}", json={"status": "blocked"})
        queries = [
            "", "?status=blocked", "?tag=b&priority=high", "?q=NEEDLE",
            "?q=list&limit=2&offset=1", "?q=list&offset=100&unknown=1", "?tag=&q=&limit=1000",
        ]  # fmt: skip
        return [s.observe("GET", TASKS + query) for query in queries]

    seen = contract.check(scenario)
    assert all(o["status"] == 200 for o in seen)
    assert [task["title"] for task in seen[4]["body"]] == ["list 1 needle", "list 2"]


@pytest.mark.parametrize(
    "query",
    [
        "?status=bogus", "?priority=HIGH", "?limit=0", "?limit=1001", "?limit=x",
        "?offset=-1", "?offset=1.5", "?limit=", "?status=bogus&offset=-1&limit=0",
        "?limit=99999999999999999999",
    ],
)  # fmt: skip
def test_list_query_errors(contract: Contract, query: str) -> None:
    seen = contract.check(lambda s: s.observe("GET", TASKS + query))
    assert seen["status"] == 422


def test_unknown_task_ids_are_404(contract: Contract) -> None:
    def scenario(s: Server) -> Any:
        return [
            s.observe("GET", f"{TASKS}/unknown-id"),
            s.observe("DELETE", f"{TASKS}/unknown-id"),
            s.observe("PATCH", f"{TASKS}/unknown-id", json={"status": "done"}),
            s.observe("GET", f"{TASKS}/%C3%BC"),
            s.observe("GET", f"{TASKS}/a%2Fb"),  # %2F is data: the task "a/b", not a path
        ]

    seen = contract.check(scenario)
    assert [(o["status"], o["body"]) for o in seen] == [(404, NOT_FOUND)] * 5
