"""Rust parser: `use` imports, functions, structs/enums/traits with their impls.

Strategy: one query run (``queries/rust-tags.scm``) finds the items, impls, use
declarations and every callee; Python assembles records from the captures with
field lookups, walking up only from definitions (a few levels) to find their
inline ``mod`` path. Calls are assigned to their function by byte range
(``base.attach_calls``); how a callee is written as a call is ``rust_calls.py``'s
job.

Conventions (the contract with call resolution):

* ``Import``: one record per bound name, the path written with ``::`` and
  ``crate::``/``super::``/``self::``/``::`` prefixes kept. ``use a::b::C;`` ->
  (``a::b``, ``C``); ``use a::b::{c, d as e};`` -> (``a::b``, ``c``), (``a::b``,
  ``d``, alias ``e``); ``use a::b::*;`` -> (``a::b``, ``*``); ``use a::b;`` and
  ``use a::b::{self};`` -> (``a``, ``b``); a lone crate ``use serde;`` -> (``serde``,
  None); ``extern crate foo as bar;`` -> (``foo``, None, ``bar``). Every ``use`` in
  the file counts, including those inside inline modules and function bodies.
* Items inside inline ``mod x { }`` blocks are flattened with the module path as a
  prefix: ``x::f``, ``x::S``. ``exported`` means the item and every enclosing
  inline module carry a visibility modifier. Trait methods take the trait's
  ``exported``; methods of a trait impl are exported (their visibility is the
  trait's); inherent methods need their own ``pub``.
* ``impl`` blocks attach their methods to the struct/enum/union/trait/type of
  that name in the file (looked up in the impl's module, then at file level) and
  add the implemented trait to its bases; otherwise they build one
  ``kind="impl"`` ClassDef per type name as written without generics (``Vec``,
  ``fmt::Formatter``), spanning its first to last impl block.
* Calls are callee expressions as written with argument lists inside the callee
  reduced to ``()``, turbofish/generic arguments dropped, ``?`` and ``.await``
  kept: ``foo``, ``Foo::new``, ``self.bar``, ``x.iter().map`` (each call of a
  chain is recorded: ``x.iter`` then ``x.iter().map``), ``Vec::new`` for
  ``Vec::<u8>::new``. Macros are recorded with their bang: ``println!``. Macro
  arguments are unparsed token trees, so inside them a path directly followed by
  ``(...)`` is taken as a call (``assert_eq!(foo(1), 2)`` records ``foo``).
  Callees of other shapes (closures, index expressions) are skipped.
"""

from __future__ import annotations

import tree_sitter as ts
import tree_sitter_rust

from llmstruct.engine.model import ClassDef, FileAnalysis, Function, Import
from llmstruct.engine.parsers.base import (
    CaptureBuilder,
    LanguageParser,
    attach_calls,
    clean_comment,
    collapse,
    compact,
    dedent_lines,
    dedupe,
    head_signature,
    lines_of,
    named_child_at,
    text,
)
from llmstruct.engine.parsers.rust_calls import WORDS, callee, macro_name, token_call

_KINDS = {
    "struct_item": "struct",
    "union_item": "struct",
    "enum_item": "enum",
    "trait_item": "trait",
    "type_item": "type",
}
_COMMENTS = frozenset({"line_comment", "block_comment"})


class RustParser(LanguageParser):
    language = "rust"
    extensions = (".rs",)

    def grammar(self) -> object:
        return tree_sitter_rust.language()

    def extract(self, tree: ts.Tree, source: bytes, path: str) -> FileAnalysis:
        analysis = _Builder.run(self, tree, source, path)
        analysis.module_doc = _module_doc(tree.root_node, source)
        return analysis


class _Builder(CaptureBuilder):
    """Turns one file's captures into the FileAnalysis records."""

    def __init__(self, captures: dict[str, list[ts.Node]], source: bytes, out: FileAnalysis):
        super().__init__(captures, source, out)
        self.types: dict[str, ClassDef] = {}
        self.impls: dict[str, ClassDef] = {}
        #: impl/trait node id -> (owner record, exported override for its methods).
        self.owners: dict[int, tuple[ClassDef, bool | None]] = {}
        self.names: list[tuple[int, str]] = []

    def build(self) -> None:
        self._imports()
        for kind in ("definition.class", "definition.interface"):
            for node in self.ordered(kind):
                self._type(node)
        for node in self.ordered("reference.implementation"):
            self._impl(node)
        for node in self.ordered("definition.function"):
            self._function(node)
        self._public_names()
        self.out.classes.sort(key=lambda cls: cls.byte_range[0])
        # Calls in const/static initialisers fall outside every function.
        attach_calls(
            self.bodies,
            self.src,
            (self.caps.get("name.reference.call", ()), callee),
            (self.caps.get("name.reference.macro", ()), macro_name),
            (self.caps.get("name.reference.token", ()), token_call),
        )
        self.names.sort()
        self.out.exports = dedupe([name for _, name in self.names])

    # -- imports -----------------------------------------------------------------
    def _imports(self) -> None:
        for decl in self.ordered("reference.import"):
            line = decl.start_point[0] + 1
            found: list[Import] = []
            if decl.type == "extern_crate_declaration":
                alias = decl.child_by_field_name("alias")
                name = _path(decl.child_by_field_name("name"), self.src)
                found.append(Import(name, None, _path(alias, self.src) or None, line))
            else:
                _use_tree(decl.child_by_field_name("argument"), "", line, self.src, found)
            self.out.imports.extend(found)
            if _is_pub(decl) and decl.parent is not None and decl.parent.type == "source_file":
                self.names.extend(
                    (decl.start_byte, imp.binding) for imp in found if imp.name != "*"
                )

    # -- types and impls ---------------------------------------------------------
    def _type(self, node: ts.Node) -> None:
        scope = _scope(node, self.src)
        if scope is None:
            return  # an item inside a function body
        prefix, public = scope
        name = prefix + text(node.child_by_field_name("name"), self.src)
        decorators, doc = _attributes_and_doc(node, self.src)
        kind = _KINDS[node.type]
        cls = ClassDef(
            name=name,
            line_range=lines_of(node),
            byte_range=(node.start_byte, node.end_byte),
            signature=_item_signature(node, self.src),
            kind=kind,
            bases=_trait_bounds(node.child_by_field_name("bounds"), self.src),
            decorators=decorators,
            docstring=doc,
            exported=public and _is_pub(node),
        )
        self.types.setdefault(name, cls)
        self.out.classes.append(cls)
        if kind == "trait":
            self.owners[node.id] = (cls, cls.exported)
        if not prefix and cls.exported:
            self.names.append((node.start_byte, name))

    def _impl(self, node: ts.Node) -> None:
        scope = _scope(node, self.src)
        if scope is None:
            return
        type_name = _type_name(node.child_by_field_name("type"), self.src)
        trait = _type_name(node.child_by_field_name("trait"), self.src)
        target = self.types.get(scope[0] + type_name) or self.types.get(type_name)
        if target is None:
            target = self._impl_record(node, type_name)
        if trait and trait not in target.bases:
            target.bases.append(trait)
        self.owners[node.id] = (target, True if trait else None)

    def _impl_record(self, node: ts.Node, type_name: str) -> ClassDef:
        """The ``kind="impl"`` record for a type declared elsewhere, grown per block."""
        cls = self.impls.get(type_name)
        if cls is not None:
            cls.line_range = (cls.line_range[0], node.end_point[0] + 1)
            cls.byte_range = (cls.byte_range[0], node.end_byte)
            return cls
        decorators, doc = _attributes_and_doc(node, self.src)
        cls = self.impls[type_name] = ClassDef(
            name=type_name,
            line_range=lines_of(node),
            byte_range=(node.start_byte, node.end_byte),
            signature=head_signature(node, node.child_by_field_name("body"), self.src),
            kind="impl",
            decorators=decorators,
            docstring=doc,
            exported=False,
        )
        self.out.classes.append(cls)
        return cls

    # -- functions and methods ---------------------------------------------------
    def _function(self, node: ts.Node) -> None:
        parent = node.parent
        owner = parent.parent if parent is not None and parent.type == "declaration_list" else None
        if owner is not None and owner.type in ("impl_item", "trait_item"):
            found = self.owners.get(owner.id)
            if found is None:
                return  # an impl inside a function body
            cls, exported = found
            method = self._record(node, "", exported if exported is not None else _is_pub(node))
            cls.methods.append(method)
            if cls.kind == "impl":
                cls.exported = cls.exported or method.exported
            return
        scope = _scope(node, self.src)
        if scope is None or node.type != "function_item":
            return  # nested fn (its calls belong to the enclosing one) or extern block
        func = self._record(node, scope[0], scope[1] and _is_pub(node))
        self.out.functions.append(func)
        if not scope[0] and func.exported:
            self.names.append((node.start_byte, func.name))

    def _record(self, node: ts.Node, prefix: str, exported: bool) -> Function:
        body = node.child_by_field_name("body")
        decorators, doc = _attributes_and_doc(node, self.src)
        func = Function(
            name=prefix + text(node.child_by_field_name("name"), self.src),
            line_range=lines_of(node),
            byte_range=(node.start_byte, node.end_byte),
            signature=head_signature(node, body, self.src).rstrip(";"),
            parameters=_parameters(node.child_by_field_name("parameters"), self.src),
            decorators=decorators,
            docstring=doc,
            is_async=_is_async(node, self.src),
            exported=exported,
        )
        if body is not None:
            self.bodies.append(func)
        return func

    def _public_names(self) -> None:
        for kind in ("definition.module", "definition.constant"):
            for node in self.ordered(kind):
                parent = node.parent
                if parent is not None and parent.type == "source_file" and _is_pub(node):
                    self.names.append(
                        (node.start_byte, text(node.child_by_field_name("name"), self.src))
                    )


def _scope(node: ts.Node, source: bytes) -> tuple[str, bool] | None:
    """(``a::b::`` inline-module prefix, all modules public) for a module-level item.

    None when the item sits in a function body, impl, trait or extern block. ERROR
    nodes left by bad syntax are looked through.
    """
    mods: list[str] = []
    public = True
    parent = node.parent
    while parent is not None and parent.type != "source_file":
        if parent.type == "declaration_list":
            owner = parent.parent
            if owner is None or owner.type != "mod_item":
                return None
            mods.append(text(owner.child_by_field_name("name"), source))
            public = public and _is_pub(owner)
            parent = owner
        elif parent.type != "ERROR":
            return None
        parent = parent.parent
    return "".join(name + "::" for name in reversed(mods)), public


def _is_pub(node: ts.Node) -> bool:
    first = named_child_at(node, 0)
    return first is not None and first.type == "visibility_modifier"


def _is_async(node: ts.Node, source: bytes) -> bool:
    for child in node.children:
        if child.type == "function_modifiers":
            return "async" in text(child, source).split()
        if child.type == "fn":
            return False
    return False


def _attributes_and_doc(node: ts.Node, source: bytes) -> tuple[list[str], str]:
    """Outer attributes and ``///``/``/** */`` doc comments written above an item.

    Rust attaches outer doc comments to the next item whatever lies between, so
    plain comments and blank lines do not end the run; anything else does.
    """
    attributes: list[str] = []
    docs: list[str] = []
    sibling = node.prev_sibling
    while sibling is not None:
        kind = sibling.type
        if kind in _COMMENTS:
            # Checked on the bytes: most comment lines above an item are doc lines,
            # and plain comments are skipped without decoding them.
            start = sibling.start_byte
            if _is_outer_doc(source[start : start + 4]):
                docs.append(source[start : sibling.end_byte].decode("utf-8", "replace"))
        elif kind == "attribute_item":
            attributes.append(collapse(text(sibling, source)[2:-1]))
        else:
            break
        sibling = sibling.prev_sibling
    attributes.reverse()
    docs.reverse()
    return attributes, _clean_docs(docs, "///")


def _clean_docs(docs: list[str], line_marker: str) -> str:
    """Doc comment text, unindented as rustdoc does: by the group's common indentation.

    A run of ``///`` lines is one text, so example code keeps its relative indent
    (and slicing off the marker is much cheaper than a regex per line).
    """
    if all(raw.startswith(line_marker) for raw in docs):
        return dedent_lines([raw[3:].rstrip() for raw in docs])
    return "\n".join(clean_comment(raw) for raw in docs)


def _is_outer_doc(head: bytes) -> bool:
    """Whether a comment starting with these (4) bytes is an outer doc comment."""
    if head.startswith(b"///"):
        return not head.startswith(b"////")
    return head.startswith(b"/**") and not head.startswith((b"/***", b"/**/"))


def _module_doc(root: ts.Node, source: bytes) -> str:
    """``//!`` / ``/*! */`` inner doc comments at the top of the file."""
    docs: list[str] = []
    for child in root.children:
        if child.type not in _COMMENTS | {"inner_attribute_item"}:
            break
        raw = text(child, source)
        if raw.startswith(("//!", "/*!")):
            docs.append(raw)
    return _clean_docs(docs, "//!")


def _item_signature(node: ts.Node, source: bytes) -> str:
    body = node.child_by_field_name("body")
    if body is None or body.type == "ordered_field_declaration_list" or node.type == "type_item":
        return collapse(text(node, source)).rstrip(";").rstrip()  # unit/tuple struct, alias
    return head_signature(node, body, source)


def _type_name(node: ts.Node | None, source: bytes) -> str:
    """A type as written without generic arguments or references: ``&'a Vec<T>`` -> ``Vec``."""
    while node is not None and node.type in ("generic_type", "reference_type", "pointer_type"):
        node = node.child_by_field_name("type")
    return collapse(text(node, source))


def _trait_bounds(bounds: ts.Node | None, source: bytes) -> list[str]:
    if bounds is None:
        return []
    kinds = ("type_identifier", "scoped_type_identifier", "generic_type")
    return [_type_name(bound, source) for bound in bounds.named_children if bound.type in kinds]


def _parameters(params: ts.Node | None, source: bytes) -> list[str]:
    names: list[str] = []
    for param in params.named_children if params is not None else ():
        if param.type == "self_parameter":
            names.append("self")
        elif param.type == "parameter":
            pattern = param.child_by_field_name("pattern")
            names.append(collapse(text(pattern, source)) if pattern is not None else "_")
        elif param.type == "variadic_parameter":
            names.append("...")
    return names


def _path(node: ts.Node | None, source: bytes) -> str:
    """A path as written, whitespace removed."""
    return compact(text(node, source))


def _use_tree(
    node: ts.Node | None, prefix: str, line: int, source: bytes, out: list[Import]
) -> None:
    """Append one Import per name bound by a ``use`` tree under path ``prefix``."""
    if node is None:
        return
    kind = node.type
    if kind in ("scoped_use_list", "use_list"):
        path = node.child_by_field_name("path")
        inner = _join(prefix, _path(path, source)) if path is not None else prefix
        items = node.child_by_field_name("list") if kind == "scoped_use_list" else node
        for child in items.named_children if items is not None else ():
            _use_tree(child, inner, line, source, out)
    elif kind == "use_wildcard":
        path = named_child_at(node, 0)
        out.append(Import(_join(prefix, _path(path, source)) if path else prefix, "*", None, line))
    elif kind == "use_as_clause":
        alias = node.child_by_field_name("alias")
        full = _join(prefix, _path(node.child_by_field_name("path"), source))
        out.append(_binding(full, _path(alias, source) or None, line))
    elif kind == "self" and prefix:
        out.append(_binding(prefix, None, line))  # `{self}` binds the list's module
    elif kind in WORDS or kind in ("scoped_identifier", "metavariable"):
        out.append(_binding(_join(prefix, _path(node, source)), None, line))


def _join(prefix: str, path: str) -> str:
    return f"{prefix}::{path}" if prefix and path else prefix or path


def _binding(full: str, alias: str | None, line: int) -> Import:
    module, _, name = full.rpartition("::")
    if not module or module == ":":
        return Import(full, None, alias, line)
    return Import(module, name, alias, line)
