"""Module identity and import targets: which project file an import refers to.

``module_ids`` names every analysed file: Python files by their dotted import
path (``email/mime/text.py`` -> ``email.mime.text``, ``pkg/__init__.py`` -> ``pkg``),
other languages by their path without extension, dots for slashes. Colliding ids
(``a.js`` beside ``a.ts``) fall back to the full path, so ids stay unique.

``ImportIndex.target(record, imp)`` answers, per language, what one ``Import``
points at inside the project: a module, a symbol in a module, or a Go package
(all files of a directory). External imports answer None.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]

_JS_LANGS = frozenset({"javascript", "typescript", "tsx"})
_JS_SUFFIXES = (
    "", ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts",
    "/index.ts", "/index.tsx", "/index.d.ts", "/index.js", "/index.jsx", "/index.mjs",
)  # fmt: skip


def _base_id(path: str, language: str) -> str:
    stem = path
    for suffix in (".d.ts", ".pyi", ".py", ".d.mts", ".d.cts"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        stem = posixpath.splitext(stem)[0]
    if language == "python" and (stem == "__init__" or stem.endswith("/__init__")):
        stem = stem[: -len("__init__")].rstrip("/") or posixpath.basename(posixpath.dirname(path))
    return stem.replace("/", ".") or path


def module_ids(records: dict[str, Record]) -> dict[str, str]:
    """path -> unique module id."""
    by_id: dict[str, list[str]] = defaultdict(list)
    for path, record in records.items():
        by_id[_base_id(path, record["language"])].append(path)
    ids: dict[str, str] = {}
    for module_id, paths in by_id.items():
        if len(paths) == 1:
            ids[paths[0]] = module_id
        else:
            for path in paths:
                ids[path] = path
    return ids


@dataclass(frozen=True, slots=True)
class Target:
    """What an import binds: ``paths`` (one module, or a Go package's files) and
    optionally one ``symbol`` inside them."""

    paths: tuple[str, ...]
    symbol: str | None = None


class ImportIndex:
    def __init__(self, records: dict[str, Record], ids: dict[str, str]) -> None:
        self.records = records
        self.ids = ids
        self.paths = set(records)
        self.python_ids: dict[str, str] = {}
        self.python_suffixes: dict[str, list[str]] = defaultdict(list)
        self.dirs: dict[str, list[str]] = defaultdict(list)
        self.by_basename: dict[str, list[str]] = defaultdict(list)
        for path, record in records.items():
            self.dirs[posixpath.dirname(path)].append(path)
            self.by_basename[posixpath.basename(path)].append(path)
            if record["language"] == "python":
                module_id = ids[path]
                self.python_ids[module_id] = path
                parts = module_id.split(".")
                for start in range(1, len(parts)):
                    self.python_suffixes[".".join(parts[start:])].append(path)

    # -- per-language targets ---------------------------------------------------
    def target(self, record: Record, imp: dict[str, Any]) -> Target | None:
        language = record["language"]
        if language == "python":
            return self._python(record, imp)
        if language in _JS_LANGS:
            return self._js(record, imp)
        if language == "go":
            return self._go(imp)
        if language == "rust":
            return self._rust(record, imp)
        if language == "java":
            return self._java(imp)
        return None

    def python_module(self, dotted: str) -> str | None:
        """Path of the project module with this dotted name (exact, else unique suffix)."""
        path = self.python_ids.get(dotted)
        if path is not None:
            return path
        candidates = self.python_suffixes.get(dotted, [])
        return candidates[0] if len(candidates) == 1 else None

    def _python(self, record: Record, imp: dict[str, Any]) -> Target | None:
        module = _absolute_python(record["path"], self.ids[record["path"]], imp["module"])
        name = imp["name"]
        if module is None:
            return None
        if name and name != "*":
            submodule = self.python_module(f"{module}.{name}" if module else name)
            if submodule is not None:
                return Target((submodule,))
        if not name and not imp["alias"]:
            # ``import a.b`` binds ``a``: the walk from ``a`` reaches ``a.b`` later.
            module = module.split(".")[0]
        path = self.python_module(module) if module else None
        if path is None:
            return None
        return Target((path,), name if name and name != "*" else None)

    def _js(self, record: Record, imp: dict[str, Any]) -> Target | None:
        source = imp["module"]
        if not source.startswith("."):
            return None  # a package from node_modules: outside the project
        base = posixpath.normpath(posixpath.join(posixpath.dirname(record["path"]), source))
        for suffix in _JS_SUFFIXES:
            if base + suffix in self.paths:
                name = imp["name"]
                return Target((base + suffix,), name if name and name != "*" else None)
        return None

    def _go(self, imp: dict[str, Any]) -> Target | None:
        import_path = imp["module"].strip("/")
        # The import path's longest tail that names a project directory; module
        # prefixes (github.com/org/repo/...) and GOROOT layouts both end that way.
        parts = import_path.split("/")
        for start in range(len(parts)):
            directory = "/".join(parts[start:])
            for candidate in (directory, f"src/{directory}"):
                files = [p for p in self.dirs.get(candidate, []) if p.endswith(".go")]
                if files:
                    return Target(tuple(sorted(files)))
        return None

    def _rust(self, record: Record, imp: dict[str, Any]) -> Target | None:
        parts = imp["module"].split("::")
        if not parts or parts[0] not in ("crate", "self", "super"):
            return None  # std or another crate
        directory = posixpath.dirname(record["path"])
        if parts[0] == "crate":
            directory = self._crate_root(directory)
        elif parts[0] == "super":
            directory = posixpath.dirname(directory)
        rest = [p for p in parts[1:] if p not in ("self", "super")]
        name = imp["name"]
        for extra in ([name] if name and name != "*" else []), []:
            candidate = "/".join([directory, *rest, *extra]).strip("/")
            for path in (f"{candidate}.rs", f"{candidate}/mod.rs"):
                if path in self.paths:
                    return Target((path,), None if extra else (name if name != "*" else None))
        return None

    def _crate_root(self, directory: str) -> str:
        probe = directory
        while True:
            if any(f"{probe}/{root}".lstrip("/") in self.paths for root in ("lib.rs", "main.rs")):
                return probe
            if not probe:
                return directory
            probe = posixpath.dirname(probe)

    def _java(self, imp: dict[str, Any]) -> Target | None:
        name = imp["name"]
        if not name or name == "*":
            return None
        dotted = imp["module"]
        # ``import a.b.C`` is a/b/C.java; ``import static a.b.C.m`` is member m of
        # a/b/C.java. Source roots (src/main/java/...) vary, so match path tails.
        for tail, symbol in ((f"{dotted}.{name}", name), (dotted, name)):
            relative = tail.replace(".", "/") + ".java"
            for path in self.by_basename.get(posixpath.basename(relative), []):
                if path == relative or path.endswith("/" + relative):
                    return Target((path,), symbol)
        return None


def _absolute_python(path: str, module_id: str, module: str) -> str | None:
    """Resolve a Python relative import (``..pkg``) against the importing module."""
    if not module.startswith("."):
        return module
    level = len(module) - len(module.lstrip("."))
    is_package = path.endswith("__init__.py") or path.endswith("__init__.pyi")
    parts = module_id.split(".") if is_package else module_id.split(".")[:-1]
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    rest = module.lstrip(".")
    return ".".join([*base, rest] if rest else base)
