"""Shadow compare: mirror requests to the custom server and diff its answers with legacy's.

In ``--mode shadow`` the client is answered by legacy alone. Once legacy's answer
is complete, a job (the request, legacy's status, headers and body) goes on a
bounded queue; a dispatcher sends jobs to custom in queue order, up to
``WORKERS`` at a time, then compares. The client never waits for custom: a full
queue drops the job and counts it (``dropped``), as a mirror must never hold back
the traffic it copies.

Writes. ``--shadow-writes`` (the default) mirrors POST/PUT/PATCH/DELETE too: the
custom side has its own task database, and a shadow that only saw reads would
compare a store that never changes with one that does. A write is a barrier:
it is sent once the jobs before it are done, and the jobs after it wait for it,
so a mirrored GET of a task never overtakes the POST that made it. Each store
makes its own ids (task ids are UUIDs): when a mirrored write's two answers
carry different ``id``s, the pair is remembered (``ID_MAP_SIZE``, oldest
forgotten first) and later mirrored paths have legacy's id replaced by custom's.
A dropped write shows up as later differences on that resource, which is why
drops are counted.
``--no-shadow-writes`` mirrors only GET/HEAD/OPTIONS (``skipped_writes``).

What is compared (``compare``): the status; the content type; whether an ETag is
present (its value is the struct's hash, which may legitimately differ);
JSON bodies field by field (NDJSON bodies line by line), skipping any object key
named in ``ignored`` wherever it occurs (a dotted name, ``metadata.version``,
only where the path ends so) -- by default the volatile fields of the contract
(``DEFAULT_IGNORED``). Other bodies (Prometheus text) are not compared:
they describe each process. Each endpoint -- method and route template from the
contract's route table, resolved with ``llmstruct._ext.router`` -- keeps its
counts and the first ``SAMPLES`` differences (field path and both values).

Contract checks on the same jobs: request bodies and both answers are validated
against the custom server's ``/openapi.json`` (fetched in the background before the
first job is mirrored; retried while missing) with ``jsonschema``; custom answers
slower than the endpoint's SLA (``--sla-ms 'GET /api/v1/project/info=200'``, else
``--sla-default-ms``) count as SLA violations. Comparison and validation run in
one worker thread, off the event loop that serves clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from llmstruct._ext.router import Router
from llmstruct.migration.proxy_stats import CUSTOM
from llmstruct.migration.upstream import UpstreamError

if TYPE_CHECKING:
    from llmstruct.migration.proxy import ProxySettings
    from llmstruct.migration.proxy_stats import ProxyStats
    from llmstruct.migration.upstream import UpstreamPool
    from llmstruct.server.app import Request

__all__ = [
    "DEFAULT_IGNORED",
    "EndpointMap",
    "Shadow",
    "compare",
    "diff_json",
    "parse_sla",
]

log = logging.getLogger("llmstruct.proxy.shadow")

DEFAULT_IGNORED = (
    "timestamp", "scan_id", "created_at", "updated_at", "last_updated", "id",
    "processing_time", "uptime_s",
    # struct.json v2.1: each scan gets a new artifact id, and its metadata "version"
    # is the scan's time. Dotted: only there ("version" elsewhere is a real field).
    "metadata.artifact_id", "metadata.version",
)  # fmt: skip
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
WORKERS = 4
ID_MAP_SIZE = 10_000
SAMPLES = 5  # differences kept per endpoint
MAX_FIELDS = 20  # differing fields reported per response
BODY_LIMIT = 8 * 1024 * 1024  # bodies larger than this are not compared
SCHEMA_RETRY = 30.0  # seconds between attempts to fetch /openapi.json
# The v1 contract (DESIGN.md); the OpenAPI document's paths replace it once fetched.
CONTRACT_ROUTES = (
    ("GET", "/api/v1/system/health"), ("GET", "/api/v1/system/metrics"),
    ("GET", "/api/v1/project/info"), ("POST", "/api/v1/project/scan"),
    ("GET", "/api/v1/project/struct"), ("GET", "/api/v1/project/context/{mode}"),
    ("POST", "/api/v1/context"), ("GET", "/api/v1/tasks"), ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{id}"), ("PATCH", "/api/v1/tasks/{id}"),
    ("DELETE", "/api/v1/tasks/{id}"), ("POST", "/api/v1/query"), ("GET", "/openapi.json"),
)  # fmt: skip


def parse_sla(items: Iterable[str]) -> dict[str, float]:
    """``["GET /api/v1/project/info=200", ...]`` -> ``{"GET /api/v1/project/info": 200.0}``."""
    table: dict[str, float] = {}
    for item in items:
        endpoint, sep, value = item.rpartition("=")
        method, _, path = endpoint.strip().partition(" ")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not sep or not method or not path.strip().startswith("/") or not ms > 0:
            raise ValueError(f"{item!r}: expected 'METHOD /path/template=MILLISECONDS'")
        table[f"{method.upper()} {path.strip()}"] = ms
    return table


# -- endpoints -------------------------------------------------------------------------------------
class EndpointMap:
    """Request method and path -> ``"METHOD /route/{template}"`` (bounded label cardinality)."""

    def __init__(self, routes: Iterable[tuple[str, str]] = CONTRACT_ROUTES) -> None:
        self.router = Router()
        for method, template in routes:
            with contextlib.suppress(ValueError):  # a duplicate, or a template it cannot take
                self.router.add(method, template, template)

    @classmethod
    def from_openapi(cls, spec: dict[str, Any]) -> EndpointMap:
        methods = ("get", "put", "post", "delete", "patch", "head", "options")
        routes = [
            (method.upper(), path)
            for path, item in (spec.get("paths") or {}).items()
            if isinstance(item, dict)
            for method in item
            if method in methods
        ]
        return cls(routes or CONTRACT_ROUTES)

    def endpoint(self, method: str, path: str) -> str:
        match = self.router.resolve(method, path)
        template = match.template if match.status == 200 else "(other)"
        return f"{method} {template}"


# -- comparison ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes | None  # decoded (no Content-Encoding); None: too large to compare

    @classmethod
    def of(cls, status: int, headers: list[tuple[bytes, bytes]], body: bytes | None) -> Answer:
        table = {name: value for name, value in headers}
        if body is not None:
            encoding = table.get(b"content-encoding", b"").lower()
            try:
                if encoding == b"gzip":
                    body = gzip.decompress(body)
                elif encoding == b"deflate":
                    body = zlib.decompress(body)
            except (OSError, zlib.error, EOFError):
                body = None
        return cls(status, table, body)

    @property
    def media_type(self) -> str:
        value = self.headers.get(b"content-type", b"").decode("latin-1")
        return value.split(";")[0].strip().lower()

    def json(self) -> tuple[bool, Any]:
        """(True, parsed) for a JSON or NDJSON body; (False, None) otherwise."""
        if self.body is None:
            return False, None
        media = self.media_type
        try:
            if media == "application/x-ndjson":
                return True, [orjson.loads(line) for line in self.body.splitlines() if line]
            if media == "application/json" or media.endswith("+json"):
                return True, orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return False, None
        return False, None


def _content_type(answer: Answer) -> str:
    return answer.headers.get(b"content-type", b"").decode("latin-1").replace(" ", "").lower()


def compare(legacy: Answer, custom: Answer, ignored: frozenset[str]) -> list[tuple[str, Any, Any]]:
    """The differences that matter between two answers: ``(field, legacy, custom)``."""
    found: list[tuple[str, Any, Any]] = []
    if legacy.status != custom.status:
        found.append(("status", legacy.status, custom.status))
    if _content_type(legacy) != _content_type(custom):
        found.append(("header.content-type", _content_type(legacy), _content_type(custom)))
    if (b"etag" in legacy.headers) != (b"etag" in custom.headers):
        found.append(("header.etag", b"etag" in legacy.headers, b"etag" in custom.headers))
    is_json_l, body_l = legacy.json()
    is_json_c, body_c = custom.json()
    if is_json_l and is_json_c:
        for item in diff_json(body_l, body_c, ignored):
            found.append(item)
            if len(found) >= MAX_FIELDS:
                break
    elif is_json_l != is_json_c and legacy.body is not None and custom.body is not None:
        found.append(("body", "JSON" if is_json_l else "not JSON", "JSON" if is_json_c else "not"
                      " JSON"))  # fmt: skip
    return found


_MISSING = "<missing>"


def diff_json(
    legacy: Any, custom: Any, ignored: frozenset[str], path: str = "body"
) -> Iterator[tuple[str, Any, Any]]:
    """Differing leaves of two JSON values: paths like ``body.tasks[2].title``."""
    if isinstance(legacy, dict) and isinstance(custom, dict):
        dotted = [f".{name}" for name in ignored if "." in name]
        for key in sorted(legacy.keys() | custom.keys()):
            child = f"{path}.{key}"
            if key in ignored or dotted and any(child.endswith(end) for end in dotted):
                continue
            yield from diff_json(
                legacy.get(key, _MISSING), custom.get(key, _MISSING), ignored, child
            )
    elif isinstance(legacy, list) and isinstance(custom, list):
        if len(legacy) != len(custom):
            yield f"{path}.length", len(legacy), len(custom)
        for index, (left, right) in enumerate(zip(legacy, custom, strict=False)):
            yield from diff_json(left, right, ignored, f"{path}[{index}]")
    elif legacy != custom or isinstance(legacy, bool) != isinstance(custom, bool):
        yield path, legacy, custom


def _short(value: Any) -> Any:
    """A sample value small enough for the stats JSON."""
    if isinstance(value, dict | list | str):
        text = orjson.dumps(value).decode()
        if len(text) > 200:
            return text[:200] + "..."
    return value


# -- schema ----------------------------------------------------------------------------------------
class SchemaBook:
    """Validators for request and response bodies, per operation, from an OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components = spec.get("components") or {}
        self._cache: dict[tuple[str, ...], Any] = {}

    def _validator(self, key: tuple[str, ...], schema: dict[str, Any] | None) -> Any:
        if key not in self._cache:
            validator = None
            if isinstance(schema, dict) and schema:
                from jsonschema import Draft202012Validator

                validator = Draft202012Validator({**schema, "components": self.components})
            self._cache[key] = validator
        return self._cache[key]

    def _operation(self, endpoint: str) -> dict[str, Any] | None:
        method, _, template = endpoint.partition(" ")
        item = (self.spec.get("paths") or {}).get(template) or {}
        operation = item.get(method.lower())
        return operation if isinstance(operation, dict) else None

    def check_request(self, endpoint: str, body: Any) -> str | None:
        operation = self._operation(endpoint)
        if operation is None:
            return None
        content = (operation.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        return self._check(("req", endpoint), schema, body)

    def check_response(self, endpoint: str, status: int, body: Any) -> str | None:
        operation = self._operation(endpoint)
        if operation is None:
            return None
        responses = operation.get("responses") or {}
        declared = responses.get(str(status)) or responses.get(f"{status // 100}XX")
        if not isinstance(declared, dict):
            return None  # an undeclared status: nothing to check it against
        schema = ((declared.get("content") or {}).get("application/json") or {}).get("schema")
        return self._check(("resp", endpoint, str(status)), schema, body)

    def _check(self, key: tuple[str, ...], schema: Any, body: Any) -> str | None:
        validator = self._validator(key, schema)
        if validator is None:
            return None
        error = next(iter(validator.iter_errors(body)), None)
        if error is None:
            return None
        where = ".".join(str(part) for part in error.absolute_path)
        return f"{where or '(root)'}: {error.message[:200]}"


# -- counters --------------------------------------------------------------------------------------
class _Counters:
    """Shadow counts over one period (since start, or the current window)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.mirrored = self.compared = self.differences = 0
        self.dropped = self.skipped_writes = self.failures = 0
        self.schema_violations = self.sla_violations = 0
        self.by_endpoint: dict[str, dict[str, Any]] = {}

    def endpoint(self, name: str) -> dict[str, Any]:
        entry = self.by_endpoint.get(name)
        if entry is None:
            entry = self.by_endpoint[name] = {
                "compared": 0, "differences": 0, "schema_violations": 0, "sla_violations": 0,
                "samples": [], "schema_samples": [],
            }  # fmt: skip
        return entry

    def as_json(self, schema_state: str) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "differences": self.differences,
            "by_endpoint": self.by_endpoint,
            "schema_violations": self.schema_violations,
            "sla_violations": self.sla_violations,
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "skipped_writes": self.skipped_writes,
            "failures": self.failures,
            "schema": schema_state,
        }


@dataclass(slots=True)
class Job:
    method: str
    target: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | None
    endpoint: str = ""  # METHOD /route/{template}: named by the worker (see _dispatch)
    legacy: Answer | None = None


async def _read_capped(response: Any) -> bytes | None:
    """The whole body, or None (and the connection dropped) past ``BODY_LIMIT`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        size += len(chunk)
        if size > BODY_LIMIT:
            await response.aclose()
            return None
        parts.append(chunk)
    return b"".join(parts)


# -- the mirror ------------------------------------------------------------------------------------
class Shadow:
    """The queue, its workers, the comparison, and the counters (``snapshot``/``rotate``)."""

    body_limit = BODY_LIMIT

    def __init__(self, settings: ProxySettings, pool: UpstreamPool, stats: ProxyStats) -> None:
        self.settings = settings
        self.pool = pool
        self.stats = stats
        self.ignored = frozenset((*DEFAULT_IGNORED, *settings.ignore_fields))
        self.endpoints = EndpointMap()
        self.schema: SchemaBook | None = None
        self._schema_tried = 0.0
        self._schema_loading = False  # a fetch of /openapi.json is in flight
        self.total = _Counters()
        self.window = _Counters()
        self.queue: asyncio.Queue[Job] = asyncio.Queue(settings.shadow_queue)
        self._workers: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self.ids: OrderedDict[str, str] = OrderedDict()  # legacy id -> custom id
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llmstruct-shadow")

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        # The schema is fetched by the worker, not awaited here: a custom server that
        # accepts and never answers must not keep the proxy from serving its clients.
        self._workers = [asyncio.ensure_future(self._dispatch())]

    async def stop(self) -> None:
        tasks = [*self._workers, *self._running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _load_schema(self) -> None:
        if not self.settings.schema:
            return
        self._schema_tried = time.monotonic()
        self._schema_loading = True
        try:
            accept = [(b"accept", b"application/json")]
            response = await self.pool.request("GET", "/openapi.json", accept)
            data = await response.read(BODY_LIMIT)
            spec = orjson.loads(data) if response.status == 200 else None
        except (UpstreamError, orjson.JSONDecodeError) as exc:
            log.warning("shadow: no OpenAPI document from %s: %s", self.pool.url, exc)
            return
        finally:
            self._schema_loading = False
        if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
            log.warning("shadow: %s/openapi.json is not an OpenAPI document", self.pool.url)
            return
        self.schema = SchemaBook(spec)
        self.endpoints = EndpointMap.from_openapi(spec)

    def schema_state(self) -> str:
        """off, loaded, loading (a fetch in flight: the first, or a retry), or unavailable
        (the last fetch failed; retried every ``SCHEMA_RETRY`` s while jobs come)."""
        if not self.settings.schema:
            return "off"
        if self.schema is not None:
            return "loaded"
        return "loading" if self._schema_loading or not self._schema_tried else "unavailable"

    # -- the client path (never waits) -----------------------------------------------------
    def job(
        self, request: Request, target: str, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> Job | None:
        """The mirror job for ``request``, or None when it is not mirrored."""
        if request.method not in SAFE_METHODS and not self.settings.shadow_writes:
            for counters in (self.total, self.window):
                counters.skipped_writes += 1
            return None
        return Job(request.method, target, request.path, headers, body)

    def submit(
        self, job: Job | None, status: int, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> None:
        """Legacy has answered ``job``: queue it for custom, or drop it if the queue is full."""
        if job is None:
            return
        job.legacy = Answer.of(status, headers, body)
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            for counters in (self.total, self.window):
                counters.dropped += 1
            return
        for counters in (self.total, self.window):
            counters.mirrored += 1

    # -- the workers -----------------------------------------------------------------------
    async def _dispatch(self) -> None:
        """Jobs in queue order: reads up to ``WORKERS`` at once, each write alone.

        First the schema: jobs wait in the queue (and are dropped, counted, if it
        fills) until custom's ``/openapi.json`` came or failed, so that every job is
        named by the schema's route templates.
        """
        await self._load_schema()
        running = self._running
        while True:
            job = await self.queue.get()
            if job.method not in SAFE_METHODS:
                if running:
                    await asyncio.wait(running)
                await self._guarded(job)
                continue
            while len(running) >= WORKERS:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.ensure_future(self._guarded(job))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _guarded(self, job: Job) -> None:
        try:
            await self._mirror(asyncio.get_running_loop(), job)
        except Exception:
            log.exception("shadow: comparing %s %s failed", job.method, job.target)

    def _translate(self, target: str) -> str:
        """``target`` with every path segment that is a known legacy id made custom's."""
        if not self.ids:
            return target
        path, sep, query = target.partition("?")
        segments = path.split("/")
        changed = [self.ids.get(segment, segment) for segment in segments]
        return "/".join(changed) + sep + query if changed != segments else target

    def _learn_id(self, job: Job, custom: Answer) -> None:
        assert job.legacy is not None
        if job.method in SAFE_METHODS or job.legacy.status >= 300 or custom.status >= 300:
            return
        is_json_l, body_l = job.legacy.json()
        is_json_c, body_c = custom.json()
        if not (is_json_l and is_json_c and isinstance(body_l, dict) and isinstance(body_c, dict)):
            return
        left, right = body_l.get("id"), body_c.get("id")
        if isinstance(left, str | int) and isinstance(right, str | int) and left != right:
            self.ids[str(left)] = str(right)
            if len(self.ids) > ID_MAP_SIZE:
                self.ids.popitem(last=False)

    async def _mirror(self, loop: asyncio.AbstractEventLoop, job: Job) -> None:
        if self.schema is None and self.settings.schema:
            if time.monotonic() - self._schema_tried > SCHEMA_RETRY:
                await self._load_schema()
        job.endpoint = self.endpoints.endpoint(job.method, job.path)
        started = time.perf_counter()
        try:
            target = self._translate(job.target)
            response = await self.pool.request(job.method, target, job.headers, job.body)
            body = await _read_capped(response)
        except UpstreamError as exc:
            elapsed = time.perf_counter() - started
            self.stats.record(CUSTOM, exc.status, elapsed, failure=True)
            for counters in (self.total, self.window):
                counters.failures += 1
            log.warning("shadow: %s %s -> custom: %s", job.method, job.target, exc.detail)
            return
        elapsed = time.perf_counter() - started
        self.stats.record(CUSTOM, response.status, elapsed)
        custom = Answer.of(response.status, response.headers, body)
        self._learn_id(job, custom)
        outcome = await loop.run_in_executor(self._executor, self._judge, job, custom, elapsed)
        self._count(job, *outcome)

    def _judge(self, job: Job, custom: Answer, elapsed: float) -> tuple[list, list, bool]:
        """(differences, schema problems, SLA missed): pure work, run in the worker thread."""
        assert job.legacy is not None
        differences = compare(job.legacy, custom, self.ignored)
        problems: list[tuple[str, str]] = []
        if self.schema is not None:
            problems = self._validate(job, custom)
        sla = self.settings.sla_ms.get(job.endpoint, self.settings.sla_default_ms)
        return differences, problems, elapsed * 1000.0 > sla

    def _validate(self, job: Job, custom: Answer) -> list[tuple[str, str]]:
        assert self.schema is not None and job.legacy is not None
        problems = []
        if job.body:
            with contextlib.suppress(orjson.JSONDecodeError):
                found = self.schema.check_request(job.endpoint, orjson.loads(job.body))
                if found:
                    problems.append(("request", found))
        for side, answer in (("legacy", job.legacy), ("custom", custom)):
            if answer.media_type != "application/json":
                continue  # NDJSON streams and text have no response schema to check
            is_json, body = answer.json()
            if is_json:
                found = self.schema.check_response(job.endpoint, answer.status, body)
                if found:
                    problems.append((side, found))
        return problems

    def _count(
        self, job: Job, differences: list, problems: list[tuple[str, str]], slow: bool
    ) -> None:
        request = f"{job.method} {job.target}"
        for counters in (self.total, self.window):
            entry = counters.endpoint(job.endpoint)
            counters.compared += 1
            entry["compared"] += 1
            if differences:
                counters.differences += 1
                entry["differences"] += 1
                samples = entry["samples"]
                for name, left, right in differences:
                    if len(samples) >= SAMPLES:
                        break
                    samples.append({"field": name, "legacy": _short(left),
                                    "custom": _short(right), "request": request})  # fmt: skip
            if problems:
                counters.schema_violations += 1
                entry["schema_violations"] += 1
                for side, message in problems:
                    if len(entry["schema_samples"]) < SAMPLES:
                        entry["schema_samples"].append(
                            {"side": side, "error": message, "request": request}
                        )
            if slow:
                counters.sla_violations += 1
                entry["sla_violations"] += 1
        if differences:
            name, left, right = differences[0]
            more = f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""
            log.info("shadow difference in %s (%s): %s legacy=%r custom=%r%s", job.endpoint,
                     request, name, _short(left), _short(right), more)  # fmt: skip

    # -- reporting -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return self.total.as_json(self.schema_state())

    def rotate(self) -> dict[str, Any]:
        result = self.window.as_json(self.schema_state())
        self.window = _Counters()
        return result

    def render(self) -> list[str]:
        total = self.total
        lines = []
        for name, value, help_text in (
            ("mirrored", total.mirrored, "Requests mirrored to custom"),
            ("compared", total.compared, "Answers compared"),
            ("differences", total.differences, "Compared answers that differ"),
            ("dropped", total.dropped, "Mirror jobs dropped: queue full"),
            ("skipped_writes", total.skipped_writes, "Writes not mirrored"),
            ("failures", total.failures, "Mirrored requests custom did not answer"),
            ("schema_violations", total.schema_violations, "Answers failing the OpenAPI schema"),
            ("sla_violations", total.sla_violations, "Custom answers slower than their SLA"),
        ):
            lines += [f"# HELP llmstruct_proxy_shadow_{name}_total {help_text}",
                      f"# TYPE llmstruct_proxy_shadow_{name}_total counter",
                      f"llmstruct_proxy_shadow_{name}_total {value}"]  # fmt: skip
        lines.append("# HELP llmstruct_proxy_shadow_queue Mirror jobs waiting")
        lines.append("# TYPE llmstruct_proxy_shadow_queue gauge")
        lines.append(f"llmstruct_proxy_shadow_queue {self.queue.qsize()}")
        return lines
