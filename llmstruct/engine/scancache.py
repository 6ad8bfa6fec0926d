"""The scan cache: analysis records keyed by file content hash.

Lives in ``<root>/.llmstruct_cache/scan-<key>.json``, where the key covers
everything that shapes a record (llmstruct version, analysis version, token
encoding), so an upgrade never reads a stale layout: it just misses. The file is
JSON (orjson), never pickle, because a cache inside a repository is not trusted
input. It is written atomically; a corrupt or foreign cache file is ignored and
rebuilt, never fatal.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from llmstruct import __version__
from llmstruct.engine.analyze import ANALYSIS_VERSION
from llmstruct.store.atomic import atomic_write_bytes

CACHE_DIR_NAME = ".llmstruct_cache"


class ScanCache:
    def __init__(self, root: Path, encoding: str, enabled: bool = True) -> None:
        key = hashlib.sha256(f"{__version__}|{ANALYSIS_VERSION}|{encoding}".encode()).hexdigest()
        self.path = root / CACHE_DIR_NAME / f"scan-{key[:16]}.json"
        self.enabled = enabled
        self._records: dict[str, dict[str, Any]] = self._load() if enabled else {}

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        records = data.get("records") if isinstance(data, dict) else None
        return records if isinstance(records, dict) else {}

    def __bool__(self) -> bool:
        return bool(self._records)

    def get(self, content_hash: str, path: str) -> dict[str, Any] | None:
        """The cached record for this content at this path, or None."""
        record = self._records.get(content_hash)
        if record is None:
            return None
        if record.get("path") != path:
            # Same content under another name (a copy or a move): reuse the parse,
            # with the path corrected; ids derived from the path are built later.
            record = {**record, "path": path}
        return record

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        """Replace the cache with ``records`` (content hash -> record) of this scan."""
        if not self.enabled:
            return
        try:
            os.makedirs(self.path.parent, exist_ok=True)
            _write_cachedir_tag(self.path.parent)
            atomic_write_bytes(self.path, orjson.dumps({"records": records}))
        except OSError:
            pass  # a read-only tree still scans; it just cannot be warm next time


def _write_cachedir_tag(directory: Path) -> None:
    # Marks the folder as a cache for backup tools (bford.info/cachedir) and for our
    # own discovery, which skips tagged directories.
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by llmstruct.\n"
        )
