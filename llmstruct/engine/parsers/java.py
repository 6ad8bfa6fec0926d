"""Java parser: package, imports, classes/interfaces/enums/records with their methods.

Strategy: one query run (``queries/java-tags.scm``) finds the declarations,
imports and every invocation; Python assembles records from the captures with
field lookups. Types are visited in document order, so an enclosing type is
known before its members: a member's owner is found from its parent body in one
step. Calls are assigned to their method by byte range (``base.attach_calls``),
never by walking up from each call.

Conventions (the contract with call resolution):

* ``Import.module`` is the dotted path without the imported name:
  ``import a.b.C;`` -> (``a.b``, ``C``); ``import a.b.*;`` -> (``a.b``, ``*``);
  ``import static a.b.C.m;`` -> (``a.b.C``, ``m``); ``import static a.b.C.*;`` ->
  (``a.b.C``, ``*``).
* Member types are flattened into their own ClassDefs named ``Outer.Inner``; local
  and anonymous classes get no entry and their calls belong to the enclosing
  method. ``bases`` are ``extends`` then ``implements``, type arguments dropped.
* Methods keep their simple names; a constructor is named after its class.
  ``byte_range``/``signature`` start after the leading annotations, which are the
  ``decorators`` (``Override``, ``SuppressWarnings("unchecked")``).
* ``exported``: ``public``, or a member of an interface/annotation type that is
  not ``private``. ``exports`` lists the public top-level types.
* Calls: ``name``, ``obj.name``, ``this.x.y``, ``super.name``, ``Type.name``, with
  inner argument lists reduced to ``()`` for chains (``a.b().c``; the inner call is
  also recorded as ``a.b``) and explicit type arguments dropped; ``new Foo(...)``
  -> ``new Foo`` (type arguments dropped, qualified names kept); ``this(...)`` and
  ``super(...)`` -> ``this``/``super``. Invocations on other receivers (casts,
  array elements, literals) are skipped. Calls in field initialisers,
  initialiser blocks and enum-constant bodies belong to no method and are dropped.
"""

from __future__ import annotations

import re

import tree_sitter as ts
import tree_sitter_java

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    CaptureBuilder,
    LanguageParser,
    attach_calls,
    collapse,
    compact,
    named_child_at,
    preceding_comments,
    text,
)

#: A receiver made of names and dots only: its text is its rendering (the common case).
_SIMPLE = re.compile(rb"[\w.]+")
_KINDS = {
    "class_declaration": "class",
    "interface_declaration": "interface",
    "enum_declaration": "enum",
    "record_declaration": "record",
    "annotation_type_declaration": "interface",
}
_BODIES = frozenset(
    {"class_body", "interface_body", "enum_body_declarations", "annotation_type_body"}
)
_ANNOTATIONS = frozenset({"annotation", "marker_annotation"})
_BASE_LISTS = frozenset({"superclass", "super_interfaces", "extends_interfaces"})
_NAMES = frozenset(
    {
        "identifier",
        "this",
        "super",
        "type_identifier",
        "scoped_identifier",
        "scoped_type_identifier",
    }
)


class JavaParser(LanguageParser):
    language = "java"
    extensions = (".java",)

    def grammar(self) -> object:
        return tree_sitter_java.language()

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        return _Builder.run(self, tree, source, path)


class _Builder(CaptureBuilder):
    """Turns one file's captures into the FileAnalysis records."""

    def __init__(self, captures: dict[str, list[ts.Node]], source: bytes, out: FileAnalysis):
        super().__init__(captures, source, out)
        #: type declaration node id -> its ClassDef, for finding members' owners.
        self.types: dict[int, ClassDef] = {}

    def build(self) -> None:
        self._package()
        self.out.imports = [self._import(node) for node in self.ordered("reference.import")]
        # Outer types start first, so an owner is recorded before its members.
        for node in self.ordered("definition.class", "definition.interface"):
            self._type(node)
        for node in self.ordered("definition.method"):
            self._method(node)
        # Calls in field initialisers and initialiser blocks fall outside every method.
        calls = self.caps.get("reference.call", []) + self.caps.get("reference.class", [])
        attach_calls(self.bodies, self.src, (calls, _callee))

    # -- package, imports --------------------------------------------------------
    def _package(self) -> None:
        for clause in self.ordered("definition.package")[:1]:
            kinds = ("scoped_identifier", "identifier")  # after any package annotations
            name = next((c for c in clause.named_children if c.type in kinds), None)
            self.out.package = compact(text(name, self.src))
            self.out.module_doc = _javadoc(clause, self.src)

    def _import(self, node: ts.Node) -> Import:
        path = next(
            (c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None
        )
        dotted = compact(text(path, self.src))
        line = node.start_point[0] + 1
        if any(child.type == "asterisk" for child in node.named_children):
            return Import(dotted, "*", None, line)
        module, _, name = dotted.rpartition(".")
        return Import(module, name, None, line) if module else Import(dotted, None, None, line)

    # -- types -------------------------------------------------------------------
    def _type(self, node: ts.Node) -> None:
        owner = _owner_node(node)
        parent = self.types.get(owner.id) if owner is not None else None
        if owner is not None and parent is None:
            return  # a local or anonymous class: part of its enclosing method
        name = text(node.child_by_field_name("name"), self.src)
        modifiers = _modifiers(node)
        start = _start_after_annotations(node, modifiers)
        cls = ClassDef(
            name=f"{parent.name}.{name}" if parent else name,
            line_range=(start.start_point[0] + 1, node.end_point[0] + 1),
            byte_range=(start.start_byte, node.end_byte),
            signature=self._head(start, node, node.child_by_field_name("body")),
            kind=_KINDS[node.type],
            bases=self._bases(node),
            decorators=self._annotations(modifiers),
            docstring=_javadoc(node, self.src),
            exported=_is_exported(modifiers, parent),
        )
        self.types[node.id] = cls
        self.out.classes.append(cls)
        if parent is None and cls.exported:
            self.out.exports.append(cls.name)

    def _bases(self, node: ts.Node) -> list[str]:
        bases: list[str] = []
        for child in node.named_children:
            if child.type not in _BASE_LISTS:
                continue
            types = child.named_children
            if types and types[0].type == "type_list":
                types = types[0].named_children
            bases.extend(_type_name(base, self.src) for base in types if base.type != "comment")
        return bases

    # -- methods -----------------------------------------------------------------
    def _method(self, node: ts.Node) -> None:
        owner = _owner_node(node)
        cls = self.types.get(owner.id) if owner is not None else None
        if cls is None:
            return  # a method of an anonymous class or enum constant body
        modifiers = _modifiers(node)
        start = _start_after_annotations(node, modifiers)
        body = node.child_by_field_name("body")
        method = Function(
            name=text(node.child_by_field_name("name"), self.src),
            line_range=(start.start_point[0] + 1, node.end_point[0] + 1),
            byte_range=(start.start_byte, node.end_byte),
            signature=self._head(start, node, body),
            parameters=self._parameters(node.child_by_field_name("parameters")),
            decorators=self._annotations(modifiers),
            docstring=_javadoc(node, self.src),
            exported=_is_exported(modifiers, cls),
        )
        cls.methods.append(method)
        if body is not None:
            self.bodies.append(method)

    def _parameters(self, params: ts.Node | None) -> list[str]:
        names: list[str] = []
        for param in params.named_children if params is not None else ():
            if param.type == "formal_parameter":
                names.append(text(param.child_by_field_name("name"), self.src))
            elif param.type == "spread_parameter":
                declarator = next(
                    (c for c in param.named_children if c.type == "variable_declarator"), None
                )
                name = declarator.child_by_field_name("name") if declarator else None
                names.append("..." + text(name, self.src))
            elif param.type == "receiver_parameter":
                names.append("this")
        return names

    def _annotations(self, modifiers: ts.Node | None) -> list[str]:
        if modifiers is None:
            return []
        return [
            collapse(text(c, self.src)[1:])
            for c in modifiers.named_children
            if c.type in _ANNOTATIONS
        ]

    def _head(self, start: ts.Node, node: ts.Node, body: ts.Node | None) -> str:
        end = body.start_byte if body is not None else node.end_byte
        return collapse(self.src[start.start_byte : end].decode("utf-8", "replace")).rstrip(" {;")


def _owner_node(node: ts.Node) -> ts.Node | None:
    """The type declaration whose body holds ``node``; None at file level.

    Returns the body's parent whatever it is (an ``object_creation_expression``
    for anonymous classes), so callers can tell a member from a local class.
    """
    parent = node.parent
    while parent is not None and parent.type == "ERROR":
        parent = parent.parent
    if parent is None or parent.type == "program":
        return None
    if parent.type not in _BODIES:
        return parent  # a local class in a block: no recorded owner
    owner = parent.parent
    if owner is not None and owner.type == "enum_body":
        owner = owner.parent
    return owner if owner is not None else parent


def _modifiers(node: ts.Node) -> ts.Node | None:
    first = named_child_at(node, 0)
    return first if first is not None and first.type == "modifiers" else None


def _start_after_annotations(node: ts.Node, modifiers: ts.Node | None) -> ts.Node:
    """First node of the definition proper: leading annotations are its decorators."""
    if modifiers is None:
        return node
    for child in modifiers.children:
        if child.type not in _ANNOTATIONS and child.type not in ("line_comment", "block_comment"):
            return child
    return modifiers.next_sibling or node


def _is_exported(modifiers: ts.Node | None, owner: ClassDef | None) -> bool:
    keywords = {child.type for child in modifiers.children} if modifiers is not None else set()
    if "public" in keywords:
        return True
    return owner is not None and owner.kind == "interface" and "private" not in keywords


def _javadoc(node: ts.Node, source: bytes) -> str:
    return preceding_comments(node, source, lambda raw: raw.startswith("/**") and raw != "/**/")


def _type_name(node: ts.Node, source: bytes) -> str:
    """A type without its type arguments: ``Map.Entry<K, V>`` -> ``Map.Entry``."""
    if node.type == "generic_type":
        node = named_child_at(node, 0) or node
    return compact(text(node, source))


def _callee(node: ts.Node, source: bytes) -> str | None:
    if node.type == "object_creation_expression":
        kind = node.child_by_field_name("type")
        return "new " + _type_name(kind, source) if kind is not None else None
    if node.type == "explicit_constructor_invocation":
        return text(node.child_by_field_name("constructor"), source)
    return _chain(node, source)


def _raw(node: ts.Node, source: bytes) -> bytes:
    return source[node.start_byte : node.end_byte]


def _chain(node: ts.Node, source: bytes) -> str | None:
    """``object.name`` of an invocation, walking down the receiver chain only."""
    parts: list[str] = []
    current: ts.Node | None = node
    while current is not None:
        kind = current.type
        if kind == "method_invocation":
            if current is not node:
                parts.append("()")
            parts.append(text(current.child_by_field_name("name"), source))
            current = current.child_by_field_name("object")
            if current is None:
                break
            parts.append(".")
        elif kind in _NAMES or (
            kind == "field_access" and _SIMPLE.fullmatch(_raw(current, source))
        ):
            parts.append(compact(text(current, source)))
            break
        elif kind == "field_access":
            parts += [text(current.child_by_field_name("field"), source), "."]
            current = current.child_by_field_name("object")
        elif kind == "object_creation_expression" and current.child_by_field_name("type"):
            parts.append(f"new {_type_name(current.child_by_field_name('type'), source)}()")
            break
        else:
            return None
    return "".join(reversed(parts))
