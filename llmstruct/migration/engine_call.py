"""``llmstruct engine-call OPERATION``: one engine call, JSON in on stdin, JSON out on stdout.

This is the machine-readable CLI behind the FastAPI reference app's ``cli`` bridge
(design sheet 02's ``CLIBridge`` ran ``python -m llmstruct.cli scan`` and guessed at
its text output; here the CLI speaks JSON, so both bridges give identical answers).
The in-process bridge calls the very same ``EngineCalls`` object, so the two differ
only in where the work runs, never in what it answers.

Protocol (``cwd`` or ``--root`` is the project root):

* stdin: one JSON object, the request (empty stdin means ``{}``);
* stdout, exit 0: one JSON document, the answer;
* stdout, exit 1: ``{"status": N, "detail": ...}`` -- the engine refused, with the
  HTTP status and detail the servers answer (see ``error_for``);
* stdout, exit 2: ``{"status": 400, "detail": ...}`` -- the call itself was malformed
  (stdin not a JSON object, ``--stream`` on an operation that does not stream);
* ``scan --stream``: NDJSON, one ``{"type": "scan_progress", "data": ScanProgress}``
  line per file as it is done, then ``{"type": "scan_complete", "data":
  ScanResponse}``; an error ends the stream with a ``{"status", "detail"}`` line.

Nothing else is ever written to stdout (``print`` inside the engine goes to stderr).

Operations and their requests (answers are the contract models, as JSON):

============  ===================================  ==================================
operation     request                              answer
============  ===================================  ==================================
project_info  ``{}``                               ``ProjectInfo``
scan          ``ScanRequest``                      ``ScanResponse``
struct        ``{}``                               ``{"path": <abs path>, "etag"}``
context       ``ContextRequest`` (mode any case)   ``ContextResponse``
task_list     ``TaskListQuery``                    ``[TaskResponse]``
task_create   ``TaskCreateRequest``                ``TaskResponse``
task_get      ``{"id"}``                           ``TaskResponse``
task_update   ``{"id", "changes": {...}}``         ``TaskResponse`` (PATCH: only the
                                                   keys of ``changes`` change)
task_delete   ``{"id"}``                           ``{"id", "deleted": true}``
query         ``QueryRequest``                     ``QueryResponse``
============  ===================================  ==================================

``struct`` answers the file's path rather than its bytes: struct.json of a large
tree is tens of megabytes, which the caller can read from disk faster than through
a pipe (base64 would add a third).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from llmstruct.api.errors import (  # the fixed details both servers answer
    INTERNAL_ERROR,
    NO_STRUCT_DETAIL,
    TASK_NOT_FOUND,
    status_and_detail,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from llmstruct.engine.core import CoreEngine

# pydantic and the contract models load only when a call runs: ``add_parser`` is
# imported by ``llmstruct.cli`` on every start, and they would add ~85 ms to it.

__all__ = [
    "CallError",
    "EngineCalls",
    "OPERATIONS",
    "NO_STRUCT_DETAIL",
    "TASK_NOT_FOUND",
    "add_parser",
    "error_for",
    "main",
]

log = logging.getLogger("llmstruct.migration")

OPERATIONS = (
    "project_info",
    "scan",
    "struct",
    "context",
    "task_list",
    "task_create",
    "task_get",
    "task_update",
    "task_delete",
    "query",
)

EXIT_REFUSED = 1
EXIT_USAGE = 2


class CallError(Exception):
    """An engine call refused: answer ``status`` with ``{"detail": detail}``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail}


def error_for(exc: BaseException, engine: CoreEngine | None = None) -> CallError:
    """The status and detail both servers answer for an exception out of the engine.

    ``engine`` tells "no struct.json yet" (409, fixed text) from an unusable one.
    Anything unexpected is 500 ``Internal Server Error`` (and logged by the caller).
    """
    if isinstance(exc, CallError):
        return exc
    known = status_and_detail(exc, engine.struct_path if engine is not None else None)
    return CallError(*known) if known is not None else CallError(500, INTERNAL_ERROR)


def _validate(model: type[BaseModel], request: Any) -> Any:
    from pydantic import ValidationError

    from llmstruct.api import models

    try:
        return model.model_validate(request)
    except ValidationError as exc:
        raise CallError(422, models.validation_detail(exc, "body")) from None


def _task_id(request: dict[str, Any]) -> str:
    task_id = request.get("id")
    if not isinstance(task_id, str):
        raise CallError(422, "request needs a string 'id'")
    return task_id


def _dump(value: BaseModel | None) -> Any:
    if value is None:
        raise CallError(404, TASK_NOT_FOUND)
    return value.model_dump(mode="json")


class EngineCalls:
    """The operations of ``OPERATIONS`` on one ``CoreEngine``, JSON-able in and out.

    Synchronous engine work runs in a worker thread; the engine's ContextManager and
    task store serialise their own callers.
    """

    def __init__(self, engine: CoreEngine) -> None:
        self.engine = engine
        self._sync: dict[str, Callable[[dict[str, Any]], Any]] = {
            "project_info": self._project_info,
            "struct": self._struct,
            "context": self._context,
            "task_list": self._task_list,
            "task_create": self._task_create,
            "task_get": self._task_get,
            "task_update": self._task_update,
            "task_delete": self._task_delete,
        }

    async def call(self, operation: str, request: dict[str, Any]) -> Any:
        """The answer to ``operation``, or ``CallError``."""
        from llmstruct.api import models

        try:
            if operation == "scan":
                scan = _validate(models.ScanRequest, request)
                return (await self.engine.scan(scan)).model_dump(mode="json")
            if operation == "query":
                query = _validate(models.QueryRequest, request)
                return (await self.engine.query(query)).model_dump(mode="json")
            handler = self._sync.get(operation)
            if handler is None:
                raise CallError(400, f"unknown operation {operation!r}")
            return await asyncio.to_thread(handler, request)
        except Exception as exc:
            raise self._error(exc) from None

    async def scan_events(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``{"type": "scan_progress", "data"}`` per file, then ``scan_complete``."""
        from llmstruct.api import models

        try:
            scan = _validate(models.ScanRequest, request)
            async for item in self.engine.scan_stream(scan):
                kind = "scan_complete" if isinstance(item, models.ScanResponse) else "scan_progress"
                yield {"type": kind, "data": item.model_dump(mode="json")}
        except Exception as exc:
            raise self._error(exc) from None

    def struct_bytes(self) -> tuple[bytes, str]:
        """struct.json and its ETag, for the in-process bridge (no path round trip)."""
        try:
            return self.engine.struct_bytes()
        except Exception as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> CallError:
        error = error_for(exc, self.engine)
        if error.status == 500 and error.detail == INTERNAL_ERROR:
            log.error("engine call failed", exc_info=exc)
        return error

    # -- the synchronous operations ----------------------------------------------------------
    def _project_info(self, request: dict[str, Any]) -> Any:
        return self.engine.project_info().model_dump(mode="json")

    def _struct(self, request: dict[str, Any]) -> Any:
        _, etag = self.engine.struct_bytes()
        return {"path": str(self.engine.struct_path), "etag": etag}

    def _context(self, request: dict[str, Any]) -> Any:
        from llmstruct.api import models

        request = dict(request)
        if isinstance(request.get("mode"), str):
            request["mode"] = request["mode"].upper()
        context = _validate(models.ContextRequest, request)
        response = self.engine.context(
            context.mode, context.query, context.budget, context.include_files, context.format
        )
        return response.model_dump(mode="json")

    def _task_list(self, request: dict[str, Any]) -> Any:
        from llmstruct.api import models

        query = _validate(models.TaskListQuery, request)
        return [task.model_dump(mode="json") for task in self.engine.tasks.list(**dict(query))]

    def _task_create(self, request: dict[str, Any]) -> Any:
        from llmstruct.api import models

        create = _validate(models.TaskCreateRequest, request)
        return _dump(self.engine.tasks.create(create))

    def _task_get(self, request: dict[str, Any]) -> Any:
        return _dump(self.engine.tasks.get(_task_id(request)))

    def _task_update(self, request: dict[str, Any]) -> Any:
        from llmstruct.api import models

        changes = _validate(models.TaskUpdateRequest, request.get("changes") or {})
        return _dump(self.engine.tasks.update(_task_id(request), changes))

    def _task_delete(self, request: dict[str, Any]) -> Any:
        task_id = _task_id(request)
        if not self.engine.tasks.delete(task_id):
            raise CallError(404, TASK_NOT_FOUND)
        return {"id": task_id, "deleted": True}


# -- the command -------------------------------------------------------------------------------
def add_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``engine-call`` subcommand to an ``argparse`` subparsers object."""
    parser = subcommands.add_parser(
        "engine-call",
        help="run one engine operation: JSON request on stdin, JSON answer on stdout",
        description=(
            "Run one CoreEngine operation on the project at --root (default: the current "
            "directory). The request is a JSON object on stdin; the answer is JSON on "
            'stdout (exit 0), or {"status": N, "detail": ...} (exit 1: refused, 2: '
            "malformed call). Used by the FastAPI reference app's CLI bridge."
        ),
    )
    parser.add_argument("operation", choices=OPERATIONS, help="the engine operation")
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument(
        "--stream", action="store_true",
        help="scan only: NDJSON progress lines, then the scan_complete line",
    )  # fmt: skip
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``engine-call`` handler: exit status 0, 1 (refused) or 2 (malformed call)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything the engine prints must not corrupt the answer
    try:
        request = _read_request(sys.stdin.buffer)
        if args.stream and args.operation != "scan":
            raise CallError(400, f"--stream applies to scan only, not {args.operation}")
    except CallError as exc:
        _write(out, exc.to_json())
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args.root, args.operation, request, args.stream, out))
    except CallError as exc:  # the engine could not even be opened
        _write(out, exc.to_json())
        return EXIT_REFUSED


async def _run(root: str, operation: str, request: dict[str, Any], stream: bool,
               out: BinaryIO) -> int:  # fmt: skip
    from llmstruct.engine.core import CoreEngine

    try:
        engine = CoreEngine(root)
    except Exception as exc:
        raise error_for(exc) from None
    calls = EngineCalls(engine)
    try:
        if stream:
            async for event in calls.scan_events(request):
                _write(out, event)
        else:
            _write(out, await calls.call(operation, request))
    except CallError as exc:
        _write(out, exc.to_json())
        return EXIT_REFUSED
    finally:
        engine.close()
    return 0


def _read_request(stdin: BinaryIO) -> dict[str, Any]:
    raw = stdin.read()
    if not raw.strip():
        return {}
    try:
        request = json.loads(raw)  # the stdlib: an integer beyond 64 bits stays exact
    except ValueError:
        raise CallError(400, "engine-call: stdin is not valid JSON") from None
    if not isinstance(request, dict):
        raise CallError(400, "engine-call: stdin must hold one JSON object")
    return request


def _write(out: BinaryIO, value: Any) -> None:
    out.write(orjson.dumps(value) + b"\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m llmstruct.migration.engine_call OPERATION``: as ``llmstruct engine-call``."""
    parser = argparse.ArgumentParser(prog="llmstruct")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["engine-call", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
