"""The helpers every parser shares (``parsers/base.py``), on small Python trees."""

from __future__ import annotations

import tree_sitter as ts
import tree_sitter_python

from llmstruct.engine.model import FileAnalysis, Function
from llmstruct.engine.parsers.base import (
    CaptureBuilder,
    attach_calls,
    child_at,
    compact,
    named_child_at,
    text,
)

LANGUAGE = ts.Language(tree_sitter_python.language())


def tree(source: bytes) -> ts.Node:
    return ts.Parser(LANGUAGE).parse(source).root_node


def calls_in(root: ts.Node) -> list[ts.Node]:
    """Every call's callee (the ``function`` field), in document order."""
    found: list[ts.Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "call":
            found.append(node.child_by_field_name("function"))
        stack.extend(reversed(node.children))
    return found


def entry(node: ts.Node) -> Function:
    return Function("f", (1, 1), (node.start_byte, node.end_byte), "")


def as_text(node: ts.Node, source: bytes) -> str:
    return text(node, source)


def test_child_accessors_return_none_past_either_end() -> None:
    root = tree(b"a = 1\nb = 2\n")
    assert child_at(root, 0) == root.child(0)
    assert child_at(root, -1) == root.child(1)
    assert child_at(root, 2) is None
    assert child_at(root, -3) is None
    assert child_at(None, 0) is None
    statement = root.named_child(0)
    assert named_child_at(statement, 0) == statement.named_child(0)
    assert named_child_at(statement, 1) is None
    assert named_child_at(statement, -1) == statement.named_child(0)
    assert named_child_at(None, -1) is None


def test_compact_removes_all_whitespace() -> None:
    assert compact(" a .\n b\t. c ") == "a.b.c"


def test_attach_calls_assigns_by_range_in_source_order_once_each() -> None:
    source = b"x()\ndef f():\n    b(); a(); b()\ny()\ndef g():\n    c()\nz()\n"
    root = tree(source)
    f, g = (entry(node) for node in root.named_children if node.type == "function_definition")
    callees = calls_in(root)
    attach_calls([g, f], source, (list(reversed(callees)), as_text))
    assert f.calls == ["b", "a"]
    assert g.calls == ["c"]


def test_attach_calls_keeps_group_order_at_one_position_and_skips_none() -> None:
    source = b"def f():\n    a(); b()\n"
    root = tree(source)
    f = entry(root.named_child(0))
    callees = calls_in(root)
    attach_calls(
        [f],
        source,
        (callees, lambda node, src: None if text(node, src) == "b" else "first"),
        (callees, lambda node, src: "second"),
    )
    assert f.calls == ["first", "second"]


def test_attach_calls_memo_renders_each_text_once_per_group() -> None:
    source = b"def f():\n    a(); a(); b()\ndef g():\n    a()\n"
    root = tree(source)
    f, g = (entry(node) for node in root.named_children)
    rendered: list[str] = []

    def render(node: ts.Node, src: bytes) -> str:
        rendered.append(text(node, src))
        return text(node, src)

    attach_calls([f, g], source, (calls_in(root), render), memo=True)
    assert sorted(rendered) == ["a", "b"]
    assert (f.calls, g.calls) == (["a", "b"], ["a"])


def test_attach_calls_without_entries_or_callees_changes_nothing() -> None:
    source = b"def f():\n    a()\n"
    f = entry(tree(source).named_child(0))
    attach_calls([], source, (calls_in(tree(source)), as_text))
    attach_calls([f], source)
    assert f.calls == []


def test_capture_builder_orders_captures_once_each() -> None:
    source = b"b = 1\na = 2\n"
    root = tree(source)
    first, second = root.named_children
    out = FileAnalysis(path="x.py", language="python", line_count=2)
    builder = CaptureBuilder({"x": [second, first, second], "y": [first]}, source, out)
    assert builder.ordered("x") == [first, second]
    assert builder.ordered("x", "y") == [first, second]
    assert builder.ordered("missing") == []
