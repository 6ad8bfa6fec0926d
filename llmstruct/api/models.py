"""The v1 request/response models, and FastAPI's validation behaviour without FastAPI.

The models are the contract of ``design_sheet_02`` in pydantic v2. The custom server
and the FastAPI reference app both declare their routes with them, so the OpenAPI
documents and the accepted inputs are the same by construction.

422 bodies must match too, and FastAPI's are not just ``ValidationError.errors()``:
it validates the parsed JSON in Python mode with ``from_attributes=True``, drops the
``url`` of every error, prefixes ``loc`` with where the value came from (``"body"``,
``"query"``), reports an empty body as one ``missing`` error at ``["body"]``, invalid
JSON as ``json_invalid`` at ``["body", <offset>]`` with the stdlib parser's offset and
message, and hands a body whose content type is not JSON to the model as raw bytes.
``validate_body`` and ``validate_query`` repeat exactly that, and
``tests/api/test_models.py`` compares them with a real FastAPI app on every case, so
a FastAPI upgrade that changes the shape fails there rather than in production.
One deliberate difference: a number too large for a float (``1e400``) is a 422 here,
where FastAPI fails with a 500 while rendering ``inf`` into its 422 body.

Choices that show in the contract:
- Enumerations are ``Literal`` so OpenAPI lists their values; unknown keys are
  ignored, as FastAPI's default models do.
- ``TaskUpdateRequest`` is a PATCH: every field is optional, and ``model_fields_set``
  tells the store which ones the client sent. Fields that cannot be null in a task
  (title, priority, status, tags) default to None without allowing it, so omitting
  them is fine while an explicit ``null`` is an ordinary 422 type error.
"""

from __future__ import annotations

import email.message
import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError

ContextMode = Literal["FULL", "FOCUSED", "MINIMAL", "SESSION"]
ContextFormat = Literal["md", "json", "xml"]
TaskStatus = Literal["todo", "in_progress", "done", "blocked"]
TaskPriority = Literal["low", "medium", "high", "urgent"]

CONTEXT_MODES: tuple[str, ...] = get_args(ContextMode)
TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
TASK_PRIORITIES: tuple[str, ...] = get_args(TaskPriority)

TITLE_MAX = 200
QUERY_MAX = 1000
LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 1000
# The task store keeps estimated_effort in an SQLite INTEGER (signed 64-bit); a
# larger number must be a 422 here rather than an overflow in the store.
EFFORT_MAX = 2**63 - 1


def _omittable(**constraints: Any) -> Any:
    """A PATCH field that may be left out but not sent as null.

    Its default None only marks "not sent": pydantic does not validate defaults, so an
    absent field passes, while an explicit null fails the field's type like any other
    wrong value. The schema must not advertise that default, hence the pop.
    """
    return Field(default=None, json_schema_extra=_drop_default, **constraints)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# -- project and scan ------------------------------------------------------------


class ScanRequest(BaseModel):
    output_path: str | None = None
    include_patterns: list[str] = Field(default_factory=list)
    exclude_patterns: list[str] = Field(default_factory=list)
    deep_analysis: bool = False
    incremental: bool = True


class ScanProgress(BaseModel):
    """One NDJSON line (or WebSocket ``scan_progress`` message) per file scanned."""

    current: int
    total: int
    file: str
    error: str | None = None
    cached: bool = False


class ScanResponse(BaseModel):
    status: str
    scan_id: str
    timestamp: datetime
    files_processed: int
    output_path: str | None
    summary: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)


class ProjectInfo(BaseModel):
    name: str
    version: str
    description: str | None
    author: str | None
    created_at: datetime
    last_updated: datetime
    file_count: int
    total_lines: int
    languages: list[str]


class HealthResponse(BaseModel):
    status: str
    version: str
    uptime_s: float


# -- context ---------------------------------------------------------------------


class ContextRequest(BaseModel):
    mode: ContextMode
    include_files: list[str] = Field(default_factory=list)
    query: str | None = None
    budget: int | None = Field(default=None, ge=0)
    format: ContextFormat | None = None


class ContextQuery(BaseModel):
    """Query string of ``GET /api/v1/project/context/{mode}``."""

    query: str | None = None
    budget: int | None = Field(default=None, ge=0)
    format: ContextFormat | None = None


class ContextResponse(BaseModel):
    mode: ContextMode
    token_count: int
    file_count: int
    context_data: dict[str, Any]
    optimization_suggestions: list[str] = Field(default_factory=list)
    budget: int | None = None
    truncated: bool = False


# -- tasks -----------------------------------------------------------------------


class TaskCreateRequest(BaseModel):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str | None = None
    priority: TaskPriority = "medium"
    tags: list[str] = Field(default_factory=list)
    estimated_effort: int | None = Field(default=None, ge=0, le=EFFORT_MAX, description="hours")


class TaskUpdateRequest(BaseModel):
    """Partial update: only the fields sent change.

    ``title``, ``priority``, ``status`` and ``tags`` cannot be null; ``description``
    and ``estimated_effort`` are cleared by sending null.
    """

    title: str = _omittable(min_length=1, max_length=TITLE_MAX)
    description: str | None = None
    priority: TaskPriority = _omittable()
    status: TaskStatus = _omittable()
    tags: list[str] = _omittable()
    estimated_effort: int | None = Field(default=None, ge=0, le=EFFORT_MAX, description="hours")


class TaskListQuery(BaseModel):
    """Query string of ``GET /api/v1/tasks``."""

    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    tag: str | None = None
    q: str | None = None
    limit: int = Field(default=LIST_LIMIT_DEFAULT, ge=1, le=LIST_LIMIT_MAX)
    offset: int = Field(default=0, ge=0)


class TaskResponse(BaseModel):
    id: str
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    created_at: datetime
    updated_at: datetime
    tags: list[str]
    estimated_effort: int | None


# -- AI bridge -------------------------------------------------------------------


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=QUERY_MAX)
    context_mode: ContextMode = "FOCUSED"
    include_files: list[str] = Field(default_factory=list)
    llm_model: str | None = None


class QueryResponse(BaseModel):
    query: str
    response: str
    context_used: dict[str, Any]
    processing_time: float
    token_usage: dict[str, int]


# -- FastAPI's validation behaviour ------------------------------------------------

M = TypeVar("M", bound=BaseModel)


class RequestValidationFailed(Exception):
    """Answer 422 with ``{"detail": self.detail}``, as FastAPI does."""

    status_code = 422

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail


class BodyNotParsed(Exception):
    """Answer 400: the body is not text at all (FastAPI's wording below)."""

    status_code = 400
    detail = "There was an error parsing the body"


def validation_detail(exc: ValidationError, location: str = "body") -> list[dict[str, Any]]:
    """The ``detail`` list FastAPI answers for ``exc`` raised on a value from ``location``.

    ``location`` is ``"body"`` for a request body model and ``"query"``, ``"path"`` or
    ``"header"`` for parameters; FastAPI omits the ``url`` pydantic adds by default.
    """
    return [
        _jsonable({**error, "loc": (location, *error["loc"])})
        for error in exc.errors(include_url=False)
    ]


def validate_body(model: type[M], body: bytes, content_type: str | None) -> M:
    """Parse and validate a request body exactly as FastAPI does for a body ``model``.

    Raises ``RequestValidationFailed`` (422) or ``BodyNotParsed`` (400).
    """
    if not body:
        raise RequestValidationFailed([_missing(("body",))])
    value: Any = body
    if _is_json(content_type):
        value = _parse_json(body)
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationFailed(validation_detail(exc, "body")) from None


def validate_query(model: type[M], params: Mapping[str, str] | Iterable[tuple[str, str]]) -> M:
    """Validate query parameters against ``model`` as FastAPI does for a query model.

    ``params`` are the decoded pairs in order, as Starlette makes them with
    ``urllib.parse.parse_qsl(query_string, keep_blank_values=True)``. A repeated
    scalar parameter keeps its last value; a list field collects every value.
    Raises ``RequestValidationFailed``.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    lists = _list_fields(model)
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in lists:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    try:
        return model.model_validate(values, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationFailed(validation_detail(exc, "query")) from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False  # FastAPI's default strict_content_type: no header, no JSON
    if content_type == "application/json":
        return True  # the common case, without the header parser
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _parse_json(body: bytes) -> Any:
    # The stdlib parser, as Starlette's ``Request.json()``: it decides what is a value
    # (it accepts NaN, a BOM, UTF-16; it keeps integers beyond 64 bits exact, where
    # orjson turns them into floats) and the error offset and message FastAPI reports.
    # Request bodies of this API are small, so the faster parser would buy nothing.
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationFailed(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", exc.pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except ValueError:  # not UTF-8/16/32 text: Starlette fails before JSON
        raise BodyNotParsed() from None


def _missing(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": None}


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of a query model that collect every value of a repeated parameter
    (once per model: the annotation test costs more than the rest of a validation)."""
    return frozenset(
        name for name, field in model.model_fields.items() if _is_list(field.annotation)
    )


def _is_list(annotation: Any) -> bool:
    # list[str] and list[str] | None alike, as FastAPI's field_annotation_is_sequence
    if annotation is list or get_origin(annotation) is list:
        return True
    return get_origin(annotation) in (Union, UnionType) and any(
        _is_list(arg) for arg in get_args(annotation)
    )


def _jsonable(value: Any) -> Any:
    # What fastapi.encoders.jsonable_encoder makes of the values an error can hold.
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, BaseException):
        return {}  # jsonable_encoder falls back to vars(), empty for exceptions
    return value
