"""Shared machinery for the tree-sitter language parsers.

A language parser is a small module with one ``LanguageParser`` subclass: it names
its grammar, its extensions and its query file (``queries/<language>-tags.scm``),
and implements ``extract`` over a parsed tree. Grammar, parser and compiled query
are built lazily, once per process: the scanner runs parsers in worker processes
and tree-sitter objects do not pickle.

Strategy for speed: let the compiled query find the nodes (C speed) and keep the
Python side to assembling records from captures; never walk the whole tree in
Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import tree_sitter as ts

from llmstruct.engine.model import FileAnalysis

_WS = re.compile(r"\s+")


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
