"""The FastAPI side of ``bench_http.py``: the same two endpoints, idiomatic FastAPI.

No ``from __future__ import annotations`` here: FastAPI reads the handlers'
annotations at run time to wire ``Request`` and ``Depends``.
"""

import hmac
import time

from fastapi import Depends, FastAPI, HTTPException, Request


def make_app(key: str, items: dict) -> FastAPI:
    app = FastAPI()
    started = time.monotonic()
    expected = key.encode()

    async def api_key(request: Request) -> None:
        token = None
        auth = request.headers.get("authorization")
        if auth and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if token is None:
            token = request.headers.get("x-api-key")
        if token is None or not hmac.compare_digest(token.encode(), expected):
            raise HTTPException(401, "Invalid or missing API key")

    @app.get("/api/v1/system/health")
    async def health():
        return {
            "status": "ok",
            "version": "0.1.0",
            "uptime_s": round(time.monotonic() - started, 3),
        }

    @app.get("/api/v1/demo/items/{item_id}", dependencies=[Depends(api_key)])
    async def item(item_id: str):
        found = items.get(item_id)
        if found is None:
            raise HTTPException(404, "Item not found")
        return found

    return app
