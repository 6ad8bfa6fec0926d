"""Go parser: package clause, imports, functions, types with their method sets.

Strategy: one query run (``queries/go-tags.scm``) finds the package clause,
import specs, declarations and every callee; Python only assembles records from
those captures with field lookups on the captured nodes. Calls are assigned to
their function by byte range (``base.attach_calls``), never by walking up from
each call.

Conventions (the contract with call resolution):

* ``Import.module`` is the import path string without quotes (``net/http``);
  ``name`` is None (Go imports bind packages); ``alias`` is the explicit name,
  ``_`` and ``.`` included.
* Methods attach to the ``ClassDef`` of their receiver type (``*`` and type
  parameters stripped) when that type is declared in the file; otherwise they are
  collected in one ``kind="impl"`` ClassDef per receiver type, spanning its first
  to last method, with an empty signature (Go has no written head for it). The
  receiver is not a parameter.
* Calls are callee expressions as written, with argument lists inside the callee
  reduced to ``()`` and type arguments dropped: ``fmt.Println``, ``s.mu.Lock``,
  ``a.b().c`` (the inner call is also recorded as ``a.b``), ``F[int](x)`` -> ``F``.
  Because ``m[i]()`` and ``F[T]()`` look alike, index expressions are read as
  instantiations (``m``). Callees of other shapes (function literals, composite
  literals, ``(*p).M``) are skipped.
* ``exports`` are the exported (capitalised) package-level names in source order:
  functions, types, variables and constants.
* A package-level ``var f = func(...) {...}`` is a function named ``f``.
"""

from __future__ import annotations

import re

import tree_sitter as ts
import tree_sitter_go

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    CaptureBuilder,
    LanguageParser,
    attach_calls,
    child_at,
    clean_comment,
    collapse,
    dedupe,
    head_signature,
    lines_of,
    named_child_at,
    text,
)

# go/ast treats these comment lines as directives, not documentation.
_DIRECTIVE = re.compile(r"^//(line |extern |export |[a-z0-9]+:[a-z0-9])")
#: A callee made of names and dots only: its text is its rendering (the common case).
_SIMPLE = re.compile(rb"[\w.]+")
_KINDS = {"struct_type": "struct", "interface_type": "interface"}
_PARAMETERS = frozenset({"parameter_declaration", "variadic_parameter_declaration"})
_LEAVES = frozenset({"identifier", "field_identifier", "package_identifier", "type_identifier"})


class GoParser(LanguageParser):
    language = "go"
    extensions = (".go",)

    def grammar(self) -> object:
        return tree_sitter_go.language()

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        return _Builder.run(self, tree, source, path)


class _Builder(CaptureBuilder):
    """Turns one file's captures into the FileAnalysis records."""

    def __init__(self, captures: dict[str, list[ts.Node]], source: bytes, out: FileAnalysis):
        super().__init__(captures, source, out)
        #: (start byte, name) of package-level names, for ``exports``.
        self.names: list[tuple[int, str]] = []

    def build(self) -> None:
        self._package()
        self.out.imports = [self._import(spec) for spec in self.ordered("reference.import")]
        types = self._types()
        self._functions()
        self._variables()
        self._methods(types)
        self.out.functions.sort(key=lambda func: func.byte_range[0])
        self.out.classes.sort(key=lambda cls: cls.byte_range[0])
        # Calls in package-level initialisers fall outside every function.
        attach_calls(self.bodies, self.src, (self.caps.get("name.reference.call", ()), _callee))
        self.names.sort()
        self.out.exports = dedupe([name for _, name in self.names if _exported(name)])

    # -- package, imports --------------------------------------------------------
    def _package(self) -> None:
        for clause in self.ordered("definition.package")[:1]:
            name = named_child_at(clause, -1)
            self.out.package = text(name, self.src)
            self.out.module_doc = _doc(clause, self.src)

    def _import(self, spec: ts.Node) -> Import:
        path = text(spec.child_by_field_name("path"), self.src).strip('"`')
        alias = spec.child_by_field_name("name")
        return Import(path, None, text(alias, self.src) if alias else None, spec.start_point[0] + 1)

    # -- types -------------------------------------------------------------------
    def _types(self) -> dict[str, ClassDef]:
        types: dict[str, ClassDef] = {}
        for spec in self.ordered("definition.class"):
            decl = spec.parent
            if decl is None or not _file_level(decl):
                continue  # a type declared inside a function body
            cls = self._type(spec, decl)
            types.setdefault(cls.name, cls)
            self.out.classes.append(cls)
            self.names.append((spec.start_byte, cls.name))
        return types

    def _type(self, spec: ts.Node, decl: ts.Node) -> ClassDef:
        second = child_at(decl, 1)
        grouped = second is not None and second.type == "("
        node = spec if grouped else decl
        doc = _doc(spec, self.src) or ("" if grouped else _doc(decl, self.src))
        body = spec.child_by_field_name("type")
        kind = _KINDS.get(body.type, "type") if body is not None else "type"
        name = text(spec.child_by_field_name("name"), self.src)
        cls = ClassDef(
            name=name,
            line_range=lines_of(node),
            byte_range=(node.start_byte, node.end_byte),
            signature=self._type_signature(node, body, kind),
            kind=kind,
            docstring=doc,
            exported=_exported(name),
        )
        if kind == "struct":
            cls.bases = self._embedded_fields(body)
        elif kind == "interface":
            cls.bases, cls.methods = self._interface_members(body)
        return cls

    def _type_signature(self, node: ts.Node, body: ts.Node | None, kind: str) -> str:
        if body is None or kind == "type":
            return collapse(text(node, self.src))
        brace = next((c for c in body.children if c.type in ("{", "field_declaration_list")), None)
        return head_signature(node, brace, self.src)

    def _embedded_fields(self, struct: ts.Node) -> list[str]:
        fields = next(
            (c for c in struct.named_children if c.type == "field_declaration_list"), None
        )
        if fields is None:
            return []
        bases = []
        for field in fields.named_children:
            if field.type == "field_declaration" and field.child_by_field_name("name") is None:
                bases.append(_type_name(field.child_by_field_name("type"), self.src))
        return [base for base in bases if base]

    def _interface_members(self, iface: ts.Node) -> tuple[list[str], list[Function]]:
        bases: list[str] = []
        methods: list[Function] = []
        for member in iface.named_children:
            if member.type == "method_elem":
                methods.append(self._method_spec(member))
            elif member.type == "type_elem" and member.named_child_count == 1:
                # An embedded interface; unions and `~T` terms are constraints, not bases.
                bases.append(_type_name(member.named_children[0], self.src))
        return [base for base in bases if base], methods

    def _method_spec(self, elem: ts.Node) -> Function:
        name = text(elem.child_by_field_name("name"), self.src)
        return Function(
            name=name,
            line_range=lines_of(elem),
            byte_range=(elem.start_byte, elem.end_byte),
            signature=collapse(text(elem, self.src)),
            parameters=self._parameters(elem.child_by_field_name("parameters")),
            docstring=_doc(elem, self.src),
            exported=_exported(name),
        )

    # -- functions and methods ---------------------------------------------------
    def _functions(self) -> None:
        for node in self.ordered("definition.function"):
            func = self._function(node, text(node.child_by_field_name("name"), self.src))
            self.out.functions.append(func)
            self.names.append((node.start_byte, func.name))

    def _variables(self) -> None:
        for spec in self.ordered("definition.variable"):
            names = spec.children_by_field_name("name")
            self.names.extend((spec.start_byte, text(name, self.src)) for name in names)
            value = spec.child_by_field_name("value")
            if len(names) != 1 or value is None or value.named_child_count != 1:
                continue
            literal = value.named_children[0]
            if literal.type == "func_literal":
                grouped = spec.parent is not None and spec.parent.type == "var_spec_list"
                node = spec if grouped else spec.parent
                self.out.functions.append(self._function(node, text(names[0], self.src), literal))
        self.names.extend(
            (n.start_byte, text(n, self.src)) for n in self.caps.get("name.definition.constant", [])
        )

    def _methods(self, types: dict[str, ClassDef]) -> None:
        impls: dict[str, ClassDef] = {}
        for node in self.ordered("definition.method"):
            method = self._function(node, text(node.child_by_field_name("name"), self.src))
            owner = _receiver_type(node, self.src)
            if not owner:  # no receiver type (broken syntax): keep it as a function
                self.out.functions.append(method)
                continue
            cls = types.get(owner) or impls.get(owner)
            if cls is None:
                cls = impls[owner] = ClassDef(
                    name=owner,
                    line_range=method.line_range,
                    byte_range=method.byte_range,
                    signature="",
                    kind="impl",
                    exported=_exported(owner),
                )
                self.out.classes.append(cls)
            elif cls.kind == "impl":
                cls.line_range = (cls.line_range[0], method.line_range[1])
                cls.byte_range = (cls.byte_range[0], method.byte_range[1])
            cls.methods.append(method)

    def _function(self, node: ts.Node, name: str, literal: ts.Node | None = None) -> Function:
        """A function, method, or ``var name = func...`` (``literal`` is the func literal)."""
        shape = literal if literal is not None else node
        func = Function(
            name=name,
            line_range=lines_of(node),
            byte_range=(node.start_byte, node.end_byte),
            signature=head_signature(node, shape.child_by_field_name("body"), self.src),
            parameters=self._parameters(shape.child_by_field_name("parameters")),
            docstring=_doc(node, self.src),
            exported=_exported(name),
        )
        self.bodies.append(func)
        return func

    def _parameters(self, params: ts.Node | None) -> list[str]:
        if params is None:
            return []
        names: list[str] = []
        for param in params.named_children:
            if param.type not in _PARAMETERS:
                continue  # comments, ERROR nodes
            idents = param.children_by_field_name("name")
            found = [text(ident, self.src) for ident in idents] or [
                collapse(text(param.child_by_field_name("type"), self.src))
            ]
            if param.type == "variadic_parameter_declaration":
                found = ["..." + value for value in found]
            names.extend(found)
        return names


def _file_level(node: ts.Node) -> bool:
    """Directly in the source file, looking through ERROR nodes left by bad syntax."""
    parent = node.parent
    while parent is not None and parent.type == "ERROR":
        parent = parent.parent
    return parent is None or parent.type == "source_file"


def _exported(name: str) -> bool:
    return name[:1].isupper()


def _doc(node: ts.Node, source: bytes) -> str:
    """The comment group directly above ``node``, without directive lines (``//go:...``).

    A comment that trails code on its own line belongs to that code, not to ``node``.
    """
    parts: list[str] = []
    row = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and sibling.type == "comment" and sibling.end_point[0] >= row - 1:
        before = sibling.prev_sibling
        if (
            before is not None
            and before.type != "comment"
            and before.end_point[0] == sibling.start_point[0]
        ):
            break
        raw = text(sibling, source)
        if not _DIRECTIVE.match(raw):
            parts.append(raw)
        row = sibling.start_point[0]
        sibling = before
    parts.reverse()
    return "\n".join(_clean(raw) for raw in parts).strip("\n")


def _clean(raw: str) -> str:
    """Comment text the way go/ast gives it: ``//`` and one space removed, tabs kept.

    Keeping the tab matters: Go doc comments mark example code by indenting it.
    """
    if raw.startswith("/*"):
        return clean_comment(raw)
    body = raw[2:]
    return (body[1:] if body.startswith(" ") else body).rstrip()


def _type_name(node: ts.Node | None, source: bytes) -> str:
    """A type's name without pointer marks and type arguments: ``*pkg.T[K]`` -> ``pkg.T``."""
    while node is not None and node.type in ("pointer_type", "generic_type"):
        node = node.child_by_field_name("type") or named_child_at(node, 0)
    return collapse(text(node, source))


def _receiver_type(method: ts.Node, source: bytes) -> str:
    receiver = method.child_by_field_name("receiver")
    params = (
        [p for p in receiver.named_children if p.type == "parameter_declaration"]
        if receiver
        else []
    )
    if not params:
        return ""
    return _type_name(params[0].child_by_field_name("type"), source)


def _callee(node: ts.Node, source: bytes) -> str | None:
    """Callee text: selectors and names as written, inner argument lists as ``()``.

    Walks down the callee's operand chain (not the whole subtree), so the cost is
    the chain's length.
    """
    raw = source[node.start_byte : node.end_byte]
    if _SIMPLE.fullmatch(raw):
        return raw.decode("utf-8", "replace")
    parts: list[str] = []
    current: ts.Node | None = node
    while current is not None:
        kind = current.type
        if kind in _LEAVES or kind == "qualified_type":
            parts.append(text(current, source))
            return "".join(reversed(parts))
        if kind == "selector_expression":
            parts.append("." + text(current.child_by_field_name("field"), source))
            current = current.child_by_field_name("operand")
        elif kind == "call_expression":
            parts.append("()")
            current = current.child_by_field_name("function")
        elif kind in ("index_expression", "generic_type"):
            current = current.child_by_field_name("operand") or current.child_by_field_name("type")
        elif kind == "parenthesized_expression" and current.named_child_count == 1:
            current = current.named_children[0]
        else:
            return None
    return None
