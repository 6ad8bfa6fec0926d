"""A loaded struct.json, indexed for answering context requests fast.

Built once per struct (the context manager keeps it while the file is
unchanged): flat symbol and module tables, the token cost of every block the
renderer can emit, a BM25 index and the code graph with its global centrality.
Per-request work then touches only arrays and a few hundred candidates.

Structs from other v2.1 producers lack what llmstruct adds (signatures, byte
ranges, token counts). They load all the same: signatures are rebuilt from
names and parameters, sources are cut by line range, and missing counts are
counted here, once.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmstruct._ext.lru import LRUCache
from llmstruct.engine.forms import forms, source_text
from llmstruct.engine.graphrank import CodeGraph
from llmstruct.engine.lexical import LexicalIndex
from llmstruct.engine.tokens import TokenCounter

#: How the renderer marks a symbol's lines, per language (a comment inside the fence).
COMMENT = {"python": "#"}
FENCE = {"python": "python", "javascript": "javascript", "typescript": "typescript",
         "tsx": "tsx", "go": "go", "rust": "rust", "java": "java"}  # fmt: skip
SOURCE_CACHE_BYTES = 32 * 1024 * 1024
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "testdata", "spec"})
_DEMOTED_DIRS = frozenset({"examples", "example", "vendor", "third_party", "demo", "demos"})


@dataclass(slots=True)
class Module:
    path: str
    module_id: str
    language: str
    category: str
    summary: str
    exports: frozenset[str]
    lines: int
    functions: int
    classes: int
    header: str = ""
    header_cost: int = 0
    demoted: bool = False
    symbols: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Symbol:
    uid: str
    kind: str  # "function", "method" or "class"
    name: str
    qualname: str
    module: int
    line_range: tuple[int, int]
    byte_range: tuple[int, int] | None
    head_end: int | None  # classes: where their first method starts
    signature: str
    docstring: str
    costs: list[int]  # block cost per level (marker line included); -1 unavailable
    marker: str
    exported: bool
    hash: str | None
    calls: list[str]
    called_by: list[str]


class StructIndex:
    def __init__(self, struct: dict[str, Any], root: Path | None, counter: TokenCounter) -> None:
        self.struct = struct
        self.root = root
        self.counter = counter
        metadata = struct.get("metadata", {})
        self.project = str(metadata.get("project_name") or (root.name if root else "project"))
        self.summary = str(metadata.get("summary") or "")
        self.modules: list[Module] = []
        self.symbols: list[Symbol] = []
        self.by_uid: dict[str, int] = {}
        self.by_path: dict[str, int] = {}
        # Recently rendered files, path -> (mtime, size, bytes); bounded by bytes.
        self._sources = LRUCache(SOURCE_CACHE_BYTES)
        for module in struct.get("modules", []):
            self._add_module(module)
        self._module_ids = {m.module_id: i for i, m in enumerate(self.modules)}
        self.lexical = LexicalIndex([self._document(s) for s in self.symbols])
        self.graph = CodeGraph(len(self.symbols) + len(self.modules), self._edges())
        self.centrality = self.graph.centrality()
        self.public = public_boost(self)
        # Planning gathers from these with numpy instead of walking Symbol objects.
        self.cost_matrix = np.array([s.costs for s in self.symbols], dtype=np.int64).reshape(
            len(self.symbols), 4
        )
        self.symbol_module = np.array([s.module for s in self.symbols], dtype=np.int64)
        self.demoted = np.array([self.modules[s.module].demoted for s in self.symbols], dtype=bool)
        self.header_costs = np.array([m.header_cost for m in self.modules], dtype=np.int64)

    # -- loading ----------------------------------------------------------------------
    def _add_module(self, raw: dict[str, Any]) -> None:
        path = str(raw["path"])
        language = str(raw.get("language") or _language_of(path))
        parts = set(path.split("/")[:-1])
        module = Module(
            path=path,
            module_id=str(raw.get("module_id") or path),
            language=language,
            category=str(raw.get("category") or "core"),
            summary=str(raw.get("summary") or _first_line(raw.get("module_doc") or "")),
            exports=frozenset(str(x) for x in raw.get("exports") or ()),
            lines=int(raw.get("lines") or 0),
            functions=len(raw.get("functions") or ()),
            classes=len(raw.get("classes") or ()),
            demoted=bool(parts & (_TEST_DIRS | _DEMOTED_DIRS)) or raw.get("category") == "test",
        )
        module.header = f"## {path}\n```{FENCE.get(language, '')}\n"
        module.header_cost = self.counter.count(module.header) + self.counter.count(FOOTER)
        index = len(self.modules)
        self.modules.append(module)
        self.by_path[path] = index
        for function in raw.get("functions") or ():
            self._add_symbol(module, index, function, "function", None)
        for cls in raw.get("classes") or ():
            methods = cls.get("methods") or ()
            starts = [m["byte_range"][0] for m in methods if m.get("byte_range")]
            self._add_symbol(module, index, cls, "class", min(starts, default=None))
            for method in methods:
                self._add_symbol(module, index, method, "method", None, owner=str(cls["name"]))

    def _add_symbol(
        self, module: Module, index: int, raw: dict, kind: str, head_end, owner: str | None = None
    ) -> None:
        name = str(raw["name"])
        qualname = f"{owner}.{name}" if owner else name
        line_range = tuple(raw.get("line_range") or (0, 0))
        signature = str(raw.get("signature") or _synthetic_signature(name, raw, kind))
        marker = f"{COMMENT.get(module.language, '//')} L{line_range[0]}-{line_range[1]}\n"
        byte_range = tuple(raw["byte_range"]) if raw.get("byte_range") else None
        symbol = Symbol(
            uid=str(raw.get("uid") or f"{module.module_id}#{qualname}"),
            kind=kind,
            name=name,
            qualname=qualname,
            module=index,
            line_range=(int(line_range[0]), int(line_range[1])),
            byte_range=byte_range,
            head_end=head_end,
            signature=signature,
            docstring=str(raw.get("docstring") or ""),
            costs=[],
            marker=marker,
            exported=bool(raw.get("exported", not name.startswith("_"))),
            hash=raw.get("hash"),
            calls=[c for c in raw.get("calls") or () if "#" in c],
            called_by=list(raw.get("called_by") or ()),
        )
        symbol.costs = self._costs(symbol, raw.get("tokens"), module)
        self.by_uid.setdefault(symbol.uid, len(self.symbols))
        module.symbols.append(len(self.symbols))
        self.symbols.append(symbol)

    def _costs(self, symbol: Symbol, tokens: Any, module: Module) -> list[int]:
        marker = self.counter.count(symbol.marker)
        if isinstance(tokens, dict) and all(isinstance(tokens.get(k), int) for k in _LEVEL_KEYS):
            counts = [tokens[k] for k in _LEVEL_KEYS]
            if symbol.byte_range is None or self.root is None:
                counts[0] = -1
        else:  # a foreign struct: count what can be rendered, once
            texts = self.forms(symbol)
            counts = [self.counter.count(t) if t is not None else -1 for t in texts]
        return [c + marker if c >= 0 else -1 for c in counts]

    def _document(self, symbol: Symbol) -> list[tuple[str, float]]:
        module = self.modules[symbol.module]
        stem = posixpath.splitext(module.path)[0]
        fields = [(symbol.name, 3.0), (stem, 1.0), (symbol.docstring[:2000], 1.0)]
        if "." in symbol.qualname:
            fields.append((symbol.qualname.rsplit(".", 1)[0], 1.5))
        return fields

    def _edges(self) -> list[tuple[int, int, float]]:
        offset = len(self.symbols)
        edges: list[tuple[int, int, float]] = []
        owner: dict[tuple[int, str], int] = {}
        for i, symbol in enumerate(self.symbols):
            edges.append((i, offset + symbol.module, 1.0))
            if symbol.kind == "class":
                owner[(symbol.module, symbol.name)] = i
            elif symbol.kind == "method":
                cls = owner.get((symbol.module, symbol.qualname.rsplit(".", 1)[0]))
                if cls is not None:
                    edges.append((i, cls, 2.0))
            for target in symbol.calls:
                j = self.by_uid.get(target)
                if j is not None and j != i:
                    edges.append((i, j, 1.0))
        for raw in self.struct.get("modules", []):
            source = self.by_path.get(raw["path"])
            for dep in raw.get("depends_on") or ():
                target = self._module_by_id(dep)
                if target is not None and source is not None:
                    edges.append((offset + source, offset + target, 0.5))
        return edges

    def _module_by_id(self, module_id: str) -> int | None:
        return self._module_ids.get(module_id)

    # -- rendering support ------------------------------------------------------------
    def source(self, symbol: Symbol) -> str | None:
        """The symbol's current source (class: its head), or None when the file is gone
        or has changed since the scan (its counts would no longer be true)."""
        if self.root is None:
            return None
        module = self.modules[symbol.module]
        data = self._file(module.path)
        if data is None:
            return None
        if symbol.byte_range is not None:
            start, stop = symbol.byte_range
            if symbol.hash and hashlib.sha256(data[start:stop]).hexdigest() != symbol.hash:
                return None
            end = stop if symbol.head_end is None else max(symbol.head_end, start)
            return source_text(data, start, end)
        first, last = symbol.line_range
        if first <= 0:
            return None
        lines = data.decode("utf-8", "replace").splitlines()[first - 1 : last]
        return "\n".join(lines)

    def _file(self, path: str) -> bytes | None:
        assert self.root is not None
        full = os.path.join(self.root, path)
        try:
            info = os.stat(full)
            cached = self._sources.get(path)
            if cached and cached[:2] == (info.st_mtime_ns, info.st_size):
                return cached[2]
            with open(full, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        self._sources.set(path, (info.st_mtime_ns, info.st_size, data), len(data) + 100)
        return data

    def forms(self, symbol: Symbol) -> list[str | None]:
        """Text of each level (None: unavailable), exactly as counted."""
        language = self.modules[symbol.module].language
        source = self.source(symbol)
        texts: list[str | None] = list(
            forms(symbol.qualname, symbol.signature, symbol.docstring, source or "", language)
        )
        if source is None:
            texts[0] = None
        return texts

    def block(self, symbol: Symbol, level: int) -> str | None:
        text = self.forms(symbol)[level]
        return None if text is None else symbol.marker + text


FOOTER = "```\n\n"
_LEVEL_KEYS = ("full", "doc", "signature", "name")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _synthetic_signature(name: str, raw: dict, kind: str) -> str:
    if kind == "class":
        bases = raw.get("bases") or []
        return f"class {name}({', '.join(bases)})" if bases else f"class {name}"
    return f"{name}({', '.join(str(p) for p in raw.get('parameters') or [])})"


def _language_of(path: str) -> str:
    from llmstruct.engine.parsers import language_of

    return language_of(path) or "text"


_ENTRY_STEMS = frozenset({"__init__", "index", "lib", "mod"})


def _reexports(index: StructIndex) -> dict[str, frozenset[str]]:
    """Directory -> names its package entry module (``__init__.py``, ``index.ts``,
    ``lib.rs``, ``mod.rs``) exports: a package's public API lives in submodules."""
    found: dict[str, set[str]] = {}
    for module in index.modules:
        directory, name = posixpath.split(module.path)
        if posixpath.splitext(name)[0] in _ENTRY_STEMS and module.exports:
            found.setdefault(directory, set()).update(module.exports)
    return {directory: frozenset(names) for directory, names in found.items()}


def public_boost(index: StructIndex) -> np.ndarray:
    """Per symbol: 1 for names a module exports on purpose (``__all__``, ``export``)
    or its package re-exports, 0.25 for other public names, 0 for private ones;
    tests, examples and vendored code lose 0.5 so they rank after what they use."""
    reexports = _reexports(index)
    boost = np.zeros(len(index.symbols))
    for i, symbol in enumerate(index.symbols):
        module = index.modules[symbol.module]
        public = symbol.kind != "method" and (
            symbol.name in module.exports or _reexported(symbol.name, module.path, reexports)
        )
        if public:
            boost[i] = 1.0
        elif symbol.exported and not symbol.name.startswith("_"):
            boost[i] = 0.25
        if module.demoted:
            boost[i] -= 0.5
    return boost


def _reexported(name: str, path: str, reexports: dict[str, frozenset[str]]) -> bool:
    directory = posixpath.dirname(path)
    while True:
        if name in reexports.get(directory, ()):
            return True
        if not directory:
            return False
        directory = posixpath.dirname(directory)
