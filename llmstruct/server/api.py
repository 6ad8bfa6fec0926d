"""The v1 API endpoints of the engine on the custom server (DESIGN.md, API contract).

``add_api_routes(app, engine)`` registers, on an ``App``, the project, context, task
and query endpoints of the contract on one ``CoreEngine``; ``configure_for(root)``
is the ``serve.run(config, configure=...)`` hook that does so in each worker (the
engine is opened in the worker, after any fork: its task store holds a database).

The answers are those of the FastAPI reference (``llmstruct.migration.fastapi_app``,
whose docstring lists the contract decisions), status codes and bodies alike:
bodies and query strings are validated as FastAPI does (``api.models.validate_body``
and ``validate_query``: 422 lists, 400 for a body that is not text), and engine
exceptions map to the same statuses (``_http_error``). ``tests/server/test_api.py``
compares both servers request by request. Each ``add_route`` also declares the route's
contract (models, statuses, errors): ``openapi.py`` builds ``/openapi.json`` from it.

Struct-reading work (project info, struct.json, context building: a cold index is a
parse of struct.json) and task writes (an fsync per commit) run in the default
executor (the ContextManager and the task store serialise their own callers), except
what the engine can answer at once (``project_info_now``, ``context_json_now``: a loaded
index, a cached context), which runs inline: a thread hop costs more than the answer.
Creates are committed in groups (``task_batch.CreateBatcher``). Scans run in a worker
thread inside the engine; task reads are quick and run inline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel

from llmstruct.api import models
from llmstruct.api.errors import (
    INTERNAL_ERROR,
    INVALID_MODE,
    TASK_NOT_FOUND,
    status_and_detail,
)
from llmstruct.server.app import (
    App,
    HTTPException,
    JSONResponse,
    Request,
    Response,
    StreamingResponse,
    encoded_json,
)
from llmstruct.server.task_batch import CreateBatcher

if TYPE_CHECKING:
    from llmstruct.engine.core import CoreEngine

__all__ = ["add_api_routes", "configure_for", "NDJSON"]

log = logging.getLogger("llmstruct.server.api")

NDJSON = "application/x-ndjson"

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def configure_for(root: Path | str) -> Callable[[App], None]:
    """The ``configure`` hook of ``serve.run``: the API routes on a CoreEngine for ``root``."""

    def configure(app: App) -> None:
        from llmstruct.engine.core import CoreEngine
        from llmstruct.server.ws_api import dispatcher_of
        from llmstruct.server.ws_engine import add_engine_messages

        engine = CoreEngine(root)
        app.state["engine"] = engine
        add_api_routes(app, engine)
        messages = dispatcher_of(app)
        if messages is not None:  # the app serves /api/v1/ws: the engine's messages on it
            add_engine_messages(messages, engine)

    return configure


# -- errors and validation -------------------------------------------------------------------------
def _http_error(exc: Exception, engine: CoreEngine) -> HTTPException:
    """The contract's answer for ``exc`` (``llmstruct.api.errors``, shared with the reference)."""
    if isinstance(exc, HTTPException):
        return exc
    known = status_and_detail(exc, engine.struct_path)
    if known is None:
        log.error("engine call failed", exc_info=exc)
        return HTTPException(500, INTERNAL_ERROR)
    return HTTPException(*known)


def _unprocessable(detail: list[dict[str, Any]]) -> Exception:
    """The 422 of ``detail`` (``app.error_json`` writes what orjson cannot)."""
    return HTTPException(422, detail)


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        return models.validate_body(model, raw, request.headers.get("content-type"))
    except models.RequestValidationFailed as exc:
        raise _unprocessable(exc.detail) from None
    except models.BodyNotParsed as exc:
        raise HTTPException(400, exc.detail) from None


def _query(request: Request, model: type[M]) -> M:
    raw = bytes(request.query_string)
    # Long strings are validated afresh: the memo must stay small whatever clients send.
    validate = _validated_query if len(raw) <= MEMO_QUERY_MAX else _validated_query.__wrapped__
    try:
        return validate(model, raw)
    except models.RequestValidationFailed as exc:
        raise HTTPException(422, exc.detail) from None


MEMO_QUERY_MAX = 512  # bytes of query string; with 1,024 strings kept, under 1 MiB


@functools.lru_cache(maxsize=1024)
def _validated_query(model: type[M], query_string: bytes) -> M:
    """``model`` from a raw query string, kept per string: clients repeat their queries
    (a cached context is one by definition), and decoding and validating one took a
    fifth of a cached context's time on the loop. The handlers only read the model.
    A refused string is not kept (lru_cache keeps no exception): it raises each time."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return models.validate_query(model, pairs)


def _etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``W/`` does not matter, ``*`` matches."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def _dump(value: BaseModel | None) -> Any:
    if value is None:
        raise HTTPException(404, TASK_NOT_FOUND)
    return value.model_dump(mode="json")


# -- the routes ------------------------------------------------------------------------------------
def add_api_routes(app: App, engine: CoreEngine) -> None:
    """Register the v1 engine endpoints of the contract on ``app``, served by ``engine``."""

    async def off_loop(fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the executor; engine errors as HTTP. For struct readers (a cold
        index parses struct.json; the ContextManager serialises its callers) and task
        writes (each commits with an fsync, ``synchronous=FULL``): neither may stall
        every other request on the loop. Task reads stay inline (no fsync)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except Exception as exc:
            raise _http_error(exc, engine) from None

    def inline(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _http_error(exc, engine) from None

    # -- project -------------------------------------------------------------------------------
    # Project info and context answer at once when the engine can (``*_now``: plain
    # handlers, no task); otherwise they return a coroutine for the rest (app.py).
    def project_info(request: Request) -> Any:
        answer = inline(engine.project_info_json_now)
        if answer is None:
            return project_info_later()
        return encoded_json(answer)

    async def project_info_later() -> Any:
        return (await off_loop(engine.project_info)).model_dump(mode="json")

    async def scan(request: Request) -> Any:
        body = await _body(request, models.ScanRequest)
        if NDJSON in (request.headers.get("accept") or "").lower():
            return await _ndjson_scan(engine, body)
        try:
            response = await engine.scan(body)
        except Exception as exc:
            raise _http_error(exc, engine) from None
        return response.model_dump(mode="json")

    async def struct(request: Request) -> Response:
        data, etag = await off_loop(engine.struct_bytes)
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(b"", 304, headers={"ETag": etag})
        return Response(data, media_type="application/json", headers={"ETag": etag})

    # -- context -------------------------------------------------------------------------------
    def cached_context(*request: Any) -> Response | None:
        answer = inline(engine.context_json_now, *request)
        return None if answer is None else encoded_json(answer)

    async def built_context(*request: Any) -> Any:
        return (await off_loop(engine.context, *request)).model_dump(mode="json")

    def context_by_path(request: Request) -> Any:
        params = _query(request, models.ContextQuery)  # the query string first, as FastAPI
        mode = request.path_params["mode"]
        if mode not in models.CONTEXT_MODES:
            raise HTTPException(400, INVALID_MODE)
        wanted = (mode, params.query, params.budget, [], params.format)
        answer = cached_context(*wanted)
        return built_context(*wanted) if answer is None else answer

    async def context(request: Request) -> Any:
        body = await _body(request, models.ContextRequest)
        wanted = (body.mode, body.query, body.budget, body.include_files, body.format)
        answer = cached_context(*wanted)
        return await built_context(*wanted) if answer is None else answer

    # -- tasks ---------------------------------------------------------------------------------
    def list_tasks(request: Request) -> Any:
        params = _query(request, models.TaskListQuery)
        tasks = inline(engine.tasks.list, **dict(params))
        return [task.model_dump(mode="json") for task in tasks]

    creates = CreateBatcher(engine.tasks)

    async def create_task(request: Request) -> Any:
        body = await _body(request, models.TaskCreateRequest)
        try:
            task = await creates.create(body)
        except Exception as exc:
            raise _http_error(exc, engine) from None
        return JSONResponse(task, 201)

    def get_task(request: Request) -> Any:
        task = inline(engine.tasks.get_json, request.path_params["id"])
        if task is None:
            raise HTTPException(404, TASK_NOT_FOUND)
        return task

    async def update_task(request: Request) -> Any:
        body = await _body(request, models.TaskUpdateRequest)
        return _dump(await off_loop(engine.tasks.update, request.path_params["id"], body))

    async def delete_task(request: Request) -> Response:
        if not await off_loop(engine.tasks.delete, request.path_params["id"]):
            raise HTTPException(404, TASK_NOT_FOUND)
        return Response(b"", 204)

    # -- AI bridge -----------------------------------------------------------------------------
    async def query(request: Request) -> Any:
        body = await _body(request, models.QueryRequest)
        try:
            answer = await engine.query(body)
        except Exception as exc:
            raise _http_error(exc, engine) from None
        return answer.model_dump(mode="json")

    # Each route with its contract (app.RouteDoc): the OpenAPI document is built from it.
    project, context_, tasks = ("project",), ("context",), ("tasks",)
    app.add_route("/api/v1/project/info", project_info, summary="Project Info", tags=project,
                  response=models.ProjectInfo, errors=(409,))  # fmt: skip
    app.add_route("/api/v1/project/scan", scan, methods=("POST",), summary="Scan",
                  tags=project, body=models.ScanRequest, response=models.ScanResponse,
                  errors=(400,), responses={200: _SCAN_STREAM})  # fmt: skip
    app.add_route("/api/v1/project/struct", struct, summary="Struct", tags=project,
                  errors=(409,), responses=_STRUCT_RESPONSES)  # fmt: skip
    app.add_route("/api/v1/project/context/{mode}", context_by_path, summary="Context By Path",
                  tags=context_, query=models.ContextQuery, response=models.ContextResponse,
                  path_types={"mode": models.ContextMode}, errors=(400, 409))  # fmt: skip
    app.add_route("/api/v1/context", context, methods=("POST",), summary="Context",
                  tags=context_, body=models.ContextRequest, response=models.ContextResponse,
                  errors=(400, 409))  # fmt: skip
    app.add_route("/api/v1/tasks", list_tasks, summary="List Tasks", tags=tasks,
                  query=models.TaskListQuery, response=list[models.TaskResponse])  # fmt: skip
    app.add_route("/api/v1/tasks", create_task, methods=("POST",),
                  summary="Create Task", tags=tasks, body=models.TaskCreateRequest,
                  response=models.TaskResponse, status_code=201, errors=(400,))  # fmt: skip
    app.add_route("/api/v1/tasks/{id}", get_task, summary="Get Task", tags=tasks,
                  response=models.TaskResponse, errors=(404,))  # fmt: skip
    app.add_route("/api/v1/tasks/{id}", update_task, methods=("PATCH",),
                  summary="Update Task", tags=tasks, body=models.TaskUpdateRequest,
                  response=models.TaskResponse, errors=(400, 404))  # fmt: skip
    app.add_route("/api/v1/tasks/{id}", delete_task, methods=("DELETE",), summary="Delete Task",
                  tags=tasks, status_code=204, errors=(404,))  # fmt: skip
    app.add_route("/api/v1/query", query, methods=("POST",), summary="Query",
                  tags=("query",), body=models.QueryRequest, response=models.QueryResponse,
                  errors=(400, 409, 502, 503, 504))  # fmt: skip


# The extra OpenAPI responses of two routes (merged over the generated ones).
_SCAN_STREAM = {
    "description": "ScanResponse, or with Accept: application/x-ndjson one ScanProgress line "
    "per file, then the ScanResponse line",
    "content": {NDJSON: {"schema": {"type": "string"}}},
}
_STRUCT_RESPONSES = {
    200: {"description": "struct.json"},
    304: {"description": "Not modified (If-None-Match)"},
}


async def _ndjson_scan(engine: CoreEngine, body: models.ScanRequest) -> StreamingResponse:
    """ScanProgress lines, then the ScanResponse line; an error after the first line ends
    the stream with a ``{"detail": ...}`` line, one before it is an ordinary error answer."""
    events = engine.scan_stream(body)
    try:
        first = await anext(events)
    except Exception as exc:
        await events.aclose()
        raise _http_error(exc, engine) from None

    async def lines() -> AsyncIterator[bytes]:
        try:
            yield orjson.dumps(first.model_dump(mode="json")) + b"\n"
            async for item in events:
                yield orjson.dumps(item.model_dump(mode="json")) + b"\n"
        except Exception as exc:
            yield orjson.dumps({"detail": _http_error(exc, engine).detail}) + b"\n"
        finally:
            await events.aclose()

    return StreamingResponse(lines(), media_type=NDJSON)
