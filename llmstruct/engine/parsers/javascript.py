"""JavaScript parser, and the machinery the TypeScript/TSX parsers extend.

Strategy: ``queries/javascript-tags.scm`` captures, in one pass, the declaration
nodes (at any depth), top-level assignments and ``export`` statements, imports,
``require('x')`` calls, callees (``f()``, ``new F()``) and JSX component names.
``ScriptBuilder`` turns each capture into records with a few field lookups:

* A declaration counts when it sits at module level, possibly under ``export``
  or ``declare`` (at most three parent lookups, see ``placement``). TypeScript
  namespace members are flattened as ``NS.name``; nested declarations get no
  entry of their own (nor does anything inside an IIFE/UMD wrapper).
* Functions: declarations (generators included), ``const f = () => ...`` /
  ``function`` / ``function*`` values, ``export default function``, and top-level
  ``target = function/arrow`` assignments named by the target as written
  (``app.init``) except that ``exports.`` / ``module.exports.`` is dropped.
  Object-literal methods (``module.exports = { foo() {} }``) are skipped; their
  names are exported. Definitions exclude ``export`` and decorators; a lone
  ``const`` declarator spans its whole declaration.
* Class members: methods, getters/setters, static methods, the constructor, and
  fields holding an arrow/function are methods; ``#private`` ones (and TS
  ``private``/``protected`` ones) are not exported.
* Calls are assigned by bisecting the disjoint entry byte ranges (see
  ``base.attach_calls``). Callees are dotted names (``this.a.b``, ``a?.b``); a
  chained callee keeps inner calls as ``()`` (``a(1).b(2)`` gives ``a`` and
  ``a().b``); subscripted or parenthesised callees, ``require`` and dynamic
  ``import`` are skipped. ``new F()`` records ``F``; ``<Widget/>`` records ``Widget``.

Imports and exports (ES modules and CommonJS) are ``js_modules.py``'s job:
``ScriptBuilder`` mixes in its ``ModuleBindings``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import ClassVar

import tree_sitter as ts
import tree_sitter_javascript

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    LanguageParser,
    attach_calls,
    clean_comment,
    collapse,
    dedupe,
    named_child_at,
    preceding_comments,
    text,
)
from llmstruct.engine.parsers.js_modules import FUNCTION_VALUES, ModuleBindings

_SIMPLE_CALLEE = re.compile(r"[\w$#][\w$#.?!]*")
_SKIPPED_CALLEES = frozenset({"require", "import"})
_WRAPPERS = frozenset({"export_statement", "ambient_declaration"})
_FILE_TAGS = ("@file", "@fileoverview", "@module", "@packageDocumentation")


def is_jsdoc(raw: str) -> bool:
    return raw.startswith("/**")


class ScriptBuilder(ModuleBindings):
    """Assembles one file's records from the query captures."""

    #: capture name -> handler method; subclasses extend it.
    handlers: ClassVar[dict[str, str]] = {
        "definition.function": "on_function",
        "definition.class": "on_class",
        "definition.variable": "on_variable",
        "definition.assignment": "on_assignment",
        "definition.export": "on_export",
        "reference.import": "on_import",
        "reference.require": "on_require",
    }

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.functions: list[Function] = []
        self.classes: list[ClassDef] = []
        self.imports: list[Import] = []
        self.exports: list[str] = []
        self.exported_locals: set[str] = set()

    def build(self, root: ts.Node, captures: dict[str, list[ts.Node]]) -> FileAnalysis:
        # Document order, so exports and imports come out in the order they are written.
        work = [
            (node.start_byte, getattr(self, method), node)
            for capture, method in self.handlers.items()
            for node in captures.get(capture, [])
        ]
        work.sort(key=itemgetter(0))
        for _, handler, node in work:
            handler(node)
        self.finish()
        self.functions.sort(key=lambda function: function.byte_range)
        self.classes.sort(key=lambda cls: cls.byte_range)
        entries = list(self.functions)
        for cls in self.classes:
            entries += cls.methods
            cls.exported = cls.exported or cls.name in self.exported_locals
        for function in self.functions:
            function.exported = function.exported or function.name in self.exported_locals
        callees = captures.get("name.reference.call", []) + [
            node
            for node in captures.get("name.reference.jsx", [])
            if node.type == "member_expression" or text(node, self.source)[:1].isupper()
        ]
        attach_calls(entries, self.source, (callees, self.callee), memo=True)
        return FileAnalysis(
            path="",
            language="",
            line_count=0,
            module_doc=self.module_doc(root),
            imports=sorted(self.imports, key=lambda imp: imp.line),
            functions=self.functions,
            classes=self.classes,
            exports=dedupe(self.exports),
        )

    def finish(self) -> None:
        """Hook run after every capture is handled, before calls are attached."""

    # -- placement ---------------------------------------------------------------
    def placement(self, node: ts.Node) -> tuple[str, bool, ts.Node] | None:
        """(name prefix, exported, outermost statement) of a module-level declaration.

        None when the declaration is nested in a function, block or class.
        """
        exported = False
        parent = node.parent
        while parent is not None and parent.type in _WRAPPERS:
            exported = exported or parent.type == "export_statement"
            node, parent = parent, parent.parent
        if parent is None:
            return None
        if parent.type == "program":
            return "", exported, node
        if parent.type == "statement_block":
            prefix = self.namespace_prefix(parent.parent)
            if prefix is not None:
                return prefix, exported, node
        return None

    def namespace_prefix(self, namespace: ts.Node | None) -> str | None:
        """Name prefix of members of a block that holds declarations (TS namespaces)."""
        return None

    # -- definitions -------------------------------------------------------------
    def on_function(self, node: ts.Node) -> None:
        self.declaration(node, self.add_function)

    def on_class(self, node: ts.Node) -> None:
        self.declaration(node, self.add_class)

    def declaration(self, node: ts.Node, add: Callable[..., object]) -> None:
        """A named function or class declaration: recorded when it is at module level."""
        place = self.placement(node)
        name = node.child_by_field_name("name")
        if place is not None and name is not None:
            prefix, exported, statement = place
            add(prefix + text(name, self.source), node, node, statement, exported)

    def on_variable(self, declarator: ts.Node) -> None:
        declaration = declarator.parent
        if declaration is None or declaration.type not in (
            "lexical_declaration",
            "variable_declaration",
        ):
            return
        place = self.placement(declaration)
        value = declarator.child_by_field_name("value")
        if place is None or value is None:
            return
        prefix, exported, statement = place
        name = prefix + text(declarator.child_by_field_name("name"), self.source)
        alone = declarator.prev_named_sibling is None and declarator.next_named_sibling is None
        outer = declaration if alone else declarator
        if value.type == "class":
            self.add_class(name, value, outer, statement, exported)
            return
        function = self.add_function(name, outer, value, statement, exported)
        kind = declaration.child_by_field_name("kind")
        if not alone and kind is not None:  # `const a = 1, f = () => {}`: keep the keyword
            function.signature = f"{text(kind, self.source)} {function.signature}"

    def add_value(self, name: str, value: ts.Node, outer: ts.Node, exported: bool) -> None:
        statement = outer.parent if outer.parent is not None else outer
        if value.type == "class":
            self.add_class(name, value, outer, statement, exported)
        else:
            self.add_function(name, outer, value, statement, exported)

    def add_function(
        self, name: str, outer: ts.Node, fn: ts.Node, statement: ts.Node, exported: bool
    ) -> Function:
        """``outer`` spans the definition (a declaration), ``fn`` has params and body."""
        function = self.function(name, outer, fn, exported)
        function.docstring = preceding_comments(statement, self.source, is_jsdoc)
        self.functions.append(function)
        return function

    def function(
        self,
        name: str,
        outer: ts.Node,
        fn: ts.Node,
        exported: bool,
        decorators: list[str] | None = None,
    ) -> Function:
        body = fn.child_by_field_name("body")
        start = content_start(outer)
        params = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
        function = Function(
            name=name,
            line_range=(start.start_point[0] + 1, outer.end_point[0] + 1),
            byte_range=(start.start_byte, outer.end_byte),
            signature=definition_head(self.source, start.start_byte, body or outer),
            parameters=parameter_names(params, self.source),
            decorators=[*(decorators or []), *self.decorators(outer)],
            is_async=_is_async(fn),
            exported=exported,
        )
        return function

    def add_class(
        self, name: str, node: ts.Node, outer: ts.Node, statement: ts.Node, exported: bool
    ) -> None:
        """``node`` is the class (declaration or expression), ``outer`` spans the definition."""
        body = node.child_by_field_name("body")
        heritage = next((c for c in node.children if c.type == "class_heritage"), None)
        decorators = self.decorators(node)
        if statement.type == "export_statement":  # TS `@Dec export class ...`
            decorators = self.decorators(statement) + decorators
        start = content_start(outer)
        self.classes.append(
            ClassDef(
                name=name,
                line_range=(start.start_point[0] + 1, outer.end_point[0] + 1),
                byte_range=(start.start_byte, outer.end_byte),
                signature=definition_head(self.source, start.start_byte, body or outer),
                bases=self.bases(heritage),
                decorators=decorators,
                docstring=preceding_comments(statement, self.source, is_jsdoc),
                methods=self.members(body),
                exported=exported,
            )
        )

    def bases(self, heritage: ts.Node | None) -> list[str]:
        """The ``extends`` expression as written."""
        children = heritage.named_children if heritage is not None else []
        return [collapse(text(c, self.source)) for c in children if c.type != "comment"]

    def members(self, body: ts.Node | None) -> list[Function]:
        methods: list[Function] = []
        pending: list[ts.Node] = []  # TS puts method decorators before the member
        for child in body.named_children if body is not None else ():
            if child.type == "decorator":
                pending.append(child)
                continue
            if child.type == "comment":
                continue
            method = self.member(child, [self.decorator(d) for d in pending])
            if method is not None:
                anchor = pending[0] if pending else child
                method.docstring = preceding_comments(anchor, self.source, is_jsdoc)
                methods.append(method)
            pending = []
        return methods

    def member(self, node: ts.Node, decorators: list[str]) -> Function | None:
        kind = node.type
        if kind in ("field_definition", "public_field_definition"):
            name = node.child_by_field_name("property") or node.child_by_field_name("name")
            value = node.child_by_field_name("value")
            if name is None or value is None or value.type not in FUNCTION_VALUES:
                return None
            fn = value
        elif kind in ("method_definition", "method_signature", "abstract_method_signature"):
            name, fn = node.child_by_field_name("name"), node
            if name is None:
                return None
        else:
            return None
        label = text(name, self.source)
        return self.function(label, node, fn, _is_public_member(node, label), decorators)

    def decorators(self, node: ts.Node) -> list[str]:
        return [self.decorator(c) for c in node.children if c.type == "decorator"]

    def decorator(self, node: ts.Node) -> str:
        return collapse(text(node, self.source).lstrip("@"))

    # -- module doc and calls ------------------------------------------------------
    def module_doc(self, root: ts.Node) -> str:
        """A leading ``/** ... */`` not attached to the first statement (or file-tagged)."""
        first = named_child_at(root, 0)
        if first is not None and first.type == "hash_bang_line":
            first = first.next_named_sibling
        if first is None or first.type != "comment":
            return ""
        raw = text(first, self.source)
        if not is_jsdoc(raw):
            return ""
        following = first.next_sibling
        attached = (
            following is not None
            and following.type != "comment"
            and following.start_point[0] <= first.end_point[0] + 1
        )
        return "" if attached and not any(tag in raw for tag in _FILE_TAGS) else clean_comment(raw)

    def callee(self, node: ts.Node, source: bytes) -> str | None:
        value = text(node, source)
        if not _SIMPLE_CALLEE.fullmatch(value):
            value = _chained(node, source) or ""
        return None if value in _SKIPPED_CALLEES else value or None


class JavaScriptParser(LanguageParser):
    language = "javascript"
    extensions = (".js", ".mjs", ".cjs", ".jsx")
    builder: type[ScriptBuilder] = ScriptBuilder

    def grammar(self) -> object:
        return tree_sitter_javascript.language()

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        captures = self.captures(tree.root_node)
        analysis = self.builder(source).build(tree.root_node, captures)
        analysis.path = path
        analysis.language = self.language
        analysis.line_count = self.line_count(source)
        return analysis


# -- helpers -------------------------------------------------------------------


def parameter_names(params: ts.Node | None, source: bytes) -> list[str]:
    """Names of a ``formal_parameters`` node (or the lone identifier of ``x => ...``)."""
    if params is None:
        return []
    if params.type == "identifier":
        return [text(params, source)]
    names: list[str] = []
    for child in params.named_children:
        kind = child.type
        if kind in ("comment", "decorator"):
            continue
        if kind in ("required_parameter", "optional_parameter"):
            child = child.child_by_field_name("pattern")
            if child is None or child.type == "this":  # TS `this:` typing is not a parameter
                continue
        elif kind == "assignment_pattern":
            child = child.child_by_field_name("left") or child
        names.append(collapse(text(child, source)))
    return names


def _is_public_member(member: ts.Node, name: str) -> bool:
    """``#private`` and TS ``private``/``protected`` members are not visible outside."""
    if name.startswith("#"):
        return False
    for child in member.children:
        if child.type == "accessibility_modifier":
            return child.text not in (b"private", b"protected")
        if child.is_named and child.type != "decorator":
            break
    return True


def content_start(node: ts.Node) -> ts.Node:
    """First child that is not a decorator: definitions exclude their decorators."""
    for child in node.children:
        if child.type not in ("decorator", "comment"):
            return child
    return node


def definition_head(source: bytes, start: int, body: ts.Node) -> str:
    """Signature from ``start`` up to the body (or the whole node when it has none)."""
    has_body = body.start_byte > start
    end = body.start_byte if has_body else body.end_byte
    head = collapse(source[start:end].decode("utf-8", "replace"))
    return head.rstrip(" {:=") if has_body else head.rstrip("; ")


def _is_async(fn: ts.Node) -> bool:
    for child in fn.children:
        if child.type == "async":
            return True
        if child.type in ("formal_parameters", "identifier", "statement_block"):
            return False
    return False


def _chained(node: ts.Node | None, source: bytes) -> str | None:
    """Dotted callee with inner argument lists emptied; None for other shapes."""
    if node is None:
        return None
    kind = node.type
    if kind in ("identifier", "this", "super", "property_identifier"):
        return text(node, source)
    if kind == "member_expression":
        inner = _chained(node.child_by_field_name("object"), source)
        prop = node.child_by_field_name("property")
        if not inner or prop is None:
            return None
        dot = "?." if any(c.type == "optional_chain" for c in node.children) else "."
        return f"{inner}{dot}{text(prop, source)}"
    if kind == "call_expression":
        inner = _chained(node.child_by_field_name("function"), source)
        return f"{inner}()" if inner else None
    if kind == "non_null_expression":
        inner = _chained(named_child_at(node, 0), source)
        return f"{inner}!" if inner else None
    return None
