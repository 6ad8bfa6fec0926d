"""Turn one file's bytes into its analysis record (what the scan cache stores).

This is the unit of work the scanner farms out to worker processes. A record is
a plain dict (JSON-safe, so the cache needs no pickle): the parser's
``FileAnalysis`` plus, per symbol, the SHA-256 of its source and the token counts
of each level of detail (see ``forms``), computed here once.

Failures are data, not exceptions: ``analyze_path`` returns ``(hash, record,
error)`` with exactly one of ``record``/``error`` set, so one bad file never
stops a scan.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from llmstruct.engine.forms import count_forms, source_text
from llmstruct.engine.model import analysis_dict
from llmstruct.engine.parsers import parser_for
from llmstruct.engine.tokens import DEFAULT_ENCODING, TokenCounter

#: Bump when parser output, record layout or token forms change: it invalidates
#: every cached record (the cache key includes it).
ANALYSIS_VERSION = "3"

#: A NUL byte in the first 8 KiB marks a binary file, as git and grep decide.
_BINARY_SNIFF = 8192

_counters: dict[str, TokenCounter] = {}


def _counter(encoding: str) -> TokenCounter:
    counter = _counters.get(encoding)
    if counter is None:
        counter = _counters[encoding] = TokenCounter(encoding)
    return counter


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def analyze_path(
    root: str, path: str, encoding: str = DEFAULT_ENCODING
) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """Read and analyse ``root/path``. Returns (content hash, record, error)."""
    try:
        with open(os.path.join(root, path), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None, None, "file vanished during the scan"
    except OSError as exc:
        return None, None, f"cannot read: {exc.strerror or exc}"
    digest = content_hash(data)
    record, error = analyze_bytes(path, data, encoding)
    return digest, record, error


def analyze_bytes(
    path: str, data: bytes, encoding: str = DEFAULT_ENCODING
) -> tuple[dict[str, Any] | None, str | None]:
    """Analyse file content. Returns (record, None) or (None, error message)."""
    if b"\0" in data[:_BINARY_SNIFF]:
        return None, "binary file (NUL byte), not parsed"
    parser = parser_for(path)
    if parser is None:
        return None, "no parser for this file type"
    warnings = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        warnings.append(f"invalid UTF-8 at byte {exc.start}; text decoded with replacement")
    try:
        analysis = parser.parse(data, path)
    except Exception as exc:  # a parser bug must cost one file, not the scan
        return None, f"parser failed: {type(exc).__name__}: {exc}"
    if analysis.syntax_errors:
        warnings.append(f"{analysis.syntax_errors} syntax error(s); structure is best-effort")
    record = analysis_dict(analysis)
    record["hash"] = content_hash(data)
    record["size"] = len(data)
    record["warnings"] = warnings
    _add_symbol_facts(record, data, _counter(encoding).count, analysis.language)
    return record, None


def _add_symbol_facts(record: dict[str, Any], data: bytes, count, language: str) -> None:
    for function in record["functions"]:
        _facts(function, function["name"], data, count, language)
    for cls in record["classes"]:
        methods = cls["methods"]
        # A class's own "full" form stops where its first method starts: methods
        # are rendered as items of their own, so their text is never counted twice.
        head_end = min((m["byte_range"][0] for m in methods), default=cls["byte_range"][1])
        _facts(cls, cls["name"], data, count, language, max(head_end, cls["byte_range"][0]))
        for method in methods:
            _facts(method, f"{cls['name']}.{method['name']}", data, count, language)


def _facts(symbol, qualname: str, data: bytes, count, language: str, end: int | None = None):
    start, stop = symbol["byte_range"]
    source_bytes = data[start:stop]
    symbol["hash"] = content_hash(source_bytes)
    shown = source_text(data, start, stop if end is None else end)
    symbol["tokens"] = count_forms(
        count, qualname, symbol["signature"], symbol["docstring"], shown, language
    )
