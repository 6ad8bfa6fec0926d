"""TypeScript and TSX parsers.

Everything JavaScript has (``javascript.py``'s ``ScriptBuilder`` already reads
TypeScript's parameter, field, accessibility and decorator nodes) plus what only
TypeScript has:

* ``interface`` -> ClassDef(kind="interface"), bases from ``extends``, method
  signatures as methods (property signatures, call/construct/index signatures
  are not methods);
* ``type X = ...`` -> ClassDef(kind="type"), no methods;
* ``enum`` / ``const enum`` -> ClassDef(kind="enum");
* class bases: the ``extends`` base with its type arguments (``Base<T>``), then
  the ``implements`` types, as written;
* ``declare function f(): T;`` and overload signatures -> functions without a body,
  dropped when an implementation with the same name exists in the same scope;
* ``namespace NS { export function f() {} }`` -> members flattened as ``NS.f``
  (nested namespaces give ``A.B.f``), ``exported`` by their own ``export``;
  ambient ``declare module "x" {}`` and ``declare global {}`` blocks are skipped;
* ``import fs = require('fs')`` -> Import("fs", alias="fs"); ``import type`` is an
  ordinary import; ``export = x`` is the ``default`` export.

The TSX grammar is a separate language with JSX nodes the TypeScript grammar
lacks, hence ``tsx-tags.scm``: the TypeScript query plus the JSX patterns.
"""

from __future__ import annotations

from typing import ClassVar

import tree_sitter as ts
import tree_sitter_typescript

from llmstruct.engine.model import ClassDef, Function, Import
from llmstruct.engine.parsers.base import collapse, compact, preceding_comments, text
from llmstruct.engine.parsers.javascript import (
    JavaScriptParser,
    ScriptBuilder,
    content_start,
    definition_head,
    is_jsdoc,
)
from llmstruct.engine.parsers.js_modules import string_value


class TypeScriptBuilder(ScriptBuilder):
    handlers: ClassVar[dict[str, str]] = {
        **ScriptBuilder.handlers,
        "definition.interface": "on_interface",
        "definition.type": "on_type_alias",
        "definition.enum": "on_enum",
    }

    def __init__(self, source: bytes) -> None:
        super().__init__(source)
        self.bodyless: set[int] = set()  # id() of signature-only Functions
        self._prefixes: dict[tuple[int, int], str | None] = {}

    def namespace_prefix(self, namespace: ts.Node | None) -> str | None:
        """``A.B.`` for a (nested) TypeScript namespace; None for anything else."""
        if namespace is None or namespace.type not in ("internal_module", "module"):
            return None
        key = (namespace.start_byte, namespace.end_byte)
        if key not in self._prefixes:
            name = namespace.child_by_field_name("name")
            outer = namespace
            if namespace.parent is not None and namespace.parent.type == "expression_statement":
                outer = namespace.parent  # a bare `namespace X {}` is an expression statement
            place = self.placement(outer) if name is not None and name.type != "string" else None
            self._prefixes[key] = (
                None if place is None else f"{place[0]}{compact(text(name, self.source))}."
            )
        return self._prefixes[key]

    def function(
        self,
        name: str,
        outer: ts.Node,
        fn: ts.Node,
        exported: bool,
        decorators: list[str] | None = None,
    ) -> Function:
        function = super().function(name, outer, fn, exported, decorators)
        if fn.child_by_field_name("body") is None:  # `declare function`, overloads
            self.bodyless.add(id(function))
        return function

    def finish(self) -> None:
        self.functions = self.fold_overloads(self.functions)
        for cls in self.classes:
            cls.methods = self.fold_overloads(cls.methods)

    def fold_overloads(self, functions: list[Function]) -> list[Function]:
        """Drop bodyless overload signatures of names that have an implementation."""
        implemented = {f.name for f in functions if id(f) not in self.bodyless}
        return [f for f in functions if id(f) not in self.bodyless or f.name not in implemented]

    def bases(self, heritage: ts.Node | None) -> list[str]:
        """``extends`` (with its type arguments: ``Base<T>``), then ``implements`` types."""
        bases: list[str] = []
        for child in heritage.named_children if heritage is not None else ():
            if child.type == "extends_clause":
                value = child.child_by_field_name("value")
                if value is not None:
                    head = self.source[value.start_byte : child.end_byte]
                    bases.append(collapse(head.decode("utf-8", "replace")))
            elif child.type == "implements_clause":
                types = [t for t in child.named_children if t.type != "comment"]
                bases += [collapse(text(t, self.source)) for t in types]
        return bases

    def on_import(self, node: ts.Node) -> None:
        clause = next((c for c in node.named_children if c.type == "import_require_clause"), None)
        if clause is None:
            super().on_import(node)
            return
        # `import fs = require('fs')` binds the module like `const fs = require('fs')`
        source = node.child_by_field_name("source") or clause.child_by_field_name("source")
        binding = next((c for c in clause.named_children if c.type == "identifier"), None)
        if source is not None and binding is not None:
            self.imports.append(
                Import(
                    module=string_value(source, self.source),
                    alias=text(binding, self.source),
                    line=node.start_point[0] + 1,
                )
            )

    def on_interface(self, node: ts.Node) -> None:
        body = node.child_by_field_name("body")
        record = self.type_record(node, "interface", body)
        if record is None:
            return
        clause = next((c for c in node.children if c.type == "extends_type_clause"), None)
        if clause is not None:
            record.bases = [
                collapse(text(base, self.source)) for base in clause.children_by_field_name("type")
            ]
        for member in body.named_children if body is not None else ():
            if member.type == "method_signature":
                method = self.member(member, [])
                if method is not None:
                    method.docstring = preceding_comments(member, self.source, is_jsdoc)
                    record.methods.append(method)
        record.methods = self.fold_overloads(record.methods)

    def on_type_alias(self, node: ts.Node) -> None:
        self.type_record(node, "type", node.child_by_field_name("value"))

    def on_enum(self, node: ts.Node) -> None:
        self.type_record(node, "enum", node.child_by_field_name("body"))

    def type_record(self, node: ts.Node, kind: str, body: ts.Node | None) -> ClassDef | None:
        """A ClassDef for a module-level type declaration; None when nested."""
        place = self.placement(node)
        name = node.child_by_field_name("name")
        if place is None or name is None:
            return None
        prefix, exported, statement = place
        start = content_start(node)
        record = ClassDef(
            name=prefix + text(name, self.source),
            line_range=(start.start_point[0] + 1, node.end_point[0] + 1),
            byte_range=(start.start_byte, node.end_byte),
            signature=definition_head(self.source, start.start_byte, body or node),
            kind=kind,
            docstring=preceding_comments(statement, self.source, is_jsdoc),
            exported=exported,
        )
        self.classes.append(record)
        return record


class TypeScriptParser(JavaScriptParser):
    language = "typescript"
    extensions = (".ts", ".mts", ".cts")
    builder = TypeScriptBuilder

    def grammar(self) -> object:
        return tree_sitter_typescript.language_typescript()


class TSXParser(TypeScriptParser):
    language = "tsx"
    extensions = (".tsx",)

    def grammar(self) -> object:
        return tree_sitter_typescript.language_tsx()
