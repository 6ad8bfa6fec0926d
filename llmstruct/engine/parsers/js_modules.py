"""Imports and exports of JavaScript/TypeScript modules: ES ``import``/``export``
statements, CommonJS ``require`` and ``module.exports``/``exports.x``.

``ModuleBindings`` is the half of ``javascript.ScriptBuilder`` that handles
these captures; the builder mixes it in and supplies ``add_value`` (a function or
class defined by an export or an assignment gets its entry there).

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

import tree_sitter as ts

from llmstruct.engine.model import Import
from llmstruct.engine.parsers.base import compact, named_child_at, text

_DOTTED_TARGET = re.compile(r"[\w$]+(\.[\w$]+)*")
#: Node types of a function value (``const f = () => ...``, ``x = function () {}``).
FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "generator_function"})
_EXPORT_TARGETS = ("module.exports.", "exports.")


class ModuleBindings:
    """Import and export handlers over the builder's ``imports``/``exports`` lists."""

    source: bytes
    imports: list[Import]
    exports: list[str]
    #: Local names made visible by an export (``export {a}``, ``module.exports = a``).
    exported_locals: set[str]

    def add_value(self, name: str, value: ts.Node, outer: ts.Node, exported: bool) -> None:
        """Record the function or class ``value`` (implemented by the builder)."""
        raise NotImplementedError

    # -- exports -----------------------------------------------------------------
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
        if named and (value.type in FUNCTION_VALUES or value.type == "class"):
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
            if value.type in FUNCTION_VALUES or value.type == "class":
                self.add_value(_entry_name("default", value, self.source), value, value, True)

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
        module = string_value(named_child_at(arguments, 0), self.source)
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


def _entry_name(target: str, value: ts.Node, source: bytes) -> str:
    """Name of a function/class assigned to ``target`` (``default`` for module.exports)."""
    if target in ("default", "module.exports"):
        own = value.child_by_field_name("name")
        return text(own, source) if own is not None else "default"
    for prefix in _EXPORT_TARGETS:
        if target.startswith(prefix):
            return target[len(prefix) :]
    return target


def string_value(node: ts.Node | None, source: bytes) -> str:
    """Content of a string literal node (quotes removed, escapes kept as written)."""
    if node is None or node.type != "string":
        return ""
    return source[node.start_byte + 1 : node.end_byte - 1].decode("utf-8", "replace")
