"""The scan cache: analysis records keyed by content hash, and the last struct.

Lives in ``<root>/.llmstruct_cache/``. Every name carries a key covering what
shapes its content (llmstruct version, analysis version, token encoding), so an
upgrade never reads a stale layout: it just misses.

* ``scan-<key>.json``: content hash -> analysis record. Loaded only when some file
  changed: a warm re-scan of an unchanged tree never pays for reading it.
* ``struct-<key>.json``: the last struct.json built, with the fingerprint of its
  input (every path and content hash, the skips, the settings) on its first line.
  When the fingerprint matches, struct.json is this file, with fresh volatile
  fields, and nothing is parsed, loaded or rebuilt.

Files are JSON (orjson), never pickle, because a cache inside a repository is not
trusted input. They are written atomically; a corrupt or foreign cache file is
ignored and rebuilt, never fatal.
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
        self.directory = root / CACHE_DIR_NAME
        self.path = self.directory / f"scan-{key[:16]}.json"
        self.struct_path = self.directory / f"struct-{key[:16]}.json"
        self.enabled = enabled
        self._records: dict[str, dict[str, Any]] | None = None

    def exists(self) -> bool:
        return self.enabled and self.path.exists()

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        if self._records is None:
            self._records = self._load() if self.enabled else {}
        return self._records

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        records = data.get("records") if isinstance(data, dict) else None
        return records if isinstance(records, dict) else {}

    def get(self, content_hash: str, path: str) -> dict[str, Any] | None:
        """The cached record for this content at this path, or None."""
        record = self.records.get(content_hash)
        if not isinstance(record, dict) or record.get("hash") != content_hash:
            return None
        if record.get("path") != path:
            # Same content under another name (a copy or a move): reuse the parse,
            # with the path corrected; ids derived from the path are built later.
            record = {**record, "path": path}
        return record

    def save(self, records: dict[str, dict[str, Any]]) -> None:
        """Replace the record cache with ``records`` (content hash -> record)."""
        self._write(self.path, orjson.dumps({"records": records}))

    # -- the last struct ----------------------------------------------------------
    def load_struct(self, fingerprint: str) -> tuple[dict[str, Any], bytes] | None:
        """(header, struct bytes) saved for this exact input, or None."""
        if not self.enabled:
            return None
        try:
            with open(self.struct_path, "rb") as handle:
                header = orjson.loads(handle.readline())
                if not isinstance(header, dict) or header.get("fingerprint") != fingerprint:
                    return None
                return header, handle.read()
        except (OSError, orjson.JSONDecodeError):
            return None

    def save_struct(self, fingerprint: str, header: dict[str, Any], body: bytes) -> None:
        line = orjson.dumps({**header, "fingerprint": fingerprint})
        self._write(self.struct_path, line + b"\n" + body)

    def _write(self, path: Path, data: bytes) -> None:
        if not self.enabled:
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
            _write_cachedir_tag(self.directory)
            atomic_write_bytes(path, data)
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
