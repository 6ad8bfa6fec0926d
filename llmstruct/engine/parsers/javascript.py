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
  ``python.attach_calls``). Callees are dotted names (``this.a.b``, ``a?.b``); a
  chained callee keeps inner calls as ``()`` (``a(1).b(2)`` gives ``a`` and
  ``a().b``); subscripted or parenthesised callees, ``require`` and dynamic
  ``import`` are skipped. ``new F()`` records ``F``; ``<Widget/>`` records ``Widget``.

Imports (``module`` is the specifier as written, ``./x`` or ``pkg/sub``): default
import -> ``name="default"``, alias the local; ``* as ns`` and ``const ns =
require('x')`` -> no name, alias ``ns``; named and destructured -> ``name`` plus
the alias when renamed; side-effect imports and any other ``require('x')`` -> no
name nor alias; re-exports (``export {a} from``, ``export *``) are imports too.
Exports: declared names, ``default`` (plus the declared name for ``export default
function f``), ``export {a as b}`` -> ``b``, CommonJS ``module.exports = x``
-> ``default``, its object's keys and ``exports.k`` -> ``k``.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import ClassVar

import tree_sitter as ts
import tree_sitter_javascript

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    LanguageParser,
    clean_comment,
    collapse,
    dedupe,
    preceding_comments,
    text,
)
from llmstruct.engine.parsers.python import attach_calls

_SIMPLE_CALLEE = re.compile(r"[\w$#][\w$#.?!]*")
_DOTTED_TARGET = re.compile(r"[\w$]+(\.[\w$]+)*")
_SKIPPED_CALLEES = frozenset({"require", "import"})
_WRAPPERS = frozenset({"export_statement", "ambient_declaration"})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "generator_function"})
_CLASS_NODES = frozenset({"class", "class_declaration", "abstract_class_declaration"})
_FILE_TAGS = ("@file", "@fileoverview", "@module", "@packageDocumentation")
_EXPORT_TARGETS = ("module.exports.", "exports.")


def is_jsdoc(raw: str) -> bool:
    return raw.startswith("/**")


class ScriptBuilder:
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
        attach_calls(entries, callees, self.source, self.callee)
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
        place = self.placement(node)
        name = node.child_by_field_name("name")
        if place is not None and name is not None:
            prefix, exported, statement = place
            self.add_function(prefix + text(name, self.source), node, node, statement, exported)

    def on_class(self, node: ts.Node) -> None:
        place = self.placement(node)
        name = node.child_by_field_name("name")
        if place is not None and name is not None:
            prefix, exported, statement = place
            self.add_class(prefix + text(name, self.source), node, node, statement, exported)

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

    def on_assignment(self, node: ts.Node) -> None:
        """Top-level ``a.b = ...``: CommonJS exports and functions assigned to names."""
        targets: list[str] = []
        value: ts.Node | None = node
        while value is not None and value.type == "assignment_expression":
            targets.append(compact(text(value.child_by_field_name("left"), self.source)))
            value = value.child_by_field_name("right")
        if value is None:
            return
        exported = False
        for target in targets:
            if target == "module.exports":
                self.exports.append("default")
                self.export_value(value, keys_exported=True)
                exported = True
            elif target.startswith(_EXPORT_TARGETS):
                self.exports.append(target.split(".")[-1])
                self.export_local(value)
                exported = True
        named = _DOTTED_TARGET.fullmatch(targets[0]) is not None
        if named and (value.type in _FUNCTION_VALUES or value.type == "class"):
            self.add_value(_entry_name(targets[0], value, self.source), value, node, exported)

    def on_export(self, node: ts.Node) -> None:
        declaration = node.child_by_field_name("declaration")
        value = node.child_by_field_name("value")
        is_default = False
        for child in node.children:
            kind = child.type
            if kind == "default" or kind == "=":  # `export default x` / TS `export = x`
                is_default = True
            elif kind == "export_clause":
                self.export_clause(child, node.child_by_field_name("source"))
            elif kind == "*" or kind == "namespace_export":
                self.reexport_all(child, node)
        if is_default:
            self.exports.append("default")
        if declaration is not None:
            self.exports.extend(self.declared_names(declaration))
        if value is None and is_default:
            value = next((c for c in node.named_children if c.type == "identifier"), None)
        if value is not None:
            self.export_value(value, keys_exported=False)
            if value.type in _FUNCTION_VALUES or value.type == "class":
                self.add_value(_entry_name("default", value, self.source), value, value, True)

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
            if name is None or value is None or value.type not in _FUNCTION_VALUES:
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

    # -- exports -----------------------------------------------------------------
    def declared_names(self, declaration: ts.Node) -> list[str]:
        kind = declaration.type
        if kind in ("lexical_declaration", "variable_declaration"):
            names = [
                c.child_by_field_name("name")
                for c in declaration.named_children
                if c.type == "variable_declarator"
            ]
            return [text(n, self.source) for n in names if n is not None and n.type == "identifier"]
        if kind == "ambient_declaration":
            inner = next((c for c in declaration.named_children if c.type != "comment"), None)
            return self.declared_names(inner) if inner is not None else []
        name = declaration.child_by_field_name("name")
        if name is None or name.type == "string":
            return []
        return [text(name, self.source).split(".")[0]]

    def export_clause(self, clause: ts.Node, module_node: ts.Node | None) -> None:
        module = string_value(module_node, self.source) if module_node is not None else None
        line = clause.start_point[0] + 1
        for spec in clause.named_children:
            if spec.type != "export_specifier":
                continue
            name = text(spec.child_by_field_name("name"), self.source).strip("'\"")
            alias_node = spec.child_by_field_name("alias")
            alias = text(alias_node, self.source).strip("'\"") if alias_node else None
            self.exports.append(alias or name)
            if module is None:
                self.exported_locals.add(name)
            else:  # a re-export binds nothing locally but is a dependency
                self.imports.append(Import(module=module, name=name, alias=alias, line=line))

    def reexport_all(self, child: ts.Node, statement: ts.Node) -> None:
        module = string_value(statement.child_by_field_name("source"), self.source)
        line = statement.start_point[0] + 1
        if child.type == "*":
            self.imports.append(Import(module=module, name="*", line=line))
            return
        alias = next((c for c in child.named_children if c.type != "comment"), None)
        alias_text = text(alias, self.source).strip("'\"") if alias is not None else None
        if alias_text:
            self.exports.append(alias_text)
        self.imports.append(Import(module=module, alias=alias_text, line=line))

    def export_value(self, value: ts.Node, keys_exported: bool) -> None:
        """Locals made visible by ``module.exports = x`` / ``export default x``.

        The keys of a ``module.exports = {...}`` object are importable names
        (``keys_exported``); those of an ``export default {...}`` object are not.
        """
        if value.type != "object":
            self.export_local(value)
            return
        for child in value.named_children:
            if child.type == "shorthand_property_identifier":
                key, local = child, child
            elif child.type in ("pair", "method_definition"):
                key = child.child_by_field_name("key") or child.child_by_field_name("name")
                local = child.child_by_field_name("value")
            else:
                continue
            if keys_exported and key is not None:
                self.exports.append(text(key, self.source).strip("'\""))
            self.export_local(local)

    def export_local(self, value: ts.Node | None) -> None:
        if value is not None and value.type in ("identifier", "shorthand_property_identifier"):
            self.exported_locals.add(text(value, self.source))

    # -- imports -----------------------------------------------------------------
    def on_import(self, node: ts.Node) -> None:
        module = string_value(node.child_by_field_name("source"), self.source)
        line = node.start_point[0] + 1
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        if not module:
            return
        if clause is None:
            self.imports.append(Import(module=module, line=line))  # side effect only
            return
        for child in clause.named_children:
            if child.type == "identifier":
                local = text(child, self.source)
                self.imports.append(Import(module=module, name="default", alias=local, line=line))
            elif child.type == "namespace_import":
                binding = next((c for c in child.named_children if c.type == "identifier"), None)
                self.imports.append(
                    Import(module=module, alias=text(binding, self.source), line=line)
                )
            elif child.type == "named_imports":
                for spec in child.named_children:
                    if spec.type == "import_specifier":
                        self.imports.append(self.specifier(spec, module, line))

    def specifier(self, spec: ts.Node, module: str, line: int) -> Import:
        name = text(spec.child_by_field_name("name"), self.source).strip("'\"")
        alias = spec.child_by_field_name("alias")
        return Import(
            module=module, name=name, alias=text(alias, self.source) if alias else None, line=line
        )

    def on_require(self, call: ts.Node) -> None:
        """``require('x')``: bound by a declarator (maybe destructured) or a bare dependency."""
        arguments = call.child_by_field_name("arguments")
        module = string_value(first_named(arguments), self.source)
        line = call.start_point[0] + 1
        holder, name = call, None
        parent = call.parent
        if parent is not None and parent.type == "member_expression":  # require('x').y
            name = text(parent.child_by_field_name("property"), self.source)
            holder, parent = parent, parent.parent
        pattern = None
        if parent is not None and parent.type == "variable_declarator":
            if parent.child_by_field_name("value") == holder:
                pattern = parent.child_by_field_name("name")
        if pattern is not None and pattern.type == "identifier":
            local = text(pattern, self.source)
            self.imports.append(Import(module, name, None if local == name else local, line))
        elif pattern is not None and pattern.type == "object_pattern" and name is None:
            for child in pattern.named_children:
                self.imports.extend(self.destructured(child, module, line))
        else:
            self.imports.append(Import(module=module, name=name, line=line))

    def destructured(self, child: ts.Node, module: str, line: int) -> list[Import]:
        if child.type == "shorthand_property_identifier_pattern":
            return [Import(module=module, name=text(child, self.source), line=line)]
        if child.type == "object_assignment_pattern":
            left = child.child_by_field_name("left")
            return [Import(module=module, name=text(left, self.source), line=line)]
        if child.type == "pair_pattern":
            key = text(child.child_by_field_name("key"), self.source).strip("'\"")
            value = child.child_by_field_name("value")
            if value is not None and value.type == "assignment_pattern":
                value = value.child_by_field_name("left")
            local = text(value, self.source) if value is not None else ""
            return [Import(module, key, None if local in ("", key) else local, line)]
        return []

    # -- module doc and calls ------------------------------------------------------
    def module_doc(self, root: ts.Node) -> str:
        """A leading ``/** ... */`` not attached to the first statement (or file-tagged)."""
        first = first_named(root)
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
        captures = ts.QueryCursor(self.query).captures(tree.root_node)
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


def _entry_name(target: str, value: ts.Node, source: bytes) -> str:
    """Name of a function/class assigned to ``target`` (``default`` for module.exports)."""
    if target in ("default", "module.exports"):
        own = value.child_by_field_name("name")
        return text(own, source) if own is not None else "default"
    for prefix in _EXPORT_TARGETS:
        if target.startswith(prefix):
            return target[len(prefix) :]
    return target


def first_named(node: ts.Node | None) -> ts.Node | None:
    # Node.named_child raises IndexError past the end (py-tree-sitter 0.26).
    return node.named_child(0) if node is not None and node.named_child_count else None


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


def string_value(node: ts.Node | None, source: bytes) -> str:
    """Content of a string literal node (quotes removed, escapes kept as written)."""
    if node is None or node.type != "string":
        return ""
    return source[node.start_byte + 1 : node.end_byte - 1].decode("utf-8", "replace")


def compact(value: str) -> str:
    return "".join(value.split())


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
        inner = _chained(first_named(node), source)
        return f"{inner}!" if inner else None
    return None
