"""The contract models validate exactly as FastAPI does: same accepted values, same 422s.

Every case is sent to a real FastAPI app declaring its routes with the shared models
(through Starlette's TestClient, which is enough for comparing shapes) and run through
``validate_body`` / ``validate_query``; the two answers must be equal as JSON.
"""

import json
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from llmstruct.api.models import (
    BodyNotParsed,
    ContextQuery,
    ContextRequest,
    QueryRequest,
    RequestValidationFailed,
    ScanRequest,
    TaskCreateRequest,
    TaskListQuery,
    TaskPriority,
    TaskStatus,
    TaskUpdateRequest,
    validate_body,
    validate_query,
    validation_detail,
)

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("httpx")  # Starlette's TestClient needs it
testclient = pytest.importorskip("fastapi.testclient")

BODY_ROUTES: dict[str, type[BaseModel]] = {
    "/scan": ScanRequest,
    "/context": ContextRequest,
    "/tasks": TaskCreateRequest,
    "/tasks/t1": TaskUpdateRequest,
    "/query": QueryRequest,
}


def make_app() -> Any:
    app = fastapi.FastAPI()
    Query = fastapi.Query

    @app.post("/scan")
    def scan(request: ScanRequest) -> dict:
        return request.model_dump(mode="json")

    @app.post("/context")
    def context(request: ContextRequest) -> dict:
        return request.model_dump(mode="json")

    @app.post("/tasks")
    def create(request: TaskCreateRequest) -> dict:
        return request.model_dump(mode="json")

    @app.patch("/tasks/{task_id}")
    def update(task_id: str, request: TaskUpdateRequest) -> dict:
        return request.model_dump(mode="json", exclude_unset=True)

    @app.post("/query")
    def query(request: QueryRequest) -> dict:
        return request.model_dump(mode="json")

    @app.get("/tasks")
    def list_tasks(params: Annotated[TaskListQuery, Query()]) -> dict:
        return params.model_dump(mode="json")

    # The same query declared as separate parameters, the way the design sheet
    # writes FastAPI routes: the errors must not depend on the declaration style.
    @app.get("/tasks-separate")
    def list_tasks_separate(
        status: TaskStatus | None = None,
        priority: TaskPriority | None = None,
        tag: str | None = None,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        return TaskListQuery(
            status=status, priority=priority, tag=tag, q=q, limit=limit, offset=offset
        ).model_dump(mode="json")

    @app.get("/project/context/{mode}")
    def context_by_path(mode: str, params: Annotated[ContextQuery, Query()]) -> dict:
        return params.model_dump(mode="json")

    return app


@pytest.fixture(scope="module")
def client():
    with testclient.TestClient(make_app()) as client:
        yield client


def ours_for_body(model: type[BaseModel], body: bytes, content_type: str | None):
    """(status, JSON body) that a server built on validate_body answers."""
    try:
        value = validate_body(model, body, content_type)
    except RequestValidationFailed as exc:
        return exc.status_code, {"detail": exc.detail}
    except BodyNotParsed as exc:
        return exc.status_code, {"detail": exc.detail}
    exclude_unset = model is TaskUpdateRequest
    return 200, value.model_dump(mode="json", exclude_unset=exclude_unset)


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


JSON = "application/json"
BODY_CASES: list[tuple[str, bytes, str | None]] = [
    # valid
    ("/scan", b"{}", JSON),
    ("/scan", b'{"include_patterns": ["*.py"], "deep_analysis": true}', JSON),
    ("/context", b'{"mode": "FOCUSED", "query": "parse", "budget": 0, "format": "md"}', JSON),
    ("/tasks", b'{"title": "a", "tags": ["x"], "estimated_effort": 3}', JSON),
    ("/tasks/t1", b"{}", JSON),
    ("/tasks/t1", b'{"description": null, "estimated_effort": null}', JSON),
    ("/tasks/t1", b'{"status": "in_progress", "priority": "urgent"}', JSON),
    ("/query", b'{"query": "where is main?"}', JSON),
    ("/tasks", b'{"title": "a", "unknown": 1}', JSON),
    ("/tasks", '{"title": "\u00e9t\u00e9"}'.encode("utf-16"), JSON),
    ("/tasks", b'\xef\xbb\xbf{"title": "bom"}', JSON),
    ("/tasks", b'{"title": "a", "estimated_effort": 9223372036854775807}', JSON),
    ("/tasks", b'{"title": "a", "estimated_effort": 99999999999999999999999}', JSON),
    ("/scan", b"{}", "application/json; charset=utf-8"),
    ("/scan", b"{}", "application/vnd.api+json"),
    ("/scan", b"{}", "Application/JSON"),
    # field errors
    ("/tasks", b'{"title": ""}', JSON),
    ("/tasks", b'{"title": "' + b"x" * 201 + b'"}', JSON),
    ("/tasks", b'{"title": "a", "priority": "critical"}', JSON),
    ("/tasks", b'{"title": "a", "estimated_effort": -1}', JSON),
    ("/tasks", b'{"title": "a", "estimated_effort": "two"}', JSON),
    ("/tasks", b'{"title": "a", "estimated_effort": 1.5}', JSON),
    ("/tasks", b'{"title": "a", "tags": "x"}', JSON),
    ("/tasks", b'{"title": "a", "tags": [1, null]}', JSON),
    ("/tasks", b'{"description": "no title"}', JSON),
    ("/tasks", b'{"title": 5, "priority": null}', JSON),
    ("/tasks/t1", b'{"title": null}', JSON),
    ("/tasks/t1", b'{"status": "finished", "tags": null, "priority": null}', JSON),
    ("/context", b"{}", JSON),
    ("/context", b'{"mode": "focused", "budget": -5, "format": "html"}', JSON),
    ("/query", b'{"query": ""}', JSON),
    ("/query", b'{"query": "' + b"q" * 1001 + b'", "context_mode": "ALL"}', JSON),
    ("/scan", b'{"deep_analysis": "maybe", "incremental": 2}', JSON),
    # whole-body errors
    ("/scan", b"", JSON),
    ("/tasks", b"", None),
    ("/tasks", b"null", JSON),
    ("/tasks", b"[]", JSON),
    ("/tasks", b'"title"', JSON),
    ("/tasks", b"42", JSON),
    ("/tasks", b'{"title": "a",}', JSON),
    ("/tasks", b'{"title": ', JSON),
    ("/tasks", b"not json", JSON),
    ("/tasks", b'{"title": "\xff"}', JSON),
    ("/tasks", b'{"title": "a"}', None),
    ("/tasks", b'{"title": "a"}', "text/plain"),
    ("/tasks", b"title=a", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("path", "body", "content_type"), BODY_CASES)
def test_body_validation_matches_fastapi(client, path, body, content_type) -> None:
    headers = {"content-type": content_type} if content_type else {}
    method = "PATCH" if path == "/tasks/t1" else "POST"
    theirs = client.request(method, path, content=body, headers=headers)
    status, ours = ours_for_body(BODY_ROUTES[path], body, content_type)
    assert (status, as_json(ours)) == (theirs.status_code, theirs.json())


QUERY_CASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("/tasks", []),
    ("/tasks", [("status", "done"), ("priority", "high"), ("tag", "x"), ("q", "Ab")]),
    ("/tasks", [("limit", "1000"), ("offset", "5")]),
    ("/tasks", [("limit", "1"), ("limit", "7")]),
    ("/tasks", [("limit", "0")]),
    ("/tasks", [("limit", "1001"), ("offset", "-1")]),
    ("/tasks", [("limit", "ten")]),
    ("/tasks", [("limit", "")]),
    ("/tasks", [("limit", "2.5")]),
    ("/tasks", [("status", "finished"), ("priority", "")]),
    ("/tasks", [("unknown", "1")]),
    ("/project/context/FULL", [("budget", "100"), ("format", "json"), ("query", "x")]),
    ("/project/context/FULL", [("budget", "-1"), ("format", "yaml")]),
    ("/project/context/FULL", [("budget", "lots")]),
]


@pytest.mark.parametrize(("path", "params"), QUERY_CASES)
def test_query_validation_matches_fastapi(client, path, params) -> None:
    model = TaskListQuery if path == "/tasks" else ContextQuery
    theirs = client.get(path, params=params)
    try:
        ours: Any = (200, validate_query(model, params).model_dump(mode="json"))
    except RequestValidationFailed as exc:
        ours = (422, {"detail": exc.detail})
    assert (ours[0], as_json(ours[1])) == (theirs.status_code, theirs.json())
    if path == "/tasks":
        separate = client.get("/tasks-separate", params=params)
        assert (separate.status_code, separate.json()) == (theirs.status_code, theirs.json())


def test_validation_detail_has_no_url_and_is_prefixed() -> None:
    with pytest.raises(ValidationError) as caught:
        TaskCreateRequest.model_validate({"title": ""})
    detail = validation_detail(caught.value)
    assert detail == [
        {
            "type": "string_too_short",
            "loc": ["body", "title"],
            "msg": "String should have at least 1 character",
            "input": "",
            "ctx": {"min_length": 1},
        }
    ]
    assert validation_detail(caught.value, "query")[0]["loc"] == ["query", "title"]


def test_patch_records_which_fields_were_sent() -> None:
    update = TaskUpdateRequest.model_validate({"description": None, "status": "done"})
    assert update.model_fields_set == {"description", "status"}


def test_openapi_lists_enumerations_and_keeps_patch_fields_non_nullable(client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    create = schemas["TaskCreateRequest"]["properties"]
    assert create["priority"]["enum"] == ["low", "medium", "high", "urgent"]
    assert create["priority"]["default"] == "medium"
    assert schemas["TaskCreateRequest"]["required"] == ["title"]
    update = schemas["TaskUpdateRequest"]
    assert "required" not in update
    assert update["properties"]["status"]["enum"] == ["todo", "in_progress", "done", "blocked"]
    for name in ("title", "priority", "status", "tags"):
        assert "anyOf" not in update["properties"][name]
        assert "default" not in update["properties"][name]
    assert schemas["ContextRequest"]["properties"]["mode"]["enum"] == [
        "FULL",
        "FOCUSED",
        "MINIMAL",
        "SESSION",
    ]


def test_a_number_beyond_float_range_is_a_422_not_a_server_error() -> None:
    # FastAPI itself answers 500 here (it cannot render inf in its 422 body).
    body = b'{"title": "a", "estimated_effort": 1e400}'
    with pytest.raises(RequestValidationFailed) as caught:
        validate_body(TaskCreateRequest, body, JSON)
    assert [(e["type"], e["loc"]) for e in caught.value.detail] == [
        ("finite_number", ["body", "estimated_effort"])
    ]
