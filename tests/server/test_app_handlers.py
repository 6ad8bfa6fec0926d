"""Handler kinds on a real server, over both parser drivers: a plain function that
answers at once or defers to a coroutine, and errors raised in the deferred part."""

from __future__ import annotations

import asyncio
import http.client
import json

import pytest

from llmstruct.server.app import App, HTTPException


def make_app() -> App:
    app = App([])

    async def later(request) -> dict:
        async with asyncio.timeout(5):  # needs a current task: the deferred part has one
            await asyncio.sleep(0)
        if request.query.get("fail") == "404":
            raise HTTPException(404, "nothing here")
        if request.query.get("fail") == "crash":
            raise RuntimeError("boom")
        return {"answered": "later", "task": asyncio.current_task() is not None}

    @app.route("/answer")
    def answer(request):
        if request.query.get("now"):
            return {"answered": "now"}
        return later(request)

    return app


def get(port: int, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/answer?now=1", 200, {"answered": "now"}),
        ("/answer", 200, {"answered": "later", "task": True}),
        ("/answer?fail=404", 404, {"detail": "nothing here"}),
        ("/answer?fail=crash", 500, {"detail": "Internal Server Error"}),
    ],
)
def test_a_plain_handler_answers_now_or_defers_to_a_coroutine(serve, path, status, body):
    server = serve(make_app())
    assert get(server.port, path) == (status, body)
    assert get(server.port, "/answer?now=1") == (200, {"answered": "now"})  # still serving


class Recorder:
    """Middleware that notes the paths its hooks saw; may skip public routes."""

    def __init__(self, skips_public_routes: bool) -> None:
        self.skips_public_routes = skips_public_routes
        self.requests: list[str] = []
        self.responses: list[str] = []

    def on_request(self, request) -> None:
        self.requests.append(request.path)

    def on_response(self, request, response):
        self.responses.append(request.path)
        return response


def test_middleware_that_skips_public_routes_sees_only_the_others(serve):
    skipping, seeing = Recorder(True), Recorder(False)
    app = App([seeing, skipping])
    app.add_route("/open", lambda request: {"open": True}, public=True)
    app.add_route("/closed", lambda request: {"open": False})
    server = serve(app)
    for path in ("/open", "/closed", "/missing"):
        get(server.port, path)
    assert seeing.requests == seeing.responses == ["/open", "/closed", "/missing"]
    assert skipping.requests == ["/closed", "/missing"]  # an unknown path is no public route
    assert skipping.responses == ["/open", "/closed", "/missing"]  # on_response: every answer


def test_a_response_hook_that_forgets_to_return_is_a_500_and_the_server_goes_on(serve):
    from llmstruct.server.middleware import RequestId

    class Forgetful:  # appends a header and forgets ``return response``
        def on_response(self, request, response):
            response.headers.append((b"x-forgetful", b"1"))

    # RequestId, outermost, reads the response its inner hook gave back: the compiled
    # twin reads its fields directly, so a None must be stopped before it gets there.
    server = serve(make_app_with([RequestId(), Forgetful()]))
    assert get(server.port, "/answer?now=1") == (500, {"detail": "Internal Server Error"})
    assert get(server.port, "/answer?now=1") == (500, {"detail": "Internal Server Error"})


def make_app_with(middleware: list) -> App:
    app = make_app()
    for hook in middleware:
        app.add_middleware(hook)
    return app
