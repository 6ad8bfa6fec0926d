"""Assemble struct.json (schema v2.1) from a scan's analysis records.

Layout: ``metadata`` (project, producer, stats, what was skipped or failed), a
``toc`` with one line per module, and ``modules`` with functions, classes and
their methods, each carrying ``uid``s, content ``hash``es, resolved ``calls``,
``called_by`` and the token counts of every level of detail.

Determinism: modules are sorted by path and every list is in source order or
sorted, so the same tree gives byte-identical output apart from
``metadata.version`` (the scan time) and ``metadata.artifact_id``. Keys beyond
the v2.1 schema (``signature``, ``tokens``, ``language``, ...) are additions the
schema allows; a v2.1 reader ignores them.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from llmstruct import __version__
from llmstruct.engine.calls import CallResolver, uid
from llmstruct.engine.forms import LEVELS
from llmstruct.engine.modules import Record, module_ids
from llmstruct.engine.scanner import ScanResult

SCHEMA_VERSION = "2.1.0"
SCHEMA_URI = "https://schemas.llmstruct.org/v2.1/struct.json"
HASH_VERSION = "sha256-v1"

_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|__tests__|spec|testdata)(/|$)|(^|/)test_[^/]*$|_test\.[a-z]+$"
    r"|\.(test|spec)\.[a-z]+$|Tests?\.java$"
)
_CLI_PATH = re.compile(r"(^|/)(cli|cmd|bin|__main__|main|commands?)(/|\.|$)")
_UTIL_PATH = re.compile(r"(^|/)(utils?|helpers?|common|support|internal/util)(/|\.|_|$)")


def category(path: str) -> str:
    """The v2.1 category of a module, from its path: test, cli, util or core."""
    if _TEST_PATH.search(path):
        return "test"
    if _CLI_PATH.search(path):
        return "cli"
    if _UTIL_PATH.search(path):
        return "util"
    return "core"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def build_struct(scan: ScanResult, project_name: str | None = None, description: str = "") -> dict:
    records = scan.records
    ids = module_ids(records)
    resolver = CallResolver(records, ids)
    modules = [_module(path, record, ids[path], resolver) for path, record in records.items()]
    _fill_called_by(modules)
    stats = _stats(modules)
    languages = Counter(record["language"] for record in records.values())
    metadata = {
        "project_name": project_name or scan.root.name,
        "description": description,
        "version": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema_version": SCHEMA_VERSION,
        "$schema": SCHEMA_URI,
        "artifact_id": str(uuid.uuid4()),
        "summary": _summary(stats, languages),
        "generator": f"llmstruct {__version__}",
        "stats": stats,
        "languages": dict(sorted(languages.items())),
        "total_lines": sum(record["line_count"] for record in records.values()),
        "token_encoding": scan.encoding,
        "token_levels": list(LEVELS),
        "scan": {
            "errors": [{"path": p, "error": e} for p, e in scan.errors.items()],
            "warnings": [
                {"path": path, "warning": warning}
                for path, record in records.items()
                for warning in record.get("warnings", [])
            ],
            "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        },
    }
    return {"metadata": metadata, "toc": [_toc(m) for m in modules], "modules": modules}


def _module(path: str, record: Record, module_id: str, resolver: CallResolver) -> dict[str, Any]:
    callgraph: dict[str, list[str]] = {}
    functions = [
        _function(path, module_id, f, None, resolver, callgraph) for f in record["functions"]
    ]
    classes = [_class(path, module_id, c, resolver, callgraph) for c in record["classes"]]
    depends_on = sorted(
        {
            resolver.ids[target_path]
            for target in resolver.bindings[path].values()
            for target_path in target.paths
            if target_path != path
        }
    )
    return {
        "module_id": module_id,
        "path": path,
        "language": record["language"],
        "category": category(path),
        "module_doc": record["module_doc"],
        "summary": first_line(record["module_doc"]),
        "uid": module_id,
        "uid_components": module_id.split("."),
        "hash": record["hash"],
        "hash_source": "file_content",
        "hash_version": HASH_VERSION,
        "lines": record["line_count"],
        "package": record["package"],
        "exports": record["exports"],
        "functions": functions,
        "classes": classes,
        "callgraph": callgraph,
        "dependencies": sorted({imp["module"] for imp in record["imports"]}),
        "depends_on": depends_on,
    }


def _function(path, module_id, function, cls_name, resolver, callgraph) -> dict[str, Any]:
    qualname = f"{cls_name}.{function['name']}" if cls_name else function["name"]
    calls: list[str] = []
    edges: list[str] = []
    for call in function["calls"]:
        target = resolver.resolve(path, call, cls_name)
        calls.append(target or call)
        if target is not None and target not in edges:
            edges.append(target)
    if edges:
        callgraph[qualname] = edges
    return {
        "name": function["name"],
        "uid": uid(module_id, qualname),
        "uid_components": [*module_id.split("."), *qualname.split(".")],
        "docstring": function["docstring"],
        "summary": first_line(function["docstring"]),
        "signature": function["signature"],
        "line_range": list(function["line_range"]),
        "byte_range": list(function["byte_range"]),
        "parameters": function["parameters"],
        "decorators": function["decorators"],
        "is_async": function["is_async"],
        "exported": function["exported"],
        "hash": function["hash"],
        "hash_source": "source_bytes",
        "hash_version": HASH_VERSION,
        "calls": list(dict.fromkeys(calls)),
        "called_by": [],
        "tokens": dict(zip(LEVELS, function["tokens"], strict=True)),
    }


def _class(path, module_id, cls, resolver, callgraph) -> dict[str, Any]:
    return {
        "name": cls["name"],
        "kind": cls["kind"],
        "uid": uid(module_id, cls["name"]),
        "uid_components": [*module_id.split("."), cls["name"]],
        "docstring": cls["docstring"],
        "summary": first_line(cls["docstring"]),
        "signature": cls["signature"],
        "line_range": list(cls["line_range"]),
        "byte_range": list(cls["byte_range"]),
        "bases": cls["bases"],
        "decorators": cls["decorators"],
        "exported": cls["exported"],
        "hash": cls["hash"],
        "hash_source": "source_bytes",
        "hash_version": HASH_VERSION,
        "tokens": dict(zip(LEVELS, cls["tokens"], strict=True)),
        "methods": [
            _function(path, module_id, m, cls["name"], resolver, callgraph) for m in cls["methods"]
        ],
    }


def _fill_called_by(modules: list[dict[str, Any]]) -> None:
    callers: dict[str, set[str]] = defaultdict(set)
    everything = []
    for module in modules:
        for function in _functions_of(module):
            everything.append(function)
            for target in module["callgraph"].get(_qualname(function), []):
                callers[target].add(function["uid"])
    for function in everything:
        function["called_by"] = sorted(callers.get(function["uid"], ()))


def _functions_of(module: dict[str, Any]):
    yield from module["functions"]
    for cls in module["classes"]:
        yield from cls["methods"]


def _qualname(function: dict[str, Any]) -> str:
    return function["uid"].split("#", 1)[1]


def _stats(modules: list[dict[str, Any]]) -> dict[str, int]:
    functions = sum(len(m["functions"]) for m in modules)
    methods = sum(len(c["methods"]) for m in modules for c in m["classes"])
    return {
        "modules_count": len(modules),
        "functions_count": functions + methods,
        "classes_count": sum(len(m["classes"]) for m in modules),
        "call_edges_count": sum(len(edges) for m in modules for edges in m["callgraph"].values()),
    }


def _summary(stats: dict[str, int], languages: Counter) -> str:
    langs = ", ".join(f"{n} {lang}" for lang, n in sorted(languages.items()))
    return (
        f"{stats['modules_count']} modules ({langs or 'no source files'}), "
        f"{stats['functions_count']} functions, {stats['classes_count']} classes, "
        f"{stats['call_edges_count']} resolved call edges"
    )


def _toc(module: dict[str, Any]) -> dict[str, Any]:
    return {
        "module_id": module["module_id"],
        "path": module["path"],
        "category": module["category"],
        "functions": len(module["functions"]),
        "classes": len(module["classes"]),
        "summary": module["summary"],
        "hash": module["hash"],
    }
