"""The FastAPI reference service (design sheet 02) on the v1 contract of DESIGN.md.

``create_app(root, bridge="inprocess" | "cli", api_key=None)`` builds the app; ``llmstruct
serve-fastapi`` runs it under uvicorn. It is the "before" of every comparison with the
custom server and the other half of every contract test, so it is written as the sheet
wrote it -- routes declared with the contract models, GZipMiddleware, an API-key
middleware, a WebSocket endpoint -- and answers exactly as the custom server must.

Two bridges behind one small interface (``Bridge``): ``InProcessBridge`` calls the
``CoreEngine`` in this process; ``CLIBridge`` runs ``python -m llmstruct engine-call
OPERATION`` in a subprocess (cwd = the root) for every engine call, the request as JSON
on stdin, the answer as JSON on stdout, as the sheet's ``CLIBridge`` did. Both go
through ``engine_call.EngineCalls``, so both answer the same bytes and the same errors.

Contract decisions (the custom server answers the same; ``{"detail": ...}`` bodies):

* Auth: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (the first of the two
  headers present decides; a non-Bearer Authorization is skipped), compared with
  ``hmac.compare_digest``; on the WebSocket also ``?api_key=``. Failure: 401
  ``{"detail": "Invalid or missing API key"}`` with ``WWW-Authenticate: Bearer``, before
  routing (so an unknown path without a key is 401, with a key 404 ``Not Found``); a
  WebSocket handshake is refused with that same 401 response. Open: the health
  endpoint and ``/openapi.json``. No docs pages (``/docs``, ``/redoc``: 404/401).
* No struct.json yet (no scan): 409 ``{"detail": "No struct.json yet: run a scan
  first"}`` from project info, struct, context (GET and POST), query and the WebSocket
  ``context_request``. A struct.json that exists but cannot be read as one: 409
  ``"struct.json is not usable: run a scan again"``.
* ``GET /api/v1/project/context/{mode}``: the query string is validated first (422),
  then the mode, case-sensitively: anything but FULL, FOCUSED, MINIMAL, SESSION is 400
  ``"Invalid context mode"``. ``POST /api/v1/context`` validates ``mode`` in the model
  (422). Engine refusals (an ``include_files`` path not in the struct, a budget over
  the engine's maximum, ...) are 400 with the engine's message.
* Scan: the body is required (an empty body is 422 ``missing`` at ``["body"]``). A bad
  ``output_path`` or glob is 400 with the engine's message. ``Accept`` containing
  ``application/x-ndjson`` streams ``ScanProgress`` lines and ends with the
  ``ScanResponse`` line; an error before the first line is an ordinary error answer,
  one after it ends the stream with a ``{"detail": ...}`` line.
* Struct: ``ETag`` is the engine's (a quoted content hash); ``If-None-Match`` is
  compared weakly (``W/`` ignored, ``*`` matches) and a match is 304 with the ETag.
  Gzipped (``minimum_size=1000``), the ETag is weak: ``W/"<hash>"`` (``WeakETagWhenEncoded``;
  why there).
* Gzip: for an ``Accept-Encoding`` that allows it (``q=0`` refuses, ``*`` allows:
  ``GzipAcceptance``), answers of 1000 bytes or more and NDJSON streams (flushed per
  line), with ``Vary: Accept-Encoding``.
* Routing: a path that matches a route but not its method is 405 ``"Method Not
  Allowed"`` with ``Allow`` listing every method of that path, sorted, HEAD included
  wherever GET is (Starlette would list only the first route's). HEAD is answered
  as GET without the body (RFC 9110 §9.3.2; FastAPI's routes refuse it). A trailing
  slash is part of the path: ``/api/v1/tasks/`` is 404, not a redirect; ``%2F`` in a
  segment is part of that segment (``EncodedSlash``).
* 422 bodies are FastAPI's, and are also written when they echo what its handler
  cannot render (an integer beyond 64 bits, ``1e400``, a lone surrogate: FastAPI
  answers 500) -- ``llmstruct.api.errors.error_body``, as the custom server.
* Tasks: create 201; delete 204 with no body; unknown id 404 ``"Task not found"``.
* Query: LLM errors answer their ``.status`` (503 unreachable, 502 bad answer, 504
  timeout) with their detail; no backend configured is 503 with the config message.
* Anything unexpected: 500 ``{"detail": "Internal Server Error"}`` (JSON, as the
  custom server; FastAPI's own default would be plain text). A CLI bridge subprocess
  that fails without a JSON error, too; one that outlives ``cli_timeout``: 504.
* WebSocket ``/api/v1/ws``: ``{"type", "data"}`` objects. ``ping`` -> ``{"type":
  "pong"}``; ``scan_request`` (data: ScanRequest, null means ``{}``) -> ``scan_progress``
  per file then ``scan_complete``, run in the background so the socket keeps
  answering; ``context_request`` (data: ContextRequest) -> ``context_result``.
  Errors are ``{"type": "error", "data": {"detail": ...}}`` and the socket stays open:
  ``"Invalid JSON"``, ``"Message must be a JSON object with a string 'type'"``,
  ``"Unknown message type: <type>"``, a validation failure as the 422 list with
  ``loc`` starting ``"data"``, engine errors with the HTTP detail above, anything
  unexpected ``"Internal server error"``.
* Metrics: Prometheus text, ``api_requests_total{method,endpoint,status}`` and
  ``api_request_duration_seconds`` by route template (the sheet's names).

No ``from __future__ import annotations``: FastAPI reads the handlers' annotations.
"""

import abc
import asyncio
import bisect
import contextlib
import hmac
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

import llmstruct
from llmstruct import __version__
from llmstruct.api import models
from llmstruct.api.errors import error_body
from llmstruct.migration.engine_call import (
    INTERNAL_ERROR,
    NO_STRUCT_DETAIL,
    CallError,
    EngineCalls,
)

__all__ = ["Bridge", "CLIBridge", "InProcessBridge", "create_app", "make_bridge"]

log = logging.getLogger("llmstruct.migration")

HEALTH_PATH = "/api/v1/system/health"
PUBLIC_PATHS = frozenset((HEALTH_PATH, "/openapi.json"))
AUTH_DETAIL = "Invalid or missing API key"
NDJSON = "application/x-ndjson"
BRIDGES = ("inprocess", "cli")
DEFAULT_CLI_TIMEOUT = 300.0  # design sheet 02's cli_timeout


# -- the bridges -----------------------------------------------------------------------------------
class Bridge(abc.ABC):
    """How the app reaches the engine. Every method raises ``CallError`` on refusal."""

    name: str

    @abc.abstractmethod
    async def call(self, operation: str, request: dict[str, Any]) -> Any:
        """The JSON answer of one ``engine_call`` operation."""

    @abc.abstractmethod
    def scan_events(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``{"type": "scan_progress" | "scan_complete", "data"}`` events of one scan."""

    @abc.abstractmethod
    async def struct(self) -> tuple[bytes, str]:
        """struct.json and its ETag."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release what the bridge holds (at application shutdown)."""


class InProcessBridge(Bridge):
    name = "inprocess"

    def __init__(self, root: Path) -> None:
        from llmstruct.engine.core import CoreEngine

        self.engine = CoreEngine(root)
        self.calls = EngineCalls(self.engine)

    async def call(self, operation: str, request: dict[str, Any]) -> Any:
        return await self.calls.call(operation, request)

    def scan_events(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self.calls.scan_events(request)

    async def struct(self) -> tuple[bytes, str]:
        return await asyncio.to_thread(self.calls.struct_bytes)

    async def aclose(self) -> None:
        self.engine.close()


class CLIBridge(Bridge):
    """Each call is ``python -m llmstruct engine-call OPERATION`` run in ``root``.

    The child gets this interpreter and this copy of llmstruct (its package directory
    leads ``PYTHONPATH``), so both bridges always run the same code.
    """

    name = "cli"
    STREAM_LINE_LIMIT = 64 * 1024 * 1024  # one ScanResponse line with every warning

    def __init__(
        self,
        root: Path,
        timeout: float = DEFAULT_CLI_TIMEOUT,
        command: Sequence[str] | None = None,
    ) -> None:
        self.root = root
        self.timeout = timeout
        self.command = list(command or (sys.executable, "-m", "llmstruct", "engine-call"))
        package_parent = str(Path(llmstruct.__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "PYTHONPATH": package_parent + (os.pathsep + path if path else ""),
        }

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.command, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.root,
            env=self.env,
            limit=self.STREAM_LINE_LIMIT,
        )  # fmt: skip

    async def call(self, operation: str, request: dict[str, Any]) -> Any:
        process = await self._spawn(operation)
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(_request_bytes(request)), self.timeout
            )
        except TimeoutError:
            raise CallError(504, f"engine-call {operation} timed out") from None
        finally:
            await _reap(process)
        try:
            answer = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            answer = None
        else:
            if process.returncode == 0:
                return answer
        raise _child_error(operation, process.returncode, answer, stderr)

    async def scan_events(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        process = await self._spawn("scan", "--stream")
        assert process.stdin and process.stdout and process.stderr
        errors = asyncio.ensure_future(process.stderr.read())  # never let stderr fill up
        try:
            process.stdin.write(_request_bytes(request))
            await process.stdin.drain()
            process.stdin.close()
            last: Any = None
            while line := await asyncio.wait_for(process.stdout.readline(), self.timeout):
                try:
                    last = orjson.loads(line)
                except orjson.JSONDecodeError:
                    last = None
                    break
                if not isinstance(last, dict) or "type" not in last:
                    break
                yield last
            code = await process.wait()
            if code != 0 or last is None or last.get("type") != "scan_complete":
                raise _child_error("scan", code, last, await errors)
        except TimeoutError:
            raise CallError(504, "engine-call scan timed out") from None
        finally:
            errors.cancel()
            await _reap(process)

    async def struct(self) -> tuple[bytes, str]:
        answer = await self.call("struct", {})
        try:
            data = await asyncio.to_thread(Path(answer["path"]).read_bytes)
        except FileNotFoundError:  # removed between the two steps
            raise CallError(409, NO_STRUCT_DETAIL) from None
        return data, answer["etag"]

    async def aclose(self) -> None:
        pass  # every child is reaped by the call that started it


def _request_bytes(request: dict[str, Any]) -> bytes:
    """The request for the child; the stdlib writes integers beyond 64 bits (a budget
    of 10**30 must reach the engine's range check, as in process), orjson cannot."""
    try:
        return orjson.dumps(request)
    except TypeError:
        return json.dumps(request).encode()


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Kill the child if it still runs (timeout, client gone) and wait for it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _child_error(operation: str, code: int | None, answer: Any, stderr: bytes) -> CallError:
    if code != 0 and isinstance(answer, dict) and {"status", "detail"} <= answer.keys():
        return CallError(answer["status"], answer["detail"])
    tail = stderr.decode(errors="replace").strip()[-2000:]
    log.error("engine-call %s failed (exit %s): %s", operation, code, tail)
    return CallError(500, INTERNAL_ERROR)


def make_bridge(kind: str, root: Path | str, cli_timeout: float = DEFAULT_CLI_TIMEOUT) -> Bridge:
    root = Path(root).resolve()
    if kind == "inprocess":
        return InProcessBridge(root)
    if kind == "cli":
        return CLIBridge(root, cli_timeout)
    raise ValueError(f"bridge must be one of {', '.join(BRIDGES)}, not {kind!r}")


# -- middleware ------------------------------------------------------------------------------------
def _header_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key":
            return value.strip()
    return None


class APIKeyMiddleware:
    """The API key check of the custom server (``_ext/_middleware_py.py``), as ASGI."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if self.key is None or kind not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"detail": AUTH_DETAIL})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        if kind == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await receive()  # websocket.connect
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": headers})  # fmt: skip
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # the server cannot send a denial response: it answers 403
            await send({"type": "websocket.close", "code": 1008})

    def _allowed(self, scope: Scope) -> bool:
        if scope["type"] == "http" and scope["path"] in PUBLIC_PATHS:
            return True
        token = _header_token(scope)
        if token is None and scope["type"] == "websocket":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            token = query["api_key"].encode() if query.get("api_key") else None
        return token is not None and hmac.compare_digest(token, self.key or b"")


class WeakETagWhenEncoded:
    """Around GZipMiddleware: a gzipped answer's ETag becomes weak (``W/"..."``).

    The contract's decision, the custom server's Gzip does the same. RFC 9110 §8.8.3:
    a strong ETag names one exact representation, and a content coding makes another
    one (§8.4), so the gzipped body may not carry the identity body's strong tag. A
    tag per coding would make caches keep two copies and miss ``If-None-Match`` with
    the other tag; one tag for both is honest only as a weak one (§8.8.1: equivalent
    content, not byte-identical), which is what nginx's gzip does (it turns a strong
    ETag weak). Starlette's GZipMiddleware (and uvicorn) leave it strong. A 304 has
    no body to encode and keeps the tag as the engine made it; ``If-None-Match``
    compares weakly, so either form matches.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def weaken(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if any(name.lower() == b"content-encoding" for name, _ in headers):
                    message["headers"] = [
                        (name, b"W/" + value)
                        if name.lower() == b"etag" and not value.startswith(b"W/")
                        else (name, value)
                        for name, value in headers
                    ]
            await send(message)

        await self.app(scope, receive, weaken)


class HeadAsGet:
    """HEAD is GET without the body (RFC 9110 §9.3.2), as on the custom server.

    FastAPI's routes refuse HEAD (405). The route sees a copy of the scope with GET;
    the route found is copied back for the metrics; the body is dropped here (uvicorn
    would drop it too) and its headers, Content-Length included, are GET's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        inner = {**scope, "method": "GET"}

        async def no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, no_body)
        finally:
            if "route" in inner:
                scope["route"] = inner["route"]


class EncodedSlash:
    """``%2F`` in a path segment is data, not a separator (RFC 3986 §2.2), as on the
    custom server, whose router splits the raw path before decoding: ``GET
    /api/v1/tasks/a%2Fb`` is the task ``a/b`` (404 "Task not found"), not the path
    ``/tasks/a/b`` (404 "Not Found") that Starlette's decoded ``path`` would route.
    Such a segment keeps ``%2F`` in ``path`` so it stays one segment; task ids never
    hold a slash, so no handler sees the difference.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if raw and b"%2f" in raw.lower():
            segments = raw.split(b"?", 1)[0].decode("ascii", "replace").split("/")
            scope["path"] = "/".join(unquote(seg).replace("/", "%2F") for seg in segments)
        await self.app(scope, receive, send)


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method of every route whose path matches, HEAD wherever GET is."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "\0"})  # no method matches: path only
        if match is Match.PARTIAL:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


# prometheus_client's default histogram buckets (seconds), as the custom server.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsMiddleware:
    """Request counts and durations by route template, rendered as Prometheus text."""

    def __init__(self, app: ASGIApp, registry: "Metrics") -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "<unmatched>")
            self.registry.record(scope["method"], route, status, time.perf_counter() - started)


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[str, list[Any]] = {}  # endpoint -> [bucket counts, sum, count]

    def record(self, method: str, endpoint: str, status: int, elapsed: float) -> None:
        key = (method, endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        series = self.durations.setdefault(endpoint, [[0] * (len(BUCKETS) + 1), 0.0, 0])
        series[0][bisect.bisect_left(BUCKETS, elapsed)] += 1
        series[1] += elapsed
        series[2] += 1

    def render(self) -> str:
        lines = ["# HELP api_requests_total Total API requests",
                 "# TYPE api_requests_total counter"]  # fmt: skip
        for (method, endpoint, status), count in sorted(self.requests.items()):
            lines.append(
                f'api_requests_total{{method="{method}",endpoint="{_label(endpoint)}",'
                f'status="{status}"}} {count}'
            )
        lines += ["# HELP api_request_duration_seconds Request duration",
                  "# TYPE api_request_duration_seconds histogram"]  # fmt: skip
        for endpoint, (counts, total, count) in sorted(self.durations.items()):
            label = _label(endpoint)
            cumulative = 0
            for bound, bucket in zip((*BUCKETS, "+Inf"), counts, strict=True):
                cumulative += bucket
                lines.append(
                    f'api_request_duration_seconds_bucket{{endpoint="{label}",le="{bound}"}} '
                    f"{cumulative}"
                )
            lines.append(f'api_request_duration_seconds_sum{{endpoint="{label}"}} {total!r}')
            lines.append(f'api_request_duration_seconds_count{{endpoint="{label}"}} {count}')
        from llmstruct.server.metrics import _rss_bytes  # the custom server's, shared

        lines += ["# HELP process_resident_memory_bytes Resident memory size in bytes",
                  "# TYPE process_resident_memory_bytes gauge",
                  f"process_resident_memory_bytes {_rss_bytes()}",
                  "# HELP process_start_time_seconds Start time of the process since the epoch",
                  "# TYPE process_start_time_seconds gauge",
                  f"process_start_time_seconds {self.started!r}"]  # fmt: skip
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class GzipAcceptance:
    """Outside GZipMiddleware: ``Accept-Encoding`` read as RFC 9110 §12.5.3 reads it,
    as on the custom server (``server.middleware._accepts_gzip``): ``gzip;q=0`` refuses
    gzip (GZipMiddleware looks for the substring and compresses) and ``*`` accepts it.
    GZipMiddleware then sees ``gzip`` or no header at all."""

    def __init__(self, app: ASGIApp) -> None:
        from llmstruct.server.middleware import _accepts_gzip

        self.app = app
        self.accepts = _accepts_gzip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            asked = [v for n, v in scope["headers"] if n == b"accept-encoding"]
            if asked:
                headers = [(n, v) for n, v in scope["headers"] if n != b"accept-encoding"]
                if self.accepts(b", ".join(asked).decode("latin-1")):
                    headers.append((b"accept-encoding", b"gzip"))
                scope["headers"] = headers  # in place: the outer layers keep one scope
        await self.app(scope, receive, send)


def _gzip_options() -> dict[str, Any]:
    # Progress lines must reach the client as they come. A GZipMiddleware that
    # sync-flushes each chunk of a stream (as the custom server's Gzip does) may
    # compress NDJSON as any text, and does, as the custom server; an older one
    # buffers a stream, so there NDJSON is left alone where it can be (Starlette >=
    # 0.47: exclude_content_types).
    import starlette.middleware.gzip

    options: dict[str, Any] = {"minimum_size": 1000}
    if "Z_SYNC_FLUSH" in inspect.getsource(starlette.middleware.gzip):
        return options
    parameters = inspect.signature(GZipMiddleware.__init__).parameters
    if "exclude_content_types" in parameters:
        default = parameters["exclude_content_types"].default
        options["exclude_content_types"] = (*default, NDJSON)
    return options


# -- the app ---------------------------------------------------------------------------------------
def create_app(
    root: Path | str,
    bridge: str = "inprocess",
    api_key: str | None = None,
    *,
    cors_origins: Sequence[str] = (),
    cli_timeout: float = DEFAULT_CLI_TIMEOUT,
) -> FastAPI:
    """The FastAPI service on the project at ``root``; ``api_key=None`` means no auth."""
    engine = make_bridge(bridge, root, cli_timeout)
    metrics = Metrics()
    started = time.monotonic()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.aclose()

    app = FastAPI(
        title="LLMStruct API",
        version=__version__,
        description="Universal codebase analysis API with LLM integration",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.bridge = engine
    app.add_middleware(EncodedSlash)
    app.add_middleware(HeadAsGet)
    app.add_middleware(GZipMiddleware, **_gzip_options())
    app.add_middleware(WeakETagWhenEncoded)
    app.add_middleware(GzipAcceptance)
    app.add_middleware(APIKeyMiddleware, key=api_key)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["*"], allow_headers=["*"])  # fmt: skip
    app.add_middleware(MetricsMiddleware, registry=metrics)

    @app.exception_handler(CallError)
    async def call_error(request: Request, exc: CallError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": INTERNAL_ERROR}, 500)

    @app.exception_handler(RequestValidationError)
    async def unprocessable(request: Request, exc: RequestValidationError) -> Response:
        detail = jsonable_encoder(exc.errors())  # what FastAPI's own handler answers
        return Response(error_body(detail), 422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(app, request.scope)}
        return await http_exception_handler(request, exc)

    # -- system --------------------------------------------------------------------------------
    @app.get(HEALTH_PATH, response_model=models.HealthResponse, tags=["system"])
    async def health() -> Any:
        return {"status": "ok", "version": __version__,
                "uptime_s": round(time.monotonic() - started, 3)}  # fmt: skip

    @app.get("/api/v1/system/metrics", response_class=PlainTextResponse, tags=["system"])
    async def metrics_text() -> Any:
        return PlainTextResponse(metrics.render(), media_type=METRICS_TYPE)

    # -- project -------------------------------------------------------------------------------
    @app.get("/api/v1/project/info", response_model=models.ProjectInfo, tags=["project"])
    async def project_info() -> Any:
        return await engine.call("project_info", {})

    @app.post(
        "/api/v1/project/scan",
        response_model=models.ScanResponse,
        tags=["project"],
        responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}},
                         "description": "ScanResponse, or with Accept: application/x-ndjson "
                         "one ScanProgress line per file, then the ScanResponse line"}},
    )  # fmt: skip
    async def scan(body: models.ScanRequest, request: Request) -> Any:
        payload = body.model_dump(mode="json")
        if NDJSON in request.headers.get("accept", "").lower():
            return await _ndjson_scan(engine, payload)
        return await engine.call("scan", payload)

    @app.get(
        "/api/v1/project/struct",
        tags=["project"],
        responses={200: {"content": {"application/json": {}}, "description": "struct.json"},
                   304: {"description": "Not modified (If-None-Match)"}},
    )  # fmt: skip
    async def struct(request: Request) -> Response:
        data, etag = await engine.struct()
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(data, media_type="application/json", headers={"ETag": etag})

    # -- context -------------------------------------------------------------------------------
    @app.get(
        "/api/v1/project/context/{mode}", response_model=models.ContextResponse, tags=["context"]
    )
    async def context_by_path(mode: str, params: Annotated[models.ContextQuery, Query()]) -> Any:
        if mode not in models.CONTEXT_MODES:
            raise HTTPException(400, "Invalid context mode")
        return await engine.call("context", {"mode": mode, **params.model_dump(mode="json")})

    @app.post("/api/v1/context", response_model=models.ContextResponse, tags=["context"])
    async def context(body: models.ContextRequest) -> Any:
        return await engine.call("context", body.model_dump(mode="json"))

    # -- tasks ---------------------------------------------------------------------------------
    @app.get("/api/v1/tasks", response_model=list[models.TaskResponse], tags=["tasks"])
    async def list_tasks(params: Annotated[models.TaskListQuery, Query()]) -> Any:
        return await engine.call("task_list", params.model_dump(mode="json"))

    @app.post("/api/v1/tasks", response_model=models.TaskResponse, status_code=201, tags=["tasks"])
    async def create_task(body: models.TaskCreateRequest) -> Any:
        return await engine.call("task_create", body.model_dump(mode="json"))

    @app.get("/api/v1/tasks/{id}", response_model=models.TaskResponse, tags=["tasks"])
    async def get_task(id: str) -> Any:
        return await engine.call("task_get", {"id": id})

    @app.patch("/api/v1/tasks/{id}", response_model=models.TaskResponse, tags=["tasks"])
    async def update_task(id: str, body: models.TaskUpdateRequest) -> Any:
        changes = body.model_dump(mode="json", exclude_unset=True)
        return await engine.call("task_update", {"id": id, "changes": changes})

    @app.delete("/api/v1/tasks/{id}", status_code=204, tags=["tasks"])
    async def delete_task(id: str) -> Response:
        await engine.call("task_delete", {"id": id})
        return Response(status_code=204)

    # -- AI bridge -----------------------------------------------------------------------------
    @app.post("/api/v1/query", response_model=models.QueryResponse, tags=["query"])
    async def query(body: models.QueryRequest) -> Any:
        return await engine.call("query", body.model_dump(mode="json"))

    # -- WebSocket -----------------------------------------------------------------------------
    @app.websocket("/api/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        await _WSSession(ws, engine).run()

    return app


def _etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``W/`` does not matter, ``*`` matches."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


async def _ndjson_scan(engine: Bridge, payload: dict[str, Any]) -> StreamingResponse:
    events = engine.scan_events(payload)
    first = await anext(events)  # an error before any line is an ordinary error answer

    async def lines() -> AsyncIterator[bytes]:
        try:
            yield orjson.dumps(first["data"]) + b"\n"
            async for event in events:
                yield orjson.dumps(event["data"]) + b"\n"
        except CallError as exc:
            yield orjson.dumps({"detail": exc.detail}) + b"\n"
        finally:
            await events.aclose()

    return StreamingResponse(lines(), media_type=NDJSON)


class _WSSession:
    """One ``/api/v1/ws`` connection: the message protocol of DESIGN.md."""

    def __init__(self, ws: WebSocket, engine: Bridge) -> None:
        self.ws = ws
        self.engine = engine
        self._send_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                await self._dispatch(raw if raw is not None else message.get("bytes") or b"")
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._background:
                task.cancel()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def error(self, detail: Any) -> None:
        await self.send({"type": "error", "data": {"detail": detail}})

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("Invalid JSON")
            return
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            await self.error("Message must be a JSON object with a string 'type'")
            return
        data = payload.get("data")
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "scan_request":
            task = asyncio.ensure_future(self._guarded(self._scan(data)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif kind == "context_request":
            await self._guarded(self._context(data))
        else:
            await self.error(f"Unknown message type: {kind}")

    async def _guarded(self, work: Any) -> None:
        try:
            try:
                await work
            except CallError as exc:
                await self.error(exc.detail)
            except (WebSocketDisconnect, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("WebSocket message handler failed")
                await self.error("Internal server error")
        except (WebSocketDisconnect, RuntimeError):
            pass  # the connection is gone; the receive loop sees it too

    async def _scan(self, data: Any) -> None:
        request = _validated(models.ScanRequest, {} if data is None else data)
        events = self.engine.scan_events(request)
        try:
            async for event in events:
                await self.send(event)
        finally:
            await events.aclose()

    async def _context(self, data: Any) -> None:
        request = _validated(models.ContextRequest, data)
        answer = await self.engine.call("context", request)
        await self.send({"type": "context_result", "data": answer})


def _validated(model: type[Any], data: Any) -> dict[str, Any]:
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise CallError(422, models.validation_detail(exc, "data")) from None
