"""Python parser.

Strategy: ``queries/python-tags.scm`` captures, in one pass over the tree, every
``def`` and ``class`` (at any depth), module-level ``name = lambda``, every callee
expression, every import statement and the ``__all__`` assignments. The Python
side only assembles records:

* Nesting is decided from byte ranges, not by walking parents: definitions are
  sorted by start byte and a stack of open definitions gives each one its
  innermost enclosing ``def``/``class``. A ``def`` with no enclosing definition is
  a top-level function (so the usual ``try: ... except ImportError: def f()`` and
  ``if sys.platform ...: def f()`` fallbacks count); a ``def`` whose innermost
  enclosing definition is a top-level class is one of its methods (also when it
  sits in an ``if`` inside the class body). Everything else is nested and gets no
  entry: nested classes, functions inside functions, methods of nested classes.
  ``@overload`` stubs are dropped when the same scope implements the name.
* Calls are assigned to the top-level function or method whose byte range holds
  them, by bisecting the sorted, disjoint entry ranges (``base.attach_calls``).
  Calls at module or class-body level belong to nothing.
* Callees are kept when they are dotted names (``f``, ``self.x.y``); a chained
  callee keeps its inner calls as ``()`` without arguments (``a(1).b(2)`` gives
  ``a`` and ``a().b``); subscripted, parenthesised or lambda callees are skipped.

Conventions for call resolution: every ``import``/``from`` statement anywhere in
the file (functions, ``if TYPE_CHECKING:``, ``try``) gives one ``Import`` per
bound name; ``module`` is the dotted path as written, relative ones keep their
dots (``.``, ``..pkg``). ``import a.b`` gives ``Import("a.b")`` with no name or
alias although Python binds ``a``; ``from __future__`` imports are not recorded.
``exports`` are the static strings of ``__all__`` list/tuple literals (``=``,
``+=`` and ``+`` of literals), else empty; ``exported`` means not underscored,
dunders included.
"""

from __future__ import annotations

import ast
import inspect
import re

import tree_sitter as ts
import tree_sitter_python

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    LanguageParser,
    attach_calls,
    child_at,
    collapse,
    compact,
    dedupe,
    lines_of,
    named_child_at,
    text,
)

_DOTTED = re.compile(r"[^\W\d][\w.]*")
_DROPPED_PARAMETERS = frozenset({"keyword_separator", "positional_separator", "comment"})


class PythonParser(LanguageParser):
    language = "python"
    extensions = (".py", ".pyi")

    def grammar(self) -> object:
        return tree_sitter_python.language()

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        root = tree.root_node
        captures = self.captures(root)
        functions, classes = _definitions(
            captures.get("definition.function", []) + captures.get("definition.class", []),
            source,
        )
        functions += [_lambda(node, source) for node in captures.get("definition.lambda", [])]
        functions = _fold_overloads(sorted(functions, key=lambda function: function.byte_range))
        for cls in classes:
            cls.methods = _fold_overloads(cls.methods)
        entries = functions + [method for cls in classes for method in cls.methods]
        attach_calls(entries, source, (captures.get("name.reference.call", []), _callee), memo=True)
        return FileAnalysis(
            path=path,
            language=self.language,
            line_count=self.line_count(source),
            module_doc=_docstring(root, source),
            imports=_imports(captures.get("reference.import", []), source),
            functions=functions,
            classes=classes,
            exports=_exports(captures.get("definition.exports", []), source),
        )


# -- definitions ---------------------------------------------------------------


def _definitions(nodes: list[ts.Node], source: bytes) -> tuple[list[Function], list[ClassDef]]:
    """Top-level functions and classes (with methods) from all def/class nodes."""
    functions: list[Function] = []
    classes: list[ClassDef] = []
    # (node, its record or None when it has no entry of its own), innermost last.
    stack: list[tuple[ts.Node, Function | ClassDef | None]] = []
    for node in sorted(nodes, key=lambda n: n.start_byte):
        while stack and stack[-1][0].end_byte <= node.start_byte:
            stack.pop()
        parent = stack[-1][1] if stack else None
        record: Function | ClassDef | None = None
        if not stack:
            if node.type == "class_definition":
                record = _class(node, source)
                if record is not None:
                    classes.append(record)
            else:
                record = _function(node, source)
                if record is not None:
                    functions.append(record)
        elif isinstance(parent, ClassDef) and node.type == "function_definition":
            record = _function(node, source)
            if record is not None:
                parent.methods.append(record)
        stack.append((node, record))
    return functions, classes


def _function(node: ts.Node, source: bytes) -> Function | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    first = child_at(node, 0)
    label = text(name, source)
    return Function(
        name=label,
        line_range=lines_of(node),
        byte_range=(node.start_byte, node.end_byte),
        signature=_head(node, _last_field(node, "return_type", "parameters", "name"), source),
        parameters=_parameters(node.child_by_field_name("parameters"), source),
        decorators=_decorators(node, source),
        docstring=_docstring(body, source),
        is_async=first is not None and first.type == "async",
        exported=_is_public(label),
    )


def _lambda(node: ts.Node, source: bytes) -> Function:
    """``name = lambda ...: ...`` at module level (the query guarantees the shape)."""
    name = text(node.child_by_field_name("left"), source)
    value = node.child_by_field_name("right")
    params = value.child_by_field_name("parameters") if value is not None else None
    return Function(
        name=name,
        line_range=lines_of(node),
        byte_range=(node.start_byte, node.end_byte),
        signature=_head(node, params or child_at(value, 0) or node, source),
        parameters=_parameters(params, source),
        exported=_is_public(name),
    )


def _class(node: ts.Node, source: bytes) -> ClassDef | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    return ClassDef(
        name=text(name, source),
        line_range=lines_of(node),
        byte_range=(node.start_byte, node.end_byte),
        signature=_head(node, _last_field(node, "superclasses", "type_parameters", "name"), source),
        bases=_bases(node.child_by_field_name("superclasses"), source),
        decorators=_decorators(node, source),
        docstring=_docstring(body, source),
        exported=_is_public(text(name, source)),
    )


def _last_field(node: ts.Node, *fields: str) -> ts.Node:
    """The first of ``fields`` present: the end of a definition's head."""
    for field in fields:
        child = node.child_by_field_name(field)
        if child is not None:
            return child
    return node


def _head(node: ts.Node, last: ts.Node, source: bytes) -> str:
    """Signature text up to the end of ``last``: comments before the body stay out."""
    return collapse(source[node.start_byte : last.end_byte].decode("utf-8", "replace"))


def _fold_overloads(functions: list[Function]) -> list[Function]:
    """Drop ``@overload`` stubs of a name that also has an implementation."""
    implemented = {f.name for f in functions if not _is_overload(f)}
    return [f for f in functions if f.name not in implemented or not _is_overload(f)]


def _is_overload(function: Function) -> bool:
    return any(d.rsplit(".", 1)[-1] == "overload" for d in function.decorators)


def _is_public(name: str) -> bool:
    # Dunders (``__init__``) are public protocol; ``_x`` and mangled ``__x`` are not.
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _parameters(params: ts.Node | None, source: bytes) -> list[str]:
    if params is None:
        return []
    names: list[str] = []
    for child in params.named_children:
        kind = child.type
        if kind == "identifier":  # the common case, no clean-up needed
            names.append(text(child, source))
            continue
        if kind in _DROPPED_PARAMETERS:
            continue
        if kind in ("default_parameter", "typed_default_parameter"):
            child = child.child_by_field_name("name") or child
        elif kind == "typed_parameter":
            child = named_child_at(child, 0) or child
        # `*args` / `**kwargs` keep their marker; collapse drops `* args` spacing.
        names.append(collapse(text(child, source)).replace(" ", ""))
    return names


def _decorators(node: ts.Node, source: bytes) -> list[str]:
    parent = node.parent
    if parent is None or parent.type != "decorated_definition":
        return []
    return [
        collapse(text(child, source)[1:])
        for child in parent.named_children
        if child.type == "decorator"
    ]


def _bases(superclasses: ts.Node | None, source: bytes) -> list[str]:
    """Positional bases as written; ``metaclass=...`` and other keywords are dropped."""
    if superclasses is None:
        return []
    return [
        collapse(text(child, source))
        for child in superclasses.named_children
        if child.type not in ("keyword_argument", "dictionary_splat", "comment")
    ]


# -- strings -------------------------------------------------------------------


def _docstring(block: ts.Node | None, source: bytes) -> str:
    """The cleaned docstring of a module or a def/class body, "" if none."""
    if block is None:
        return ""
    index = 0
    first = named_child_at(block, 0)
    while first is not None and first.type == "comment":
        index += 1
        first = named_child_at(block, index)
    if first is None or first.type != "expression_statement" or first.named_child_count != 1:
        return ""
    value = _string_value(first.named_child(0), source)
    return inspect.cleandoc(value) if value else ""


def _string_value(node: ts.Node | None, source: bytes) -> str | None:
    """Value of a str literal (None for bytes, f-strings and non-strings)."""
    if node is None:
        return None
    if node.type == "concatenated_string":
        parts = [_string_value(part, source) for part in node.named_children]
        return None if None in parts else "".join(parts)  # type: ignore[arg-type]
    if node.type != "string" or node.child_count < 2:
        return None
    start, end = node.child(0), node.child(node.child_count - 1)
    prefix = text(start, source).lower()
    if "b" in prefix or "f" in prefix or "t" in prefix:
        return None
    content_end = end.start_byte if end.type == "string_end" else node.end_byte
    raw = source[start.end_byte : content_end].decode("utf-8", "replace")
    if "r" in prefix or "\\" not in raw:
        return raw
    try:  # escapes: let Python decode them exactly
        value = ast.literal_eval(text(node, source))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return raw
    return value if isinstance(value, str) else raw


# -- imports and exports -------------------------------------------------------


def _imports(statements: list[ts.Node], source: bytes) -> list[Import]:
    imports: list[Import] = []
    for stmt in sorted(statements, key=lambda n: n.start_byte):
        line = stmt.start_point[0] + 1
        if stmt.type == "import_statement":
            for child in stmt.children_by_field_name("name"):
                module, alias = _imported(child, source)
                if module:
                    imports.append(Import(module=module, alias=alias, line=line))
            continue
        module = compact(text(stmt.child_by_field_name("module_name"), source))
        if not module:
            continue
        if any(child.type == "wildcard_import" for child in stmt.named_children):
            imports.append(Import(module=module, name="*", line=line))
        for child in stmt.children_by_field_name("name"):
            name, alias = _imported(child, source)
            if name:
                imports.append(Import(module=module, name=name, alias=alias, line=line))
    return imports


def _imported(node: ts.Node, source: bytes) -> tuple[str, str | None]:
    """(dotted name, alias) of a ``dotted_name`` or ``aliased_import`` node."""
    if node.type == "aliased_import":
        alias = node.child_by_field_name("alias")
        name = compact(text(node.child_by_field_name("name"), source))
        return name, text(alias, source) if alias is not None else None
    return compact(text(node, source)), None


def _exports(assignments: list[ts.Node], source: bytes) -> list[str]:
    """Static string entries of ``__all__`` list/tuple literals (joined by ``+``)."""
    names: list[str] = []
    for node in sorted(assignments, key=lambda n: n.start_byte):
        _collect_strings(node.child_by_field_name("right"), source, names)
    return dedupe(names)


def _collect_strings(node: ts.Node | None, source: bytes, out: list[str]) -> None:
    if node is None:
        return
    if node.type in ("list", "tuple"):
        for child in node.named_children:
            value = _string_value(child, source)
            if value:
                out.append(value)
    elif node.type == "binary_operator":
        _collect_strings(node.child_by_field_name("left"), source, out)
        _collect_strings(node.child_by_field_name("right"), source, out)
    elif node.type == "parenthesized_expression":
        _collect_strings(named_child_at(node, 0), source, out)


# -- calls ---------------------------------------------------------------------


def _callee(node: ts.Node, source: bytes) -> str | None:
    value = text(node, source)
    if _DOTTED.fullmatch(value):
        return value
    return _chained(node, source)


def _chained(node: ts.Node | None, source: bytes) -> str | None:
    """Dotted callee with inner argument lists emptied; None for other shapes."""
    if node is None:
        return None
    if node.type == "identifier":
        return text(node, source)
    if node.type == "attribute":
        inner = _chained(node.child_by_field_name("object"), source)
        attribute = node.child_by_field_name("attribute")
        return f"{inner}.{text(attribute, source)}" if inner and attribute else None
    if node.type == "call":
        inner = _chained(node.child_by_field_name("function"), source)
        return f"{inner}()" if inner else None
    return None
