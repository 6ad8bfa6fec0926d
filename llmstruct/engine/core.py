"""CoreEngine: the one facade the CLI, the custom server and the FastAPI app call.

Every engine operation of the v1 contract is a method here, taking and returning
the contract's models (``llmstruct.api.models``), so that the handlers of both
servers stay a few lines: parse the request, call one method, render.

Layout under the project root: ``struct.json`` (the scan's output) and
``.llmstruct/tasks.db`` (the task database). Scans run in a worker thread (the
scanner farms the parsing out to processes); their progress comes back to the
event loop through a queue, so a streaming client sees every file as it is done.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from llmstruct.api import models
from llmstruct.engine.ai_bridge import AIBridge, LLMConfig
from llmstruct.engine.context import ContextManager, ContextResult
from llmstruct.engine.index import StructIndex
from llmstruct.engine.manifest import read_manifest
from llmstruct.engine.project import StructBuild, scan_to_struct
from llmstruct.engine.scanner import ScanOptions, ScanProgress
from llmstruct.store.atomic import atomic_write_bytes
from llmstruct.store.structfile import DEFAULT_NAME, StructFileError
from llmstruct.store.tasks import TaskStore

TASKS_PATH = Path(".llmstruct") / "tasks.db"
# How long project info may be reused for one loaded index (manifest edits show
# within this long; a rescan shows at once: it is a new index).
PROJECT_INFO_TTL_S = 1.0
# How long a look at struct.json stands for the answers given at once (cached context,
# project info): a scan from outside the engine (the CLI, another worker) shows
# within this; the engine's own scans at once.
STRUCT_RECHECK_S = 1.0


class EngineError(ValueError):
    """A request the engine refuses; ``status`` is the HTTP status that fits."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class CoreEngine:
    def __init__(
        self,
        root: Path | str,
        *,
        tasks_path: Path | str | None = None,
        llm_config: LLMConfig | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.struct_path = self.root / DEFAULT_NAME
        tasks_file = Path(tasks_path) if tasks_path else self.root / TASKS_PATH
        tasks_file.parent.mkdir(parents=True, exist_ok=True)
        self.tasks = TaskStore(tasks_file)
        self.contexts = ContextManager(
            self.struct_path, root=self.root, tasks=self.tasks, recheck_s=STRUCT_RECHECK_S
        )
        self._info_memo: tuple[StructIndex, float, models.ProjectInfo] | None = None
        self._info_json: tuple[models.ProjectInfo, bytes] | None = None
        self.llm_config = llm_config
        self._scan_lock = asyncio.Lock()

    # -- scan ----------------------------------------------------------------------------
    async def scan_stream(
        self, request: models.ScanRequest
    ) -> AsyncIterator[models.ScanProgress | models.ScanResponse]:
        """Progress for every file, then the ``ScanResponse``. One scan at a time."""
        options, output = self._scan_options(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ScanProgress | None] = asyncio.Queue()

        def progress(item: ScanProgress) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def run() -> StructBuild:
            try:
                build = scan_to_struct(options, on_progress=progress)
                atomic_write_bytes(output, build.data)
                self.contexts.recheck()  # our own scan shows at once
                return build
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async with self._scan_lock:
            job = loop.run_in_executor(None, run)
            while (item := await queue.get()) is not None:
                yield models.ScanProgress(
                    current=item.current, total=item.total, file=item.file,
                    error=item.error, cached=item.cached,
                )  # fmt: skip
            build = await job
        yield self._scan_response(build, output)

    async def scan(self, request: models.ScanRequest) -> models.ScanResponse:
        response = None
        async for item in self.scan_stream(request):
            response = item
        assert isinstance(response, models.ScanResponse)
        return response

    def _scan_options(self, request: models.ScanRequest) -> tuple[ScanOptions, Path]:
        output = self.struct_path
        if request.output_path:
            candidate = (self.root / request.output_path).resolve()
            if not candidate.is_relative_to(self.root) or candidate.is_dir():
                raise EngineError("output_path must name a file inside the project root")
            output = candidate
        options = ScanOptions(
            self.root,
            include=list(request.include_patterns),
            exclude=list(request.exclude_patterns),
            use_cache=request.incremental,
        )
        return options, output

    def _scan_response(self, build: StructBuild, output: Path) -> models.ScanResponse:
        warnings = [f"{w['path']}: {w['warning']}" for w in build.warnings]
        warnings += [f"{path}: {error}" for path, error in build.errors.items()]
        return models.ScanResponse(
            status="completed",
            scan_id=str(uuid.uuid4()),
            timestamp=datetime.now(UTC),
            files_processed=build.files,
            output_path=os.path.relpath(output, self.root),
            summary={**build.stats, "parsed": build.parsed, "cached": build.cached,
                     "errors": len(build.errors), "skipped": len(build.skipped)},
            warnings=warnings,
        )  # fmt: skip

    # -- struct and project info -------------------------------------------------------
    def struct_bytes(self) -> tuple[bytes, str]:
        """struct.json and its ETag (the content hash the context cache keys on)."""
        struct_hash, _ = self.contexts.index()
        return self.struct_path.read_bytes(), f'"{struct_hash[:32]}"'

    def project_info(self) -> models.ProjectInfo:
        return self._project_info(self.contexts.index()[1])

    def project_info_now(self) -> models.ProjectInfo | None:
        """``project_info()`` if the index is loaded and free (``ContextManager.index_now``),
        else None: a server's event loop answers from here and sends the rest to a thread."""
        loaded = self.contexts.index_now()
        return None if loaded is None else self._project_info(loaded[1])

    def project_info_json_now(self) -> bytes | None:
        """``project_info_now()`` as JSON, encoded once per kept answer (as a cached
        context keeps its JSON): a server repeating it encodes nothing."""
        info = self.project_info_now()
        if info is None:
            return None
        kept = self._info_json
        if kept is None or kept[0] is not info:
            kept = self._info_json = (info, orjson.dumps(info.model_dump(mode="json")))
        return kept[1]

    def _project_info(self, index: StructIndex) -> models.ProjectInfo:
        # Kept for a second per index: the manifest and the root's ctime are read
        # from disk (several system calls) and change rarely.
        now = time.monotonic()
        memo = self._info_memo
        if memo is not None and memo[0] is index and now < memo[1]:
            return memo[2]
        info = self._read_project_info(index)
        self._info_memo = (index, now + PROJECT_INFO_TTL_S, info)
        return info

    def _read_project_info(self, index: StructIndex) -> models.ProjectInfo:
        metadata = index.struct.get("metadata", {})
        manifest = read_manifest(self.root)
        scanned = _timestamp(metadata.get("version"), self.struct_path)
        return models.ProjectInfo(
            name=str(manifest.get("name") or index.project),
            version=str(manifest.get("version") or "0.0.0"),
            description=manifest.get("description") or metadata.get("description") or None,
            author=manifest.get("author"),
            created_at=_created(self.root, scanned),
            last_updated=scanned,
            file_count=len(index.modules),
            total_lines=int(metadata.get("total_lines") or sum(m.lines for m in index.modules)),
            languages=sorted({m.language for m in index.modules}),
        )

    # -- context -----------------------------------------------------------------------
    def context(
        self,
        mode: str,
        query: str | None = None,
        budget: int | None = None,
        include_files: list[str] | tuple[str, ...] = (),
        format: str | None = None,
    ) -> models.ContextResponse:
        result = self.contexts.build_context(mode, query, budget, include_files, format or "md")
        return _context_response(mode, result)

    def context_json_now(
        self,
        mode: str,
        query: str | None = None,
        budget: int | None = None,
        include_files: list[str] | tuple[str, ...] = (),
        format: str | None = None,
    ) -> bytes | None:
        """``context()``'s answer as JSON if it is cached and can be had at once
        (``ContextManager.cached_context``), else None (as ``project_info_now``). The
        encoding is kept with the cached result, so a repeated hit encodes nothing."""
        result = self.contexts.cached_context(mode, query, budget, include_files, format or "md")
        if result is None:
            return None
        # The answer depends on the result alone: its mode is the request's, normalised.
        encoded = result.answers.get("json")
        if encoded is None:
            encoded = orjson.dumps(_context_response(mode, result).model_dump(mode="json"))
            result.answers["json"] = encoded
        return encoded

    # -- the AI bridge -------------------------------------------------------------------
    async def query(self, request: models.QueryRequest) -> models.QueryResponse:
        config = self.llm_config or LLMConfig.from_env()
        async with AIBridge(config, self.contexts) as bridge:
            answer = await bridge.ask(
                request.query, request.context_mode, request.include_files, request.llm_model
            )
        return models.QueryResponse(
            query=request.query,
            response=answer.response,
            context_used=answer.context_used,
            processing_time=answer.processing_time,
            token_usage=answer.token_usage,
        )

    def close(self) -> None:
        self.tasks.close()


def _context_response(mode: str, result: ContextResult) -> models.ContextResponse:
    suggestions = []
    if result.truncated:
        suggestions.append("Context was truncated: raise the budget or narrow the query.")
    if mode.upper() == "FOCUSED" and not result.optimization_applied:
        suggestions.append("Add a query or include_files to focus the context.")
    return models.ContextResponse(
        mode=result.mode,
        token_count=result.token_count,
        file_count=result.file_count,
        context_data={
            "format": result.format,
            "text": result.data,
            "symbols": [{"uid": uid, "level": level} for uid, level in result.symbols],
        },
        optimization_suggestions=suggestions,
        budget=result.budget,
        truncated=result.truncated,
    )


def _timestamp(value: Any, path: Path) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


def _created(root: Path, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(root.stat().st_ctime, UTC)
    except OSError:
        return fallback


__all__ = ["CoreEngine", "EngineError", "StructFileError"]
