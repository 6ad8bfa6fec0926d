"""The OpenAPI document of the custom server (``llmstruct/server/openapi.py``).

It must be a valid OpenAPI 3.1 document, list exactly the routes the ``App``
registered (so a route added without its contract fails here), and describe the
same contract as the FastAPI reference's own generated document: the same paths,
methods, operation ids, parameters, request bodies, response models and status codes,
plus the error answers and the API-key security that FastAPI's leaves out. It is
served at ``/openapi.json`` over real HTTP without a key, while the API needs one.
(The server's answers are checked against the document in ``test_schemathesis.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from llmstruct.engine.core import CoreEngine
from llmstruct.server.api import add_api_routes
from llmstruct.server.app import App, JSONResponse
from llmstruct.server.limits import Limits
from llmstruct.server.openapi import ERROR_DESCRIPTIONS, OPENAPI_PATH, build_document
from llmstruct.server.system import build_app
from tests.server.helpers import ServerThread

KEY = "openapi-test-key-0123456789"
HANG = 60.0  # an upper bound on one wait, never asserted on
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    engine = CoreEngine(tmp_path_factory.mktemp("openapi"))
    app = build_app(KEY, access_log=False, websocket=False)
    add_api_routes(app, engine)
    yield app
    engine.close()


@pytest.fixture(scope="module")
def document(app: App) -> dict[str, Any]:
    return build_document(app)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The FastAPI reference app's own document, generated in-process."""
    pytest.importorskip("fastapi")
    from llmstruct.migration.fastapi_app import create_app

    return create_app(tmp_path_factory.mktemp("reference"), api_key=KEY).openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


# -- a valid OpenAPI 3.1 document ------------------------------------------------------------------
def test_document_is_valid_against_the_openapi_3_1_schema(document: dict[str, Any]) -> None:
    # The official OAS 3.1 schema (as schemathesis ships it, so nothing is fetched).
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")
    assert document["openapi"].startswith("3.1.")
    validator = jsonschema.Draft202012Validator(definitions.OPENAPI_31)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_every_schema_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    # The OAS schema leaves Schema Objects alone: check each against the dialect itself.
    schemas = list(document["components"]["schemas"].values())
    for _, _, operation in _operations(document):
        schemas += [parameter["schema"] for parameter in operation.get("parameters", [])]
        for response in [operation.get("requestBody", {}), *operation["responses"].values()]:
            schemas += [media["schema"] for media in response.get("content", {}).values()]
    assert len(schemas) > 30
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_reference_resolves_to_a_component(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    refs = set(_refs(document))
    assert refs, "the document refers to its models"
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rpartition("/")[2] in components
    # and no component is left unused
    assert {ref.rpartition("/")[2] for ref in refs} == set(components)


def test_document_declares_the_api_key_security(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["APIKeyBearer"] == {**schemes["APIKeyBearer"], "type": "http",
                                       "scheme": "bearer"}  # fmt: skip
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["security"] == [{"APIKeyBearer": []}, {"APIKeyHeader": []}]
    for path, method, operation in _operations(document):
        public = path == "/api/v1/system/health"
        assert ("security" in operation) is public, (method, path)
        assert ("401" not in operation["responses"]) is public, (method, path)
    assert document["paths"]["/api/v1/system/health"]["get"]["security"] == []


# -- exactly the routes of the App -----------------------------------------------------------------
def test_document_lists_exactly_the_routes_the_app_registered(
    app: App, document: dict[str, Any]
) -> None:
    registered = {
        (route.path, method.lower())
        for route in app.routes
        for method in route.methods
        if route.path != OPENAPI_PATH
    }
    listed = {(path, method) for path, method, _ in _operations(document)}
    assert listed == registered
    assert len(listed) == 13


def test_every_route_declares_its_contract(app: App) -> None:
    undeclared = [route.path for route in app.routes if route.doc is None or
                  (route.doc.include_in_schema and not route.doc.summary)]  # fmt: skip
    assert undeclared == []


def test_a_route_without_a_declaration_is_caught(app: App) -> None:
    bare = build_app(KEY, access_log=False, websocket=False)
    bare.add_route("/api/v1/extra", lambda request: JSONResponse({}))
    assert [route.path for route in bare.routes if route.doc is None] == ["/api/v1/extra"]
    # still listed (with what can be known), so the document never hides a route
    assert "/api/v1/extra" in build_document(bare)["paths"]


def test_the_document_itself_is_public_and_not_listed(app: App) -> None:
    (route,) = [route for route in app.routes if route.path == OPENAPI_PATH]
    assert route.public and route.doc is not None and not route.doc.include_in_schema


# -- the same contract as the FastAPI reference ----------------------------------------------------
def _signature(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per operation: what both documents must agree on."""
    result = {}
    for path, method, operation in _operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        result[(path, method)] = {
            "operationId": operation["operationId"],
            "summary": operation["summary"],
            "tags": operation.get("tags"),
            "parameters": sorted(
                (p["name"], p["in"], p["required"]) for p in operation.get("parameters", [])
            ),  # fmt: skip
            "body": body.get("schema"),
            "responses": {
                status: {
                    media: content.get("schema")
                    for media, content in response.get("content", {}).items()
                }  # fmt: skip
                for status, response in operation["responses"].items()
            },
        }
    return result


def test_operations_agree_with_the_fastapi_reference(
    document: dict[str, Any], reference: dict[str, Any]
) -> None:
    mine, theirs = _signature(document), _signature(reference)
    assert set(mine) == set(theirs)
    extra_errors = {str(status) for status in ERROR_DESCRIPTIONS}
    for key, expected in theirs.items():
        got = mine[key]
        # Every answer FastAPI documents, the same; beyond them only the contract's
        # {"detail": ...} errors, which FastAPI's document does not list.
        extra = {status: got["responses"].pop(status) for status in list(got["responses"])
                 if status not in expected["responses"]}  # fmt: skip
        assert got == expected, key
        assert set(extra) <= extra_errors, key
        for content in extra.values():
            assert content == {"application/json": {"$ref": "#/components/schemas/HTTPError"}}


def test_parameters_schemas_agree_with_the_fastapi_reference(
    document: dict[str, Any], reference: dict[str, Any]
) -> None:
    # The same pydantic field schemas; a path parameter may be narrower here (the context
    # mode is one of four: the reference takes any string and answers 400 for the rest).
    def parameters(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(path, method, p["name"]): _loose(p["schema"]) for path, method, operation
                in _operations(doc) for p in operation.get("parameters", [])}  # fmt: skip

    mine, theirs = parameters(document), parameters(reference)
    assert set(mine) == set(theirs)
    mode = ("/api/v1/project/context/{mode}", "get", "mode")
    assert mine.pop(mode) == {"enum": ["FULL", "FOCUSED", "MINIMAL", "SESSION"],
                              "type": "string", "title": "Mode"}  # fmt: skip
    theirs.pop(mode)
    assert mine == theirs


def test_model_schemas_agree_with_the_fastapi_reference(
    document: dict[str, Any], reference: dict[str, Any]
) -> None:
    mine = document["components"]["schemas"]
    theirs = reference["components"]["schemas"]
    assert set(mine) == set(theirs) | {"HTTPError"}
    for name, schema in theirs.items():
        if name != "ValidationError":  # FastAPI's own ctx schema lacks additionalProperties
            assert _loose(mine[name]) == _loose(schema), name


def _loose(value: Any) -> Any:
    """A schema without what the two generators write differently but means the same:
    FastAPI leaves out ``"default": null`` and writes numeric bounds as floats
    (9223372036854775807 becomes 9.223372036854776e18)."""
    if isinstance(value, dict):
        return {key: _loose(item) for key, item in value.items()
                if not (key == "default" and item is None)}  # fmt: skip
    if isinstance(value, list):
        return [_loose(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def test_contract_errors_are_declared_where_the_contract_answers_them(
    document: dict[str, Any],
) -> None:
    def statuses(method: str, path: str) -> set[int]:
        return {int(s) for s in document["paths"][path][method]["responses"]}

    assert statuses("post", "/api/v1/query") >= {400, 409, 422, 502, 503, 504}
    assert statuses("get", "/api/v1/tasks/{id}") >= {404}
    assert statuses("delete", "/api/v1/tasks/{id}") >= {204, 404}
    assert statuses("get", "/api/v1/project/context/{mode}") >= {400, 409, 422}
    assert statuses("get", "/api/v1/project/struct") >= {200, 304, 409}
    assert statuses("post", "/api/v1/tasks") >= {201, 422}
    assert statuses("get", "/api/v1/system/health") == {200}
    scan = document["paths"]["/api/v1/project/scan"]["post"]["responses"]["200"]["content"]
    assert set(scan) == {"application/json", "application/x-ndjson"}


# -- served over HTTP ------------------------------------------------------------------------------
def test_openapi_json_is_served_without_a_key(app: App, document: dict[str, Any]) -> None:
    server = ServerThread(app, Limits(), "h11").start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HANG) as client:
            first = client.get(OPENAPI_PATH)
            again = client.get(OPENAPI_PATH, headers={"Accept-Encoding": "gzip"})
            guarded = client.get("/api/v1/tasks")
            keyed = client.get("/api/v1/tasks", headers={"X-API-Key": KEY})
    finally:
        server.stop()
    assert first.status_code == 200, first.text
    assert re.match(r"application/json\b", first.headers["content-type"])
    assert first.json() == document
    assert again.json() == document
    assert again.headers.get("content-encoding") == "gzip"  # the document is large
    assert guarded.status_code == 401
    assert keyed.status_code == 200


def test_document_is_built_once_and_rebuilt_when_a_route_is_added() -> None:
    app = build_app(None, access_log=False, websocket=False)
    server = ServerThread(app, Limits(), "h11").start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HANG) as client:
            first = client.get(OPENAPI_PATH).content
            second = client.get(OPENAPI_PATH).content
            app.add_route("/api/v1/late", lambda request: JSONResponse({}), summary="Late")
            third = client.get(OPENAPI_PATH).json()
    finally:
        server.stop()
    assert first == second
    assert "/api/v1/late" not in first.decode() and "/api/v1/late" in third["paths"]


def test_route_declarations_are_kept_off_the_request_path(app: App) -> None:
    # What the router hands the protocol per request is the same small handler entry
    # as before: the contract lives only in app.routes.
    match = app.router.resolve("GET", "/api/v1/tasks")
    assert set(type(match.handler).__slots__) == {"fn", "is_async", "public"}


def test_a_server_without_the_api_does_not_load_the_document_builder() -> None:
    # pydantic's schema machinery is ~11 MiB of RSS: it is loaded when /openapi.json is
    # first asked for, not when a server that answers health and lookups starts.
    import subprocess
    import sys

    probe = (
        "import sys; from llmstruct.server.system import build_app; build_app(None); "
        "print(sorted(m for m in ('pydantic', 'llmstruct.server.openapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
