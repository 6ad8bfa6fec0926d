"""Scan a project into struct.json bytes: what ``llmstruct scan`` does, as a function.

The fast path: when the input fingerprint (every path and content hash, the
skips, the settings, the project name) equals that of the struct saved in the
cache, the saved struct is the answer, with fresh ``metadata.version`` and
``artifact_id``: nothing is parsed, no record is loaded, nothing is rebuilt. So
a re-scan of an unchanged tree costs about one read and hash of each file.

The saved struct is a template whose two volatile fields hold placeholders;
they are the first occurrences in the bytes (``metadata`` comes first), so
filling them is a bounded replace, not a JSON round trip.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from llmstruct.engine.discovery import Skip
from llmstruct.engine.scanner import ScanOptions, ScanProgress, ScanRun
from llmstruct.engine.structure import build_struct
from llmstruct.store.structfile import dumps

_VERSION_SLOT = b'"@@llmstruct:version@@"'
_ARTIFACT_SLOT = b'"@@llmstruct:artifact_id@@"'


@dataclass(slots=True)
class StructBuild:
    data: bytes  # struct.json, ready to write
    stats: dict[str, int]
    files: int
    parsed: int
    cached: int
    errors: dict[str, str]
    warnings: list[dict[str, str]]  # {"path", "warning"}: parsed, but not cleanly
    skipped: list[Skip]
    seconds: float
    from_cache: bool  # the whole struct was reused


def scan_to_struct(
    options: ScanOptions,
    on_progress: Callable[[ScanProgress], None] | None = None,
    project_name: str | None = None,
) -> StructBuild:
    """Scan ``options.root`` and return the struct.json bytes with a summary."""
    run = ScanRun(options)
    name = project_name or run.root.name
    key = _key(run.fingerprint(), name)
    saved = run.cache.load_struct(key) if key else None
    if saved is not None:
        header, template = saved
        for progress in run.serve_all_cached():
            if on_progress is not None:
                on_progress(progress)
        return _build(run, _fill(template), header, from_cache=True)
    for progress in run.iterate():
        if on_progress is not None:
            on_progress(progress)
    result = run.finish()
    struct = build_struct(result, project_name=name)
    struct["metadata"]["version"] = "@@llmstruct:version@@"
    struct["metadata"]["artifact_id"] = "@@llmstruct:artifact_id@@"
    template = dumps(struct)
    header = {
        "stats": struct["metadata"]["stats"],
        "errors": result.errors,
        "warnings": struct["metadata"]["scan"]["warnings"],
    }
    key = _key(result.fingerprint, name)
    if key:
        run.cache.save_struct(key, header, template)
    return _build(run, _fill(template), header, from_cache=False)


def _key(fingerprint: str | None, name: str) -> str | None:
    if fingerprint is None:
        return None
    return hashlib.sha256(f"{fingerprint}|{name}".encode()).hexdigest()


def _fill(template: bytes) -> bytes:
    version = orjson.dumps(datetime.now(UTC).isoformat(timespec="seconds"))
    artifact = orjson.dumps(str(uuid.uuid4()))
    return template.replace(_VERSION_SLOT, version, 1).replace(_ARTIFACT_SLOT, artifact, 1)


def _build(run: ScanRun, data: bytes, header: dict[str, Any], from_cache: bool) -> StructBuild:
    return StructBuild(
        data=data,
        stats=header["stats"],
        files=run.total,
        parsed=run.done - run.cached,
        cached=run.cached,
        errors=dict(header["errors"]),
        warnings=list(header.get("warnings", [])),
        skipped=run.skipped,
        seconds=time.perf_counter() - run.started,
        from_cache=from_cache,
    )
