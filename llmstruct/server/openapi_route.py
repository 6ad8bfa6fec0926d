"""``/openapi.json`` on an App, without loading the document builder until asked.

The builder (``llmstruct.server.openapi``) needs pydantic's JSON-schema machinery,
about 11 MiB of resident memory: a server that only answers health and lookups
must not carry it. The document is built at its first request and kept as bytes,
rebuilt only if routes were added since.
"""

from __future__ import annotations

from typing import Any

from llmstruct.server.app import App, Request, Response

__all__ = ["OPENAPI_PATH", "add_openapi_route"]

OPENAPI_PATH = "/openapi.json"


def add_openapi_route(app: App, path: str = OPENAPI_PATH) -> None:
    """Serve ``app``'s document at ``path``, open to all (as FastAPI's ``/openapi.json``)."""
    cached: list[Any] = [-1, b""]  # [number of routes it was built from, the JSON bytes]

    def openapi(request: Request) -> Response:
        if cached[0] != len(app.routes):
            import orjson

            from llmstruct.server.openapi import build_document

            cached[1] = orjson.dumps(build_document(app))
            cached[0] = len(app.routes)
        return Response(cached[1], media_type="application/json")

    app.add_route(path, openapi, public=True, include_in_schema=False)
