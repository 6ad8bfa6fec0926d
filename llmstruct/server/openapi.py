"""The OpenAPI 3.1 document of the custom server, built from its declared routes.

Nothing here is written twice: every operation comes from an ``App.routes`` entry
(``add_route(..., summary=, body=, query=, response=, errors=, ...)``, see
``app.RouteDoc``) and every schema from pydantic's own JSON-schema generation
(``TypeAdapter.json_schemas``, refs ``#/components/schemas/{model}``), the same
generator FastAPI uses. So the document cannot list a route the server does not
have, nor a model field the server does not validate.

It follows FastAPI's conventions, so that the reference app's document
(``llmstruct.migration.fastapi_app``) and this one describe the same contract
(``tests/server/test_openapi.py`` compares them): an operation id of the summary,
the path and the method; a query model spread into one parameter per field; 422
``HTTPValidationError`` wherever a body, a query or a path parameter is validated.
It says more than FastAPI's where the contract does: the ``{"detail": ...}``
errors each route answers (400, 404, 409, 502-504), and the API-key security
(``Authorization: Bearer`` or ``X-API-Key``; a public route has ``security: []``)
with its 401 and the rate limit's 429.

``add_openapi_route(app)`` (``openapi_route``, which loads this module only at the first
request) serves the document at ``/openapi.json`` without a key.
It is built at the first request, from the routes registered by then, and kept as
bytes; a route registered later makes the next request build it again.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from llmstruct import __version__
from llmstruct.server.app import App, Route, RouteDoc
from llmstruct.server.openapi_route import OPENAPI_PATH, add_openapi_route

__all__ = ["OPENAPI_PATH", "TITLE", "add_openapi_route", "build_document"]

OPENAPI_VERSION = "3.1.0"
TITLE = "LLMStruct API"
DESCRIPTION = "Universal codebase analysis API with LLM integration"
REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"APIKeyBearer": []}, {"APIKeyHeader": []}]
SECURITY_SCHEMES = {
    "APIKeyBearer": {"type": "http", "scheme": "bearer", "description": "The API key"},
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_PATH_PARAM = re.compile(r"{([^}/]+)}")

# What each contract error means, for the document's descriptions.
ERROR_DESCRIPTIONS = {
    400: "Bad request: the engine refuses the input, or the body is not text",
    401: "Invalid or missing API key",
    404: "Not found",
    409: "No usable struct.json: run a scan first",
    429: "Rate limit exceeded",
    502: "The LLM backend answered badly",
    503: "The LLM backend is unreachable or not configured",
    504: "The LLM backend timed out",
}


# -- the error bodies (FastAPI's shapes) -----------------------------------------------------------
def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # optional, but no default to advertise (FastAPI's schema)


class ValidationError(BaseModel):
    # One item of a 422 ``detail`` list, as FastAPI documents it (no docstring: it
    # would become the schema's description, which FastAPI's has not).

    loc: list[str | int] = Field(title="Location")
    msg: str = Field(title="Message")
    type: str = Field(title="Error Type")
    input: Any = Field(default=None, title="Input", json_schema_extra=_no_default)
    ctx: dict[str, Any] = Field(default_factory=dict, title="Context")


class HTTPValidationError(BaseModel):
    detail: list[ValidationError] = Field(default_factory=list)


class HTTPError(BaseModel):
    """Every other error answer: ``{"detail": "<message>"}``."""

    detail: str


# -- building --------------------------------------------------------------------------------------
class _Schemas:
    """Collects (type, mode) pairs, then has pydantic generate them all in one pass."""

    def __init__(self) -> None:
        self._inputs: dict[tuple[Any, JsonSchemaMode], tuple[Any, JsonSchemaMode, TypeAdapter]] = {}
        self.generated: dict[tuple[Any, JsonSchemaMode], dict[str, Any]] = {}
        self.components: dict[str, Any] = {}

    def want(self, tp: Any, mode: JsonSchemaMode) -> tuple[Any, JsonSchemaMode]:
        key = (tp, mode)
        if key not in self._inputs:
            self._inputs[key] = (tp, mode, TypeAdapter(tp))
        return key

    def generate(self) -> None:
        generated, defs = TypeAdapter.json_schemas(self._inputs.values(), ref_template=REF)
        self.generated = dict(generated)
        self.components = dict(sorted(defs.get("$defs", {}).items()))

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` itself, or the component it refers to."""
        ref = schema.get("$ref")
        return self.components[ref.rpartition("/")[2]] if ref else schema


def _operation_id(route: Route, doc: RouteDoc, method: str) -> str:
    # FastAPI's generate_unique_id, with the summary standing for the function name.
    name = (doc.summary or route.handler.__name__).lower().replace(" ", "_")
    return re.sub(r"\W", "_", f"{name}{route.path}") + "_" + method.lower()


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(status: int) -> dict[str, Any]:
    description = ERROR_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
    return {"description": description, "content": _json({"$ref": REF.format(model="HTTPError")})}


def _parameters(route: Route, doc: RouteDoc, schemas: _Schemas) -> list[dict[str, Any]]:
    parameters = []
    for name in _PATH_PARAM.findall(route.path):
        schema = {"type": "string"}
        if name in doc.path_types:
            schema = dict(schemas.resolve(schemas.generated[(doc.path_types[name], "validation")]))
        schema["title"] = name.replace("_", " ").title()
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if doc.query is not None:
        model = schemas.resolve(schemas.generated[(doc.query, "validation")])
        required = set(model.get("required", ()))
        for name, schema in model.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required,
                         "schema": schema}  # fmt: skip
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    return parameters


def _responses(
    route: Route, doc: RouteDoc, method: str, schemas: _Schemas
) -> dict[str, dict[str, Any]]:
    success: dict[str, Any] = {"description": "Successful Response"}
    if doc.media_type is not None and doc.status_code not in (204, 304):
        schema: dict[str, Any] = {"type": "string"} if doc.media_type.startswith("text/") else {}
        if doc.response is not None:
            schema = dict(schemas.generated[(doc.response, "serialization")])
            if "$ref" not in schema:  # a list of models: titled as FastAPI titles it
                title = "Response_" + _operation_id(route, doc, method)
                schema["title"] = title.replace("_", " ").title()
        success["content"] = {doc.media_type: {"schema": schema}}
    responses: dict[int, dict[str, Any]] = {doc.status_code: success}
    for status in doc.errors:
        responses[status] = _error(status)
    if doc.body is not None or doc.query is not None or _PATH_PARAM.search(route.path):
        responses[422] = {
            "description": "Validation Error",
            "content": _json({"$ref": REF.format(model="HTTPValidationError")}),
        }
    if not route.public:
        responses[401] = {**_error(401), "headers": {"WWW-Authenticate": _header("Bearer")}}
        responses[429] = {**_error(429), "headers": {"Retry-After": _header("Seconds to wait")}}
    for status, extra in doc.responses.items():
        merged = {**responses.get(status, {}), **extra}
        if "content" in extra and "content" in responses.get(status, {}):
            merged["content"] = {**responses[status]["content"], **extra["content"]}
        responses[status] = merged
    return {str(status): responses[status] for status in sorted(responses)}


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _operation(route: Route, doc: RouteDoc, method: str, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    if doc.tags:
        operation["tags"] = list(doc.tags)
    operation["summary"] = doc.summary or route.handler.__name__.replace("_", " ").title()
    if doc.description:
        operation["description"] = doc.description
    operation["operationId"] = _operation_id(route, doc, method)
    parameters = _parameters(route, doc, schemas)
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {
            "content": _json(schemas.generated[(doc.body, "validation")]),
            "required": True,
        }
    operation["responses"] = _responses(route, doc, method, schemas)
    if route.public:
        operation["security"] = []
    return operation


def _named(reference: str) -> Any:
    """``"package.module:Name"``: a model named by a route that must not import it at
    start-up (pydantic is loaded only when the document is built)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _documented(routes: Iterable[Route]) -> list[tuple[Route, RouteDoc]]:
    """The routes the document lists, each with its declaration (an empty one if it
    declared nothing: it is listed all the same, and the tests refuse it)."""
    listed = []
    for route in routes:
        doc = route.doc or RouteDoc()
        if isinstance(doc.response, str):
            doc = replace(doc, response=_named(doc.response))
        if doc.include_in_schema:
            listed.append((route, doc))
    return listed


def build_document(app: App) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s HTTP routes (WebSocket routes are not HTTP
    operations: OpenAPI cannot describe them, and FastAPI leaves them out too)."""
    listed = _documented(app.routes)
    schemas = _Schemas()
    schemas.want(HTTPError, "serialization")
    schemas.want(HTTPValidationError, "serialization")
    for _, doc in listed:
        for tp, mode in ((doc.body, "validation"), (doc.query, "validation"),
                         (doc.response, "serialization")):  # fmt: skip
            if tp is not None:
                schemas.want(tp, mode)  # type: ignore[arg-type]
        for tp in doc.path_types.values():
            schemas.want(tp, "validation")
    schemas.generate()
    paths: dict[str, dict[str, Any]] = {}
    for route, doc in listed:
        for method in route.methods:
            operation = _operation(route, doc, method, schemas)
            paths.setdefault(route.path, {})[method.lower()] = operation
    # Query models are spread into parameters: keep only the components referred to.
    components = _reachable(paths, schemas.components)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "description": DESCRIPTION, "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
        "security": SECURITY,
    }


def _reachable(root: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The components ``root`` refers to, directly or through other components."""
    names: set[str] = set()
    pending = [root]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.rpartition("/")[2] not in names:
                names.add(ref.rpartition("/")[2])
                pending.append(components[ref.rpartition("/")[2]])
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return {name: schema for name, schema in components.items() if name in names}


# -- serving ---------------------------------------------------------------------------------------
