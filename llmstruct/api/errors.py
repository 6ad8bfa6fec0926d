"""The contract's error answers: one mapping from engine exceptions to (status, detail).

Both servers (the custom one in ``llmstruct.server.api`` and the FastAPI
reference through ``llmstruct.migration.engine_call``) answer an engine failure
with exactly what ``status_and_detail`` says, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

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
