"""Behaviour of the Go parser, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.go import GoParser

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "go" / "cache.go"


def parse(source: str) -> FileAnalysis:
    return GoParser().parse(source.encode(), "x.go")


def test_go_package_clause_and_its_comment_give_package_and_module_doc() -> None:
    result = parse("//go:build linux\n\n// Package web serves.\npackage web\n")
    assert result.package == "web"
    assert result.module_doc == "Package web serves."


def test_go_imports_one_record_per_spec_with_explicit_names_as_aliases() -> None:
    result = parse(
        'package p\nimport "fmt"\nimport (\n\tj "encoding/json"\n\t_ "embed"\n\t. "strings"\n)\n'
    )
    got = [(i.module, i.name, i.alias, i.line) for i in result.imports]
    assert got == [
        ("fmt", None, None, 2),
        ("encoding/json", None, "j", 4),
        ("embed", None, "_", 5),
        ("strings", None, ".", 6),
    ]


def test_go_method_attaches_to_its_receiver_type() -> None:
    result = parse(
        "package p\ntype Cache[K comparable] struct{}\n"
        "func (c *Cache[K]) Get(k K) {}\nfunc (Cache[K]) Len() int { return 0 }\n"
    )
    (cache,) = result.classes
    assert (cache.name, cache.kind) == ("Cache", "struct")
    assert [m.name for m in cache.methods] == ["Get", "Len"]
    assert cache.methods[0].parameters == ["k"]  # the receiver is not a parameter
    assert result.functions == []


def test_go_methods_of_a_type_declared_elsewhere_form_one_impl_class() -> None:
    result = parse(
        "package p\nfunc (h *Handler) A() {}\n\nfunc F() {}\n\nfunc (h Handler) B() {}\n"
    )
    (impl,) = result.classes
    assert (impl.name, impl.kind, impl.signature) == ("Handler", "impl", "")
    assert [m.name for m in impl.methods] == ["A", "B"]
    assert impl.line_range == (2, 6)
    assert [f.name for f in result.functions] == ["F"]


def test_go_struct_and_interface_embeddings_are_bases() -> None:
    result = parse(
        "package p\ntype S struct {\n\tsync.Mutex\n\t*Base[int]\n\tn int\n}\n"
        "type I interface {\n\tio.Reader\n\t// Close closes.\n\tClose() error\n}\n"
        "type N interface{ ~int | ~float64 }\ntype ID = string\n"
    )
    s, i, n, alias = result.classes
    assert s.bases == ["sync.Mutex", "Base"]
    assert (i.kind, i.bases, [m.name for m in i.methods]) == ("interface", ["io.Reader"], ["Close"])
    assert i.methods[0].docstring == "Close closes."
    assert n.bases == []  # a type union is a constraint, not an embedding
    assert (alias.kind, alias.signature) == ("type", "type ID = string")


def test_go_exported_follows_capitalisation() -> None:
    result = parse(
        "package p\nconst Max, min = 1, 2\nvar (\n\tDebug bool\n\tlog = 1\n)\n"
        "type T struct{}\ntype t2 int\nfunc F() {}\nfunc g() {}\n"
    )
    assert result.exports == ["Max", "Debug", "T", "F"]
    assert [(f.name, f.exported) for f in result.functions] == [("F", True), ("g", False)]


def test_go_parameters_are_names_with_variadic_marker_or_the_type_when_unnamed() -> None:
    result = parse("package p\nfunc f(a, b int, rest ...string) {}\nfunc g(int, ...any) {}\n")
    assert [f.parameters for f in result.functions] == [["a", "b", "...rest"], ["int", "...any"]]


def test_go_doc_comment_drops_directives_and_ignores_trailing_comments() -> None:
    result = parse(
        "package p\n// F does things.\n//go:noinline\nfunc F() {}\n"
        "var x = 1 // not a doc\nfunc G() {}\n"
    )
    assert [f.docstring for f in result.functions] == ["F does things.", ""]


def test_go_calls_are_selectors_as_written_with_chains_and_generics() -> None:
    result = parse(
        "package p\nfunc f() {\n\tfmt.Println(1)\n\ts.mu.Lock()\n\tw.Header().Set(k, v)\n"
        "\tMap[int](xs)\n\tpkg.G[int, string](x)\n\t(g)(1)\n\tfunc() { inner() }()\n}\n"
    )
    assert result.functions[0].calls == [
        "fmt.Println",
        "s.mu.Lock",
        "w.Header",
        "w.Header().Set",
        "Map",
        "pkg.G",
        "g",
        "inner",
    ]


def test_go_calls_in_closures_belong_to_the_enclosing_function() -> None:
    result = parse("package p\nfunc f() {\n\tgo func() { a() }()\n\tdefer b()\n}\nvar v = c()\n")
    assert result.functions[0].calls == ["a", "b"]  # `c()` runs at package init


def test_go_function_literal_bound_to_a_package_var_is_a_function() -> None:
    result = parse(
        "package p\n// logf logs.\nvar logf = func(f string, a ...any) { fmt.Printf(f, a...) }\n"
    )
    (logf,) = result.functions
    assert (logf.name, logf.parameters, logf.calls) == ("logf", ["f", "...a"], ["fmt.Printf"])
    assert (logf.signature, logf.docstring) == ("var logf = func(f string, a ...any)", "logf logs.")


def test_go_ranges_and_signature_cover_the_definition() -> None:
    source = "package p\n\n// F doc.\nfunc F(a int) (int, error) {\n\treturn a, nil\n}\n"
    (func,) = parse(source).functions
    assert func.line_range == (4, 6)
    assert source.encode()[func.byte_range[0] : func.byte_range[1]].startswith(b"func F")
    assert func.signature == "func F(a int) (int, error)"


@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b"package p\nfunc \xff\xfe(a \x00 int) { \xc3\x28 }\n",
        b"func (",
        FIXTURE.read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_go_parser_returns_an_analysis_for_any_input(source: bytes) -> None:
    result = GoParser().parse(source, "bad.go")
    assert isinstance(result, FileAnalysis)
    assert result.language == "go"


def test_go_parser_survives_every_truncation_of_a_real_file() -> None:
    source = FIXTURE.read_bytes()
    parser = GoParser()
    for end in range(0, len(source), 37):
        assert parser.parse(source[:end], "cut.go").language == "go"
