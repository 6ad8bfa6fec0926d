"""``python tests/migration/proxy_backend.py [serve flags]``: ``llmstruct serve`` plus test routes.

The proxy and shadow tests run this as a real process behind the proxy. Routes
added to the v1 API (all open):

* ``GET /test/slow?s=`` -- answers after ``s`` seconds (an upstream too slow for
  the proxy's read timeout);
* ``GET /test/lines?mark=PATH`` -- streams one line, then waits until the file
  PATH exists (or 30 s), then streams a line saying which came first: a client
  that reads the first line through the proxy before creating PATH proves the
  proxy passes a stream on as it comes;
* ``GET /test/broken`` -- streams one line, then fails: the server drops the
  connection in the middle of the body;
* ``POST /test/echo`` -- the request headers it got and the body's length;
* ``WS /test/ws/close?code=`` -- closes with ``code`` after the first message;
* ``WS /test/ws/record?mark=PATH`` -- echoes messages; writes the client's close
  code to PATH when the connection ends.

``PROXY_TEST_TAMPER=FIELD=JSON`` sets FIELD of every ``GET /api/v1/project/info``
answer to the JSON value: the shadow tests' deliberately introduced difference.
``PROXY_TEST_SLOW_EXTRA=S`` makes ``/test/slow`` S seconds slower on this server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson  # noqa: E402

from llmstruct.server.app import JSONResponse, PlainTextResponse, StreamingResponse  # noqa: E402
from llmstruct.server.serve import main  # noqa: E402


class Tamper:
    """Changes one field of the project info answer (innermost middleware: before gzip)."""

    def __init__(self, spec: str) -> None:
        field, _, value = spec.partition("=")
        self.field = field
        self.value = orjson.loads(value)

    def on_response(self, request, response):
        if request.route == "/api/v1/project/info" and response.status == 200:
            body = orjson.loads(response.body)
            body[self.field] = self.value
            response.body = orjson.dumps(body)
        return response


def configure(app) -> None:
    tamper = os.environ.get("PROXY_TEST_TAMPER")
    if tamper:
        app.add_middleware(Tamper(tamper))

    extra = float(os.environ.get("PROXY_TEST_SLOW_EXTRA", "0"))

    @app.route("/test/slow", public=True)
    async def slow(request):
        await asyncio.sleep(float(request.query.get("s", "1")) + extra)
        return PlainTextResponse("slow done")

    @app.route("/test/lines", public=True)
    def lines(request):
        mark = Path(request.query["mark"])

        async def produce():
            yield b'{"line": 1}\n'
            deadline = time.monotonic() + 30.0
            while not mark.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            yield b'{"line": 2, "mark_seen": %s}\n' % (b"true" if mark.exists() else b"false")

        return StreamingResponse(produce(), media_type="application/x-ndjson")

    @app.route("/test/broken", public=True)
    def broken(request):
        async def produce():
            yield b'{"line": 1}\n'
            await asyncio.sleep(0.05)
            raise RuntimeError("the test route breaks its stream")

        return StreamingResponse(produce(), media_type="application/x-ndjson")

    @app.route("/test/echo", methods=("POST",), public=True)
    async def echo(request):
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"headers": request.headers.items(), "length": size})

    @app.websocket("/test/ws/close")
    async def ws_close(ws):
        await ws.receive()
        await ws.close(int(ws.query_params.get("code", "1000")), "closed by the test route")

    @app.websocket("/test/ws/record")
    async def ws_record(ws):
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            Path(ws.query_params["mark"]).write_text(str(ws.close_code))


if __name__ == "__main__":
    sys.exit(main(configure=configure))
