"""The contract's error answers: one mapping from engine exceptions to (status, detail).

Both servers (the custom one in ``llmstruct.server.api`` and the FastAPI
reference through ``llmstruct.migration.engine_call``) answer an engine failure
with exactly what ``status_and_detail`` says, so they cannot drift apart.

``error_body`` writes an error body the same way on both: a 422 echoes the
client's ``input``, which may hold what a fast JSON writer refuses.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson

# The details of the contract's fixed errors (DESIGN.md and fastapi_app's docstring).
NO_STRUCT_DETAIL = "No struct.json yet: run a scan first"
BAD_STRUCT_DETAIL = "struct.json is not usable: run a scan again"
TASK_NOT_FOUND = "Task not found"
INVALID_MODE = "Invalid context mode"
INTERNAL_ERROR = "Internal Server Error"


def status_and_detail(exc: BaseException, struct_path: Path | None) -> tuple[int, str] | None:
    """(status, detail) for a known engine failure; None for an unexpected one (500,
    ``INTERNAL_ERROR``, logged by the caller). ``struct_path`` tells "no struct.json
    yet" (409, fixed text) from an unusable one."""
    from llmstruct.config import ConfigError
    from llmstruct.engine.ai_bridge import LLMError
    from llmstruct.engine.context import ContextError
    from llmstruct.engine.core import EngineError
    from llmstruct.engine.discovery import DiscoveryError
    from llmstruct.engine.tokens import EncodingUnavailable
    from llmstruct.store.structfile import StructFileError
    from llmstruct.store.tasks import TaskStoreError

    if isinstance(exc, EngineError):
        return exc.status, exc.detail
    if isinstance(exc, StructFileError):
        missing = struct_path is not None and not struct_path.exists()
        return 409, NO_STRUCT_DETAIL if missing else BAD_STRUCT_DETAIL
    if isinstance(exc, ContextError | DiscoveryError):
        return 400, str(exc)
    if isinstance(exc, LLMError):
        return exc.status, exc.detail
    if isinstance(exc, ConfigError):  # the LLM backend is not configured
        return 503, str(exc)
    if isinstance(exc, TaskStoreError | EncodingUnavailable):
        return 500, str(exc)
    return None


def error_body(detail: Any) -> bytes:
    """``{"detail": detail}`` as JSON, for any value a parsed request can hold.

    orjson writes it, unless the detail echoes what orjson refuses: an integer beyond
    64 bits (the stdlib parser keeps them exact, as Starlette's does) or a lone UTF-16
    surrogate (``"\\ud800"`` is valid JSON text, not valid UTF-8). Then the stdlib
    writes it, ASCII-escaped so a surrogate stays a ``\\u`` escape, with non-finite
    floats (``1e400`` parses as ``inf``) as null -- which is what orjson writes.
    FastAPI's own 422 handler fails with a 500 on all three.
    """
    try:
        return orjson.dumps({"detail": detail})
    except TypeError:
        return json.dumps({"detail": _finite(detail)}, separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
