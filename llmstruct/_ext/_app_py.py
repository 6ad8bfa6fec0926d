"""The application side of the server: Request, Response objects and the App.

Every request is dispatched here, so this module is a hot path with two twins
of one source: this is the pure twin, and the build compiles this same file as
``_app_c`` (Cython's pure Python mode; ``_app_c.pxd`` makes the responses, the App
and its handler entries extension types, whose fields typed code reads directly;
handlers and tests still subclass and extend them). ``llmstruct.server.app`` is
the selector everything imports from.

``App`` holds the routes (``llmstruct._ext.router.Router``, one for HTTP and one
for WebSocket routes) and the middleware chain, and answers the protocol's three
questions: ``handle(request)`` (a Response, or an awaitable of one),
``handle_websocket(request)`` (the WebSocket handler to hand over to, or the
Response refusing the upgrade) and ``report_refusal(...)`` (a request the
protocol refused itself, for logs and metrics).

The middleware chain runs request in, response out, Django style: each
middleware may define ``on_request(request) -> Response | None`` (a Response
short-circuits the rest, the handler included) and ``on_response(request,
response) -> Response``; ``on_response`` runs, in reverse order, for every
middleware whose ``on_request`` ran. Both hooks are plain functions: the chain
adds no coroutine per request. Authentication is such a hook, so it runs when a
request's head is complete, before any of its body is read. A middleware whose
``on_request`` has nothing to do on a public route says so with
``skips_public_routes = True``, and public routes run without that hook.

Handlers may be ``async def`` or plain functions. A plain function runs inline,
as the head is parsed, with no task: for quick handlers that never wait and
never read a body (health, a lookup). A plain function that can answer at once
only sometimes (a cache hit) may instead return an awaitable, a coroutine, for the
rest: only that case pays for a task. (Running every ``async def`` handler's first
step inline, as Python 3.12's eager tasks do, would break code such as
``asyncio.timeout`` that needs a current task before its first wait.) A handler
returns a Response, or a dict / list that becomes a JSONResponse. Errors are JSON
``{"detail": ...}`` as in FastAPI: ``HTTPException`` for a chosen status, 500 for
anything unexpected.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any

import orjson

from llmstruct._ext.request import Headers, Request
from llmstruct._ext.router import Router
from llmstruct.server.aio import close_content, iterate_content, run_async
from llmstruct.server.http_common import ClientDisconnect, HTTPError, HTTPException

__all__ = [
    "App",
    "Headers",
    "HTTPException",
    "JSONResponse",
    "PlainTextResponse",
    "Request",
    "Response",
    "Route",
    "RouteDoc",
    "StreamingResponse",
    "encoded_json",
]

log = logging.getLogger("llmstruct.server")


# -- responses -------------------------------------------------------------------------------------
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))


def encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """A response header as bytes; refuses what could split or reframe the response."""
    raw_name = name.lower().encode("latin-1")
    raw_value = str(value).encode("latin-1")
    if _TOKEN.fullmatch(raw_name) is None or _BAD_VALUE.search(raw_value) is not None:
        raise ValueError(f"invalid response header {name!r}: {value!r}")
    if raw_name in _FRAMING:
        raise ValueError(f"{name} is set by the server (use Response.close for Connection: close)")
    return raw_name, raw_value


class Response:
    """A complete response. ``headers`` is a list of (lower-case name, value) bytes pairs."""

    __slots__ = ("status", "headers", "body", "close", "streaming")  # _app_c.pxd's fields
    media_type = None  # str | None: a subclass's default ``media_type``

    def __init__(
        self,
        content: bytes | str = b"",
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status = status_code
        self.body = content.encode() if isinstance(content, str) else bytes(content)
        self.close = False  # True: end the connection after this response
        self.streaming = False  # True: a StreamingResponse
        media = media_type or self.media_type
        self.headers: list[tuple[bytes, bytes]] = (
            [(b"content-type", _CONTENT_TYPES.get(media) or _content_type(media))] if media else []
        )
        if headers:
            for name, value in headers.items():
                self.set_header(name, value)

    def set_header(self, name: str, value: str) -> None:
        """Set ``name`` to ``value``, replacing any earlier value."""
        raw_name, raw_value = encode_header(name, value)
        self.headers = [item for item in self.headers if item[0] != raw_name]
        self.headers.append((raw_name, raw_value))

    def get_header(self, name: str) -> str | None:
        key = name.lower().encode("latin-1")
        for item_name, value in self.headers:
            if item_name == key:
                return value.decode("latin-1")
        return None


def _content_type(media: str) -> bytes:
    value = media
    if media.startswith("text/") and "charset" not in media:
        value += "; charset=utf-8"
    if len(_CONTENT_TYPES) < 64:
        _CONTENT_TYPES[media] = value.encode("latin-1")
    return value.encode("latin-1")


_CONTENT_TYPES: dict[str, bytes] = {}  # media type -> header value, for the common ones
_JSON_TYPE = (b"content-type", b"application/json")


class JSONResponse(Response):
    __slots__ = ()
    media_type = "application/json"

    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        if headers:
            super().__init__(orjson.dumps(content), status_code, headers)
        else:  # the hot path: no header to check
            self.status = status_code
            self.body = orjson.dumps(content)
            self.close = False
            self.streaming = False
            self.headers = [_JSON_TYPE]


class PlainTextResponse(Response):
    __slots__ = ()
    media_type = "text/plain"


class StreamingResponse(Response):
    """A body produced piece by piece (sync or async iterable of bytes/str), sent chunked."""

    __slots__ = ("content", "_agen")  # _app_c.pxd's fields

    def __init__(
        self,
        content: Iterable[bytes | str] | AsyncIterable[bytes | str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status_code, headers, media_type)
        self.streaming = True
        self.content = content
        self._agen: Any = None

    def iterate(self) -> AsyncIterator[bytes]:
        self._agen = iterate_content(self.content)
        return self._agen

    def close_iterator(self) -> Awaitable[None]:
        """Release the producer (finally blocks run) whether or not it was exhausted."""
        return close_content(self._agen, self.content)


def encoded_json(body: bytes, status_code: int = 200) -> JSONResponse:
    """A JSONResponse of JSON already encoded: ``Response(body, media_type=
    "application/json")`` without the constructor's arguments to sort out. For the
    answers that keep their bytes (project info, cached context, health)."""
    response = JSONResponse.__new__(JSONResponse)  # compiled: tp_new, no __init__ to parse
    response.status = status_code
    response.body = body
    response.close = False
    response.streaming = False
    response.headers = [_JSON_TYPE]
    return response


def error_json(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    try:
        return JSONResponse({"detail": detail}, status, headers)
    except TypeError:  # a 422 echoing a huge integer or a lone surrogate: see error_body
        from llmstruct.api.errors import error_body

        return Response(error_body(detail), status, headers, "application/json")


# -- the app ---------------------------------------------------------------------------------------
class _Handler:
    """A registered handler: the function, whether it is a coroutine function, and openness."""

    __slots__ = ("fn", "is_async", "public")

    def __init__(self, fn: Callable, public: bool) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.public = public


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """The contract of one route, as the OpenAPI document describes it (``openapi.py``).

    ``body`` and ``query`` are the pydantic models the handler validates its JSON body
    and its query string with; ``path_types`` the type of a path parameter that is not
    any string (e.g. a ``Literal``) by name; ``response`` is the type of a successful
    answer (a model, ``list[Model]``, a ``"module:Name"`` string naming a model the
    route's module must not import at start-up, or None for a body the document does
    not describe) sent as ``media_type`` with ``status_code``. ``errors`` are the other
    statuses the route answers with ``{"detail": ...}`` (422 is implied by a body, a
    query or a path parameter, as FastAPI implies it); ``responses`` are extra OpenAPI
    response objects by status, merged over the generated ones (another media type, a
    304). ``include_in_schema=False`` leaves the route out (the document itself).
    """

    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    body: type | None = None
    query: type | None = None
    path_types: Mapping[str, Any] = field(default_factory=dict)
    response: Any = None
    status_code: int = 200
    media_type: str | None = "application/json"
    errors: tuple[int, ...] = ()
    responses: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    include_in_schema: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """A registered HTTP route: what ``add_route`` was given. ``doc`` is None when the
    route declared no contract at all (the OpenAPI tests refuse that)."""

    path: str
    methods: tuple[str, ...]
    handler: Callable
    public: bool
    doc: RouteDoc | None


class App:
    request_class = Request  # what the protocol builds for each request head
    response_class = Response

    def __init__(self, middleware: Iterable[Any] = ()) -> None:
        self.router = Router()
        self.ws_router = Router()
        self.middleware: list[Any] = list(middleware)
        self.state: dict[str, Any] = {}
        self.routes: list[Route] = []  # as declared, in order: what the OpenAPI document lists
        self._before: list[tuple[Callable, tuple[Callable, ...]]] = []
        self._after_all: tuple[Callable, ...] = ()
        self._before_public: list[tuple[Callable, tuple[Callable, ...]]] = []
        self._refusal_hooks: list[Callable] = []
        self._build_chain()

    # -- registration ------------------------------------------------------------------------
    def add_middleware(self, middleware: Any) -> None:
        """Append ``middleware`` (innermost so far) to the chain."""
        self.middleware.append(middleware)
        self._build_chain()

    def _build_chain(self) -> None:
        # Each on_request hook is paired with the on_response hooks to run if it
        # answers: its own middleware's and those of every middleware before it,
        # innermost first. Middleware without a hook cost nothing per request.
        # Public routes get a chain of their own without the on_request hooks of
        # middleware that declare ``skips_public_routes`` (auth, the rate limit):
        # a health probe does not pay for checks that would let it pass anyway.
        afters: list[Callable] = []
        self._before = []
        self._before_public = []
        for middleware in self.middleware:
            on_response = getattr(middleware, "on_response", None)
            if on_response is not None:
                afters.append(on_response)
            on_request = getattr(middleware, "on_request", None)
            if on_request is not None:
                step = (on_request, tuple(reversed(afters)))
                self._before.append(step)
                if not getattr(middleware, "skips_public_routes", False):
                    self._before_public.append(step)
        self._after_all = tuple(reversed(afters))
        self._refusal_hooks = [m.on_refusal for m in self.middleware if hasattr(m, "on_refusal")]

    def add_route(
        self,
        path: str,
        handler: Callable,
        methods: Iterable[str] = ("GET",),
        public: bool = False,
        **doc: Any,
    ) -> None:
        """Route ``methods`` on ``path`` (e.g. ``/api/v1/tasks/{id}``) to ``handler``.

        ``public`` routes are served without an API key (health, the OpenAPI document).
        ``doc`` is the route's contract, the keywords of ``RouteDoc`` (summary, body,
        query, response, status_code, errors, ...): kept in ``self.routes`` for the
        OpenAPI document (``openapi.py``), never looked at while serving.
        """
        methods = tuple(methods)
        entry = _Handler(handler, public)
        for method in methods:
            self.router.add(method, path, entry)
        self.routes.append(Route(path, methods, handler, public, RouteDoc(**doc) if doc else None))

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), public: bool = False, **doc: Any
    ) -> Callable:
        def register(handler: Callable) -> Callable:
            self.add_route(path, handler, methods, public, **doc)
            return handler

        return register

    def websocket(self, path: str) -> Callable:
        """Register ``async def handler(ws)`` for WebSocket upgrades on ``path``."""

        def register(handler: Callable) -> Callable:
            self.ws_router.add("GET", path, _Handler(handler, False))
            return handler

        return register

    # -- the protocol's questions -------------------------------------------------------------
    def handle(self, request: Request) -> Any:
        """The response to ``request``, or an awaitable of it if its handler is async."""
        match = self.router.resolve(request.method, request.path)
        entry = match.handler
        chain = self._before
        if entry is not None:
            request.path_params = match.params
            request.route = match.template
            if entry.public:
                request.public = True
                chain = self._before_public
        unwind: tuple[Callable, ...] = ()
        try:
            for before, unwind in chain:
                response = before(request)
                if response is not None:
                    return self._finish(request, response, unwind)
            unwind = self._after_all
            if entry is None:
                response = self._no_route(match)
            elif entry.is_async:
                return self._run_async(request, entry.fn(request))
            else:
                result = entry.fn(request)
                if isinstance(result, Response):
                    response = result
                elif type(result) is _Coroutine:  # it deferred the answer
                    return self._run_async(request, result)
                else:
                    response = JSONResponse(result)
        except Exception as exc:
            response = self._error(request, exc)
        return self._finish(request, response, unwind)

    def _run_async(self, request: Request, answer: Any) -> Awaitable[Response]:
        return run_async(self, request, answer)  # a coroutine of llmstruct.server.aio

    @staticmethod
    def _as_response(result: Any) -> Response:
        return _as_response(result)

    def _finish(
        self, request: Request, response: Response, unwind: tuple[Callable, ...]
    ) -> Response:
        for hook in unwind:
            try:
                answer = hook(request, response)
                if not isinstance(answer, Response):
                    # The next hooks read a Response's fields directly (compiled):
                    # anything else, a forgotten ``return`` above all, is a 500 here.
                    raise TypeError(f"{hook!r} returned {type(answer).__name__}, not a Response")
                response = answer
            except Exception as exc:
                response = self._error(request, exc)
        return response

    def _no_route(self, match: Any) -> Response:
        if match.status == 405:
            return error_json(405, "Method Not Allowed", {"Allow": ", ".join(match.allowed)})
        return error_json(404, "Not Found")

    def _error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return error_json(exc.status_code, exc.detail, exc.headers)
        if isinstance(exc, HTTPError):  # a bad body, seen while the handler read it
            response = error_json(exc.status, exc.detail)
            response.close = True
            return response
        if isinstance(exc, ClientDisconnect):
            response = error_json(499, "Client Closed Request")  # nginx's code; never sent
            response.close = True
            return response
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_json(500, "Internal Server Error")

    def is_websocket(self, request: Request) -> bool:
        return request.method == "GET" and self.ws_router.resolve("GET", request.path).status == 200

    def handle_websocket(self, request: Request) -> Any:
        """The WebSocket handler to hand the connection to, or the Response refusing it."""
        match = self.ws_router.resolve("GET", request.path)
        request.path_params = match.params
        request.route = match.template
        request.websocket = True
        for before, unwind in self._before:
            try:
                response = before(request)
            except Exception as exc:
                response = self._error(request, exc)
            if response is not None:
                return self._finish(request, response, unwind)
        self._finish(request, Response(b"", 101), self._after_all)  # logs and counts the upgrade
        return match.handler.fn

    def on_server(self, state: Any) -> None:
        """A server now runs this app: middleware with ``on_server(state)`` gets its state."""
        for middleware in self.middleware:
            hook = getattr(middleware, "on_server", None)
            if hook is not None:
                hook(state)

    def report_refusal(self, status: int | None, detail: str, client: Any) -> None:
        """The protocol refused a request itself (400, 408, 413, 431, ...) or aborted a send."""
        for hook in self._refusal_hooks:
            try:
                hook(status, detail, client)
            except Exception:
                log.exception("refusal hook failed")


# What an ``async def`` (written in Python) returns, for an exact type check; not
# the type of a coroutine of this module, which is Cython's in the compiled twin.
_Coroutine = CoroutineType


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result)
