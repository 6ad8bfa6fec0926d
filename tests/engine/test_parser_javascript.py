"""Behaviour of the JavaScript parser, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.javascript import JavaScriptParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "javascript"


def parse(source: str) -> FileAnalysis:
    return JavaScriptParser().parse(source.encode(), "x.js")


def imports(result: FileAnalysis) -> list[tuple[str, str | None, str | None]]:
    return [(i.module, i.name, i.alias) for i in result.imports]


def test_js_es_imports_bind_default_named_and_namespace() -> None:
    result = parse(
        "import a, { b, c as d } from './x';\nimport * as ns from 'y';\nimport 'side';\n"
    )
    assert imports(result) == [
        ("./x", "default", "a"),
        ("./x", "b", None),
        ("./x", "c", "d"),
        ("y", None, "ns"),
        ("side", None, None),
    ]


def test_js_require_forms_are_imports_and_dynamic_import_is_ignored() -> None:
    result = parse(
        "const fs = require('fs');\nconst { join, resolve: r } = require('path');\n"
        "const Err = require('errors').HttpError;\nrequire('dotenv/config');\n"
        "async function f() { const m = await import('./lazy.js'); }\n"
    )
    assert imports(result) == [
        ("fs", None, "fs"),
        ("path", "join", None),
        ("path", "resolve", "r"),
        ("errors", "HttpError", "Err"),
        ("dotenv/config", None, None),
    ]
    assert result.functions[0].calls == []  # `import()` is not a call either


def test_js_reexports_are_exports_and_dependencies() -> None:
    result = parse(
        "export { a as b } from './a';\nexport * from './all';\nexport * as ns from './n';\n"
    )
    assert result.exports == ["b", "ns"]
    assert imports(result) == [("./a", "a", "b"), ("./all", "*", None), ("./n", None, "ns")]


def test_js_es_exports_list_names_and_mark_locals_exported() -> None:
    result = parse(
        "export function f() {}\nexport class C {}\nexport const k = 1, g = () => 0;\n"
        "function local() {}\nfunction hidden() {}\nexport { local as renamed };\n"
        "export default function main() {}\n"
    )
    assert result.exports == ["f", "C", "k", "g", "renamed", "default", "main"]
    assert {f.name: f.exported for f in result.functions} == {
        "f": True,
        "g": True,
        "local": True,
        "hidden": False,
        "main": True,
    }


def test_js_commonjs_exports_count() -> None:
    result = parse(
        "function a() {}\nfunction b() {}\nfunction c() {}\n"
        "module.exports = { a, bee: b, inline() {} };\n"
        "exports.version = function () {};\nmodule.exports.c = c;\n"
    )
    assert result.exports == ["default", "a", "bee", "inline", "version", "c"]
    assert all(f.exported for f in result.functions)
    assert [f.name for f in result.functions] == ["a", "b", "c", "version"]  # `inline` skipped


def test_js_default_exported_object_keys_are_not_named_exports() -> None:
    result = parse("function foo() {}\nexport default { foo, bar() {} };\n")
    assert result.exports == ["default"]
    assert result.functions[0].exported  # reachable as `default.foo`


def test_js_anonymous_default_export_is_a_function_named_default() -> None:
    result = parse("export default async (a) => a;\n")
    (func,) = result.functions
    assert (func.name, func.is_async, func.exported) == ("default", True, True)


def test_js_top_level_arrow_function_and_generator_values_are_functions() -> None:
    result = parse(
        "const f = async (a, ...rest) => a;\nvar g = function* gen(x = 1, { y }) {};\n"
        "const h = x => x;\nconst notAFunction = 1;\n"
    )
    assert [(f.name, f.parameters, f.is_async) for f in result.functions] == [
        ("f", ["a", "...rest"], True),
        ("g", ["x", "{ y }"], False),
        ("h", ["x"], False),
    ]
    assert result.functions[0].signature == "const f = async (a, ...rest) =>"


def test_js_functions_assigned_to_member_targets_are_named_by_the_target() -> None:
    result = parse("app.init = function init() { this.cache(); };\nFoo.prototype.bar = () => 1;\n")
    assert [(f.name, f.exported) for f in result.functions] == [
        ("app.init", False),
        ("Foo.prototype.bar", False),
    ]
    assert result.functions[0].calls == ["this.cache"]


def test_js_class_members_cover_accessors_static_private_and_arrow_fields() -> None:
    result = parse(
        "class A extends mixin(B, C) {\n  constructor(a) { super(a); }\n  static make() {}\n"
        "  get size() {}\n  set size(v) {}\n  #secret() {}\n  onClick = (e) => this.go(e);\n"
        "  count = 0;\n  async *stream() {}\n}\n"
    )
    (cls,) = result.classes
    assert cls.bases == ["mixin(B, C)"]
    assert [(m.name, m.exported) for m in cls.methods] == [
        ("constructor", True),
        ("make", True),
        ("size", True),
        ("size", True),
        ("#secret", False),
        ("onClick", True),
        ("stream", True),
    ]
    assert [m.signature for m in cls.methods][2:4] == ["get size()", "set size(v)"]
    assert cls.methods[5].calls == ["this.go"]
    assert cls.methods[6].is_async


def test_js_jsdoc_is_the_docstring_and_plain_comments_are_not() -> None:
    result = parse(
        "/**\n * Adds.\n * @param {number} a first\n */\nexport function add(a) {}\n\n"
        "// plain\nfunction plain() {}\n"
    )
    assert [f.docstring for f in result.functions] == ["Adds.\n@param {number} a first", ""]
    assert result.module_doc == ""  # attached to the first declaration


def test_js_leading_detached_jsdoc_is_the_module_doc() -> None:
    assert parse("#!/usr/bin/env node\n/** Tools. */\n\nconst a = 1;\n").module_doc == "Tools."
    assert parse("/** @file Tools. */\nfunction f() {}\n").module_doc == "@file Tools."


def test_js_calls_belong_to_the_top_level_function_and_keep_chains() -> None:
    result = parse(
        "function outer() {\n  function inner() { deep(); }\n  return () => later();\n}\n"
        "function chains(a) {\n  a?.b.c();\n  this.x(1).y(2);\n  new Foo.Bar();\n"
        "  list[0]();\n  promise\n    .then(ok)\n    .catch(fail);\n}\n"
    )
    outer, chains = result.functions
    assert outer.calls == ["deep", "later"]
    assert chains.calls == [
        "a?.b.c",
        "this.x",
        "this.x().y",
        "Foo.Bar",
        "promise.then",
        "promise.then().catch",
    ]


def test_jsx_component_elements_are_calls_and_intrinsic_tags_are_not() -> None:
    result = parse("const App = () => <Layout><div/><UI.Button onClick={go}/></Layout>;\n")
    assert result.functions[0].calls == ["Layout", "UI.Button"]


def test_js_nested_declarations_get_no_entry() -> None:
    result = parse(
        "function f() { class Inner {} const g = () => 1; }\nif (x) { function h() {} }\n"
    )
    assert [f.name for f in result.functions] == ["f"]
    assert result.classes == []


@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b"function \xff\xfe(a \x00) { '\xc3\x28' }\n",
        b"export default class extends {",
        (FIXTURES / "server.js").read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_js_parser_returns_an_analysis_for_any_input(source: bytes) -> None:
    result = JavaScriptParser().parse(source, "bad.js")
    assert isinstance(result, FileAnalysis)
    assert result.language == "javascript"


def test_js_parser_survives_every_truncation_of_a_real_file() -> None:
    parser = JavaScriptParser()
    for name in ("server.js", "components.jsx"):
        source = (FIXTURES / name).read_bytes()
        for end in range(0, len(source), 37):
            assert parser.parse(source[:end], "cut.js").language == "javascript"
