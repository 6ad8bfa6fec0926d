"""Behaviour of the TypeScript and TSX parsers, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.base import load_query_source
from llmstruct.engine.parsers.typescript import TSXParser, TypeScriptParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "typescript"


def parse(source: str) -> FileAnalysis:
    return TypeScriptParser().parse(source.encode(), "x.ts")


def test_ts_interface_is_a_class_of_kind_interface_with_signature_methods() -> None:
    result = parse(
        "/** Store. */\nexport interface Repo<T> extends Iterable<T>, ns.Disposable {\n"
        "  get(id: string): T;\n  size: number;\n  (call: number): void;\n}\n"
    )
    (repo,) = result.classes
    assert (repo.kind, repo.name, repo.exported, repo.docstring) == (
        "interface",
        "Repo",
        True,
        "Store.",
    )
    assert repo.bases == ["Iterable<T>", "ns.Disposable"]
    assert repo.signature == "interface Repo<T> extends Iterable<T>, ns.Disposable"
    assert [(m.name, m.parameters, m.signature) for m in repo.methods] == [
        ("get", ["id"], "get(id: string): T")
    ]


def test_ts_type_aliases_and_enums_are_classes_without_methods() -> None:
    result = parse("export type Pair<T> = [T, T];\nconst enum E { A, B }\n")
    assert [(c.kind, c.name, c.signature, c.exported) for c in result.classes] == [
        ("type", "Pair", "type Pair<T>", True),
        ("enum", "E", "const enum E", False),
    ]
    assert result.exports == ["Pair"]


def test_ts_class_bases_are_extends_then_implements_and_decorators_lose_the_at() -> None:
    result = parse(
        "@Component({ tag: 'x' })\n"
        "export abstract class A<T> extends Base<T> implements I, J<T> {\n"
        "  @Input() name: string;\n  @HostListener('click') onClick(e: Event) {}\n"
        "  abstract run(): void;\n}\n"
    )
    (cls,) = result.classes
    assert cls.bases == ["Base<T>", "I", "J<T>"]
    assert cls.decorators == ["Component({ tag: 'x' })"]
    assert [(m.name, m.decorators) for m in cls.methods] == [
        ("onClick", ["HostListener('click')"]),
        ("run", []),
    ]
    assert cls.signature == "abstract class A<T> extends Base<T> implements I, J<T>"
    assert cls.line_range[0] == 2  # the decorator is not part of the definition


def test_ts_parameters_drop_types_and_this_but_keep_rest() -> None:
    result = parse(
        "function f(this: Window, a: number, b?: string, c = 1, ...rest: any[]): void {}\n"
        "class K { constructor(private readonly x: number, public y?: string) {} }\n"
    )
    assert result.functions[0].parameters == ["a", "b", "c", "...rest"]
    assert result.classes[0].methods[0].parameters == ["x", "y"]


def test_ts_private_and_protected_members_are_not_exported() -> None:
    result = parse(
        "export class A {\n  private a() {}\n  protected b = () => 1;\n"
        "  public c() {}\n  d() {}\n}\n"
    )
    assert [(m.name, m.exported) for m in result.classes[0].methods] == [
        ("a", False),
        ("b", False),
        ("c", True),
        ("d", True),
    ]


def test_ts_overload_signatures_fold_into_the_implementation() -> None:
    result = parse(
        "export function f(a: string): string;\nexport function f(a: number): number;\n"
        "export function f(a: any) { return a; }\n"
        "class C {\n  m(a: string): void;\n  m(a: any) {}\n}\n"
    )
    (func,) = result.functions
    assert func.signature == "function f(a: any)"
    assert [m.signature for m in result.classes[0].methods] == ["m(a: any)"]


def test_ts_declare_function_without_body_is_a_function() -> None:
    result = parse(
        "export declare function df(a: number): void;\n"
        "export declare function df(a: string): void;\n"
    )
    assert [(f.name, f.signature, f.exported) for f in result.functions] == [
        ("df", "function df(a: number): void", True),
        ("df", "function df(a: string): void", True),  # no implementation: all are kept
    ]


def test_ts_namespace_members_are_flattened_with_the_namespace_prefix() -> None:
    result = parse(
        "export namespace Outer {\n  export function f() { g(); }\n  namespace Inner.Deep {\n"
        "    export class C {}\n  }\n  function g() {}\n}\n"
        "declare module 'ambient' { export function skipped(): void; }\n"
        "declare global { function alsoSkipped(): void; }\n"
    )
    assert [(f.name, f.exported) for f in result.functions] == [
        ("Outer.f", True),
        ("Outer.g", False),
    ]
    assert [c.name for c in result.classes] == ["Outer.Inner.Deep.C"]
    assert result.functions[0].calls == ["g"]
    assert result.exports == ["Outer"]


def test_ts_import_forms_include_type_only_and_import_require() -> None:
    result = parse(
        "import type { A } from './a';\nimport fs = require('fs');\n"
        "import B, { type C as D } from './b';\n"
    )
    assert [(i.module, i.name, i.alias) for i in result.imports] == [
        ("./a", "A", None),
        ("fs", None, "fs"),
        ("./b", "default", "B"),
        ("./b", "C", "D"),
    ]


def test_ts_export_equals_is_the_default_export() -> None:
    result = parse("function f() {}\nexport = f;\n")
    assert result.exports == ["default"]
    assert result.functions[0].exported


def test_ts_calls_skip_type_arguments_and_keep_non_null_chains() -> None:
    result = parse("function f(a: A) {\n  new Map<string, number>();\n  a!.b.c<T>();\n}\n")
    assert result.functions[0].calls == ["Map", "a!.b.c"]


def test_tsx_components_are_calls_and_generic_arrows_parse() -> None:
    source = (
        "export const View = ({ items }: Props) =>\n"
        "  <List.Root>{items.map(render)}<li/></List.Root>;\n"
        "const id = <T,>(x: T) => x;\n"
    )
    result = TSXParser().parse(source.encode(), "v.tsx")
    assert result.language == "tsx"
    assert [f.name for f in result.functions] == ["View", "id"]
    assert result.functions[0].calls == ["List.Root", "items.map"]


def test_tsx_query_is_the_typescript_query_plus_jsx_patterns() -> None:
    typescript = load_query_source("typescript").split("\n", 1)[1]
    tsx = load_query_source("tsx").split("\n", 1)[1]
    assert tsx.startswith(typescript)
    assert "jsx_opening_element" in tsx[len(typescript) :]


@pytest.mark.parametrize("parser", [TypeScriptParser, TSXParser], ids=["ts", "tsx"])
@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b"function \xff\xfe(a: \x00) { '\xc3\x28' }\n",
        b"export abstract class A<T extends {",
        (FIXTURES / "store.ts").read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_ts_parsers_return_an_analysis_for_any_input(
    parser: type[TypeScriptParser], source: bytes
) -> None:
    result = parser().parse(source, "bad.ts")
    assert isinstance(result, FileAnalysis)
    assert result.language == parser.language


def test_ts_parsers_survive_every_truncation_of_real_files() -> None:
    for name, parser in (("store.ts", TypeScriptParser()), ("view.tsx", TSXParser())):
        source = (FIXTURES / name).read_bytes()
        for end in range(0, len(source), 37):
            assert parser.parse(source[:end], name).language == parser.language
