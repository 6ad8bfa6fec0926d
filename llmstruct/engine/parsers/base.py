"""Shared machinery for the tree-sitter language parsers.

A language parser is a small module with one ``LanguageParser`` subclass: it names
its grammar, its extensions and its query file (``queries/<language>-tags.scm``),
and implements ``extract`` over a parsed tree. Grammar, parser and compiled query
are built lazily, once per process: the scanner runs parsers in worker processes
and tree-sitter objects do not pickle.

Strategy for speed: let the compiled query find the nodes (C speed) and keep the
Python side to assembling records from captures; never walk the whole tree in
Python.

Besides the base class this module holds what every parser shares: text and
comment helpers, safe child access (``child_at``/``named_child_at``),
``attach_calls`` (calls to their enclosing definition by bisecting byte ranges)
and ``CaptureBuilder``, the base of the Go, Rust and Java record builders.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from importlib import resources
from operator import attrgetter, itemgetter
from typing import Any

import tree_sitter as ts

from llmstruct.engine.model import FileAnalysis, Function

_WS = re.compile(r"\s+")
#: Sort key putting nodes in document order (outer before inner at the same start).
_SPAN = attrgetter("start_byte", "end_byte")
_POSITION = itemgetter(0, 1)

#: Renders a callee node (and the file's bytes) as a call name; None skips it.
Render = Callable[[ts.Node, bytes], str | None]


def load_query_source(name: str) -> str:
    """Text of ``queries/<name>-tags.scm`` shipped with the package."""
    return (resources.files(__package__) / "queries" / f"{name}-tags.scm").read_text("utf-8")


def text(node: ts.Node | None, source: bytes) -> str:
    """The node's source text, decoded leniently (invalid UTF-8 never raises)."""
    if node is None:
        return ""
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def collapse(value: str) -> str:
    """Collapse every whitespace run to one space (for one-line signatures)."""
    return _WS.sub(" ", value).strip()


def compact(value: str) -> str:
    """Remove all whitespace (dotted paths written across lines: ``a . b`` -> ``a.b``)."""
    return "".join(value.split())


def child_at(node: ts.Node | None, index: int) -> ts.Node | None:
    """``node.child(index)``, or None past either end; negative indices count from the end.

    py-tree-sitter 0.26 raises IndexError past the end (and ValueError for a
    negative index) instead of returning None.
    """
    if node is None:
        return None
    if index < 0:
        index += node.child_count
        if index < 0:
            return None
    try:
        return node.child(index)
    except IndexError:
        return None


def named_child_at(node: ts.Node | None, index: int) -> ts.Node | None:
    """``node.named_child(index)``, or None past either end (as ``child_at``)."""
    if node is None:
        return None
    if index < 0:
        index += node.named_child_count
        if index < 0:
            return None
    try:
        return node.named_child(index)
    except IndexError:
        return None


def lines_of(node: ts.Node) -> tuple[int, int]:
    """1-based inclusive line range of a node."""
    return node.start_point[0] + 1, node.end_point[0] + 1


def head_signature(node: ts.Node, body: ts.Node | None, source: bytes) -> str:
    """Definition head: from the node's start to the start of its body, collapsed."""
    end = body.start_byte if body is not None else node.end_byte
    head = source[node.start_byte : end].decode("utf-8", "replace")
    return collapse(head).rstrip(" {:=").rstrip() if body is not None else collapse(head)


def dedent_lines(lines: list[str]) -> str:
    """Strip common leading indentation and surrounding blank lines."""
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:].rstrip() for line in lines)


_BLOCK_OPEN = re.compile(r"^/\*+!?\s?")
_BLOCK_STARS = re.compile(r"^[ \t]*\*(?!/) ?", re.MULTILINE)
# `` ?`` not ``\s?``: a tab after ``//`` is content (Go doc examples are tab-indented).
_LINE_MARK = re.compile(r"^\s*(///?!?|#+) ?")


def clean_comment(raw: str) -> str:
    """Comment text without its markers: ``/** ... */``, ``///``, ``//``, ``#``."""
    stripped = raw.strip()
    if stripped.startswith("/*"):
        body = _BLOCK_OPEN.sub("", stripped)
        if body.endswith("*/"):  # string ops, not a regex: Javadoc-heavy code is full of these
            body = body[:-2].rstrip("*").rstrip()
        return dedent_lines(_BLOCK_STARS.sub("", body).splitlines())
    return dedent_lines([_LINE_MARK.sub("", line) for line in stripped.splitlines()])


def preceding_comments(
    node: ts.Node, source: bytes, accept: Callable[[str], bool] = lambda raw: True
) -> str:
    """Doc comment directly above ``node``: adjacent comment siblings, no blank line between.

    ``accept`` filters comment texts (e.g. only ``/**`` blocks for JSDoc/Javadoc,
    only ``///`` for Rust); the run stops at the first comment it rejects.
    """
    parts: list[str] = []
    expected_row = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and sibling.type in ("comment", "line_comment", "block_comment"):
        if sibling.end_point[0] < expected_row - 1:
            break
        raw = text(sibling, source)
        if not accept(raw):
            break
        parts.append(raw)
        expected_row = sibling.start_point[0]
        sibling = sibling.prev_sibling
    return "\n".join(clean_comment(raw) for raw in reversed(parts))


def dedupe(values: list[str]) -> list[str]:
    """Keep the first occurrence of each value, in order."""
    return list(dict.fromkeys(values))


def attach_calls(
    entries: Iterable[Function],
    source: bytes,
    *callees: tuple[Iterable[ts.Node], Render],
    memo: bool = False,
) -> None:
    """Give each entry the calls written inside its byte range, in source order, once each.

    ``entries`` are the top-level functions and methods that own calls; their byte
    ranges must be disjoint. ``callees`` are (callee nodes, render) groups, in any
    order (query captures do not come in document order); a callee belongs to the
    entry whose range holds it, found by bisecting the sorted ranges, and callees
    outside every entry (module level, initialisers) belong to nothing. Calls at
    the same position keep the order of the groups. With ``memo`` each distinct
    callee text is rendered once per group: only for renders that depend on the
    text alone.
    """
    ordered = sorted(entries, key=lambda function: function.byte_range[0])
    if not ordered:
        return
    starts = [function.byte_range[0] for function in ordered]
    ends = [function.byte_range[1] for function in ordered]
    found: list[list[tuple[int, int, ts.Node, Render, dict[bytes, str | None] | None]]] = [
        [] for _ in ordered
    ]
    for nodes, render in callees:
        rendered: dict[bytes, str | None] | None = {} if memo else None
        for node in nodes:
            start = node.start_byte
            index = bisect_right(starts, start) - 1
            if index >= 0:
                end = node.end_byte
                if end <= ends[index]:
                    found[index].append((start, end, node, render, rendered))
    for function, spots in zip(ordered, found, strict=True):
        if not spots:
            continue
        spots.sort(key=_POSITION)
        names: list[str] = []
        for start, end, node, render, rendered in spots:
            if rendered is None:
                name = render(node, source)
            else:  # the same callee text recurs a lot (self.assert...)
                raw = source[start:end]
                if raw in rendered:
                    name = rendered[raw]
                else:
                    name = rendered[raw] = render(node, source)
            if name:
                names.append(name)
        function.calls = dedupe(names)


class CaptureBuilder:
    """Turns one file's captures into its FileAnalysis records (Go, Rust, Java).

    Subclasses implement ``build``; ``run`` is a parser's whole ``extract``.
    """

    def __init__(self, captures: dict[str, list[ts.Node]], source: bytes, out: FileAnalysis):
        self.caps = captures
        self.src = source
        self.out = out
        #: Functions and methods with a body: the owners of the file's calls.
        self.bodies: list[Function] = []

    @classmethod
    def run(cls, parser: LanguageParser, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        analysis = FileAnalysis(
            path=path, language=parser.language, line_count=parser.line_count(source)
        )
        cls(parser.captures(tree.root_node), source, analysis).build()
        return analysis

    def build(self) -> None:
        raise NotImplementedError

    def ordered(self, *names: str) -> list[ts.Node]:
        """These captures' nodes in document order (the cursor does not guarantee it), once each."""
        nodes = {node.id: node for name in names for node in self.caps.get(name, ())}
        return sorted(nodes.values(), key=_SPAN)


class LanguageParser:
    """Base class: subclasses set the class attributes and implement ``extract``."""

    #: Name used in struct.json and for the query file ``queries/<language>-tags.scm``.
    language: str = ""
    extensions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._parser: ts.Parser | None = None
        self._query: ts.Query | None = None
        self._language: ts.Language | None = None

    # -- grammar plumbing ------------------------------------------------------
    def grammar(self) -> Any:
        """Return the grammar's language pointer (``tree_sitter_x.language()``)."""
        raise NotImplementedError

    def query_name(self) -> str:
        return self.language

    def _ensure(self) -> None:
        if self._parser is None:
            self._language = ts.Language(self.grammar())
            self._parser = ts.Parser(self._language)
            self._query = ts.Query(self._language, load_query_source(self.query_name()))

    @property
    def query(self) -> ts.Query:
        self._ensure()
        assert self._query is not None
        return self._query

    def matches(self, node: ts.Node) -> list[tuple[int, dict[str, list[ts.Node]]]]:
        """Run this language's query over ``node``."""
        return ts.QueryCursor(self.query).matches(node)

    def captures(self, node: ts.Node) -> dict[str, list[ts.Node]]:
        """Run this language's query over ``node``: capture name -> nodes, in no set order."""
        return ts.QueryCursor(self.query).captures(node)

    # -- entry point -----------------------------------------------------------
    def parse(self, source: bytes, path: str) -> FileAnalysis:
        """Parse ``source`` (the file's bytes) and extract its structure."""
        self._ensure()
        assert self._parser is not None
        tree = self._parser.parse(source)
        analysis = self.extract(tree, source, path)
        analysis.syntax_errors = _count_errors(tree.root_node) if tree.root_node.has_error else 0
        return analysis

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        raise NotImplementedError

    @staticmethod
    def line_count(source: bytes) -> int:
        if not source:
            return 0
        return source.count(b"\n") + (0 if source.endswith(b"\n") else 1)


def _count_errors(root: ts.Node) -> int:
    """Number of ERROR/MISSING nodes, walking only into subtrees that have errors."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
            continue
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return count
