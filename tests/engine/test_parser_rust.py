"""Behaviour of the Rust parser, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.rust import RustParser

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "rust" / "store.rs"


def parse(source: str) -> FileAnalysis:
    return RustParser().parse(source.encode(), "x.rs")


def test_rust_inner_doc_comments_at_the_top_are_the_module_doc() -> None:
    result = parse("// licence\n//! Crate doc.\n//!\n//!     indented();\n#![no_std]\nfn f() {}\n")
    assert result.module_doc == "Crate doc.\n\n    indented();"


def test_rust_use_declarations_give_one_import_per_bound_name() -> None:
    result = parse(
        "use std::collections::HashMap;\nuse a::b::{c, d as e, self, f::{g, *}};\n"
        "use crate::x::y;\nuse super::*;\nuse serde;\nextern crate foo as bar;\n"
    )
    got = [(i.module, i.name, i.alias) for i in result.imports]
    assert got == [
        ("std::collections", "HashMap", None),
        ("a::b", "c", None),
        ("a::b", "d", "e"),
        ("a", "b", None),
        ("a::b::f", "g", None),
        ("a::b::f", "*", None),
        ("crate::x", "y", None),
        ("super", "*", None),
        ("serde", None, None),
        ("foo", None, "bar"),
    ]
    assert [i.binding for i in result.imports][:4] == ["HashMap", "c", "e", "b"]


def test_rust_impl_methods_attach_to_the_struct_and_traits_become_bases() -> None:
    result = parse(
        "pub struct S;\nimpl S {\n    pub fn new() -> Self { S }\n    fn hidden(&self) {}\n}\n"
        "impl Display for S {\n    fn fmt(&self, f: &mut Formatter) -> Result { Ok(()) }\n}\n"
    )
    (s,) = result.classes
    assert (s.kind, s.bases) == ("struct", ["Display"])
    assert [(m.name, m.exported) for m in s.methods] == [
        ("new", True),
        ("hidden", False),
        ("fmt", True),  # a trait impl's methods are as visible as the trait
    ]
    assert result.functions == []


def test_rust_impl_for_a_foreign_type_is_one_impl_class_spanning_its_blocks() -> None:
    result = parse(
        "impl Value for Vec<u8> {\n    fn size(&self) -> usize { self.len() }\n}\n"
        "fn between() {}\nimpl<T> Extra for Vec<T> {}\n"
    )
    (impl,) = result.classes
    assert (impl.name, impl.kind, impl.bases) == ("Vec", "impl", ["Value", "Extra"])
    assert (impl.line_range, impl.signature) == ((1, 5), "impl Value for Vec<u8>")


def test_rust_trait_methods_include_signatures_and_supertraits_are_bases() -> None:
    result = parse(
        "pub trait T: Clone + fmt::Debug {\n    fn req(&self);\n"
        "    fn provided(&mut self) { self.req() }\n}\n"
    )
    (trait,) = result.classes
    assert (trait.kind, trait.bases) == ("trait", ["Clone", "fmt::Debug"])
    assert [(m.name, m.signature, m.calls) for m in trait.methods] == [
        ("req", "fn req(&self)", []),
        ("provided", "fn provided(&mut self)", ["self.req"]),
    ]


def test_rust_inline_module_items_are_flattened_with_their_path() -> None:
    result = parse(
        "pub mod outer {\n    pub mod inner {\n        pub fn f() {}\n    }\n    mod private {\n"
        "        pub struct S;\n    }\n}\n"
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}\n"
    )
    assert [(f.name, f.exported, f.decorators) for f in result.functions] == [
        ("outer::inner::f", True, []),
        ("tests::t", False, ["test"]),
    ]
    assert [(c.name, c.exported) for c in result.classes] == [("outer::private::S", False)]
    assert result.exports == ["outer"]


def test_rust_attributes_are_decorators_and_outer_doc_comments_the_docstring() -> None:
    result = parse(
        '/// Doc line.\n// plain comment\n#[derive(Debug, Clone)]\n#[serde(rename_all = "x")]\n'
        "pub struct S {}\n/** Block doc. */\nfn f() {}\n"
    )
    assert result.classes[0].decorators == ["derive(Debug, Clone)", 'serde(rename_all = "x")']
    assert result.classes[0].docstring == "Doc line."
    assert result.classes[0].line_range == (5, 5)  # attributes and docs excluded
    assert result.functions[0].docstring == "Block doc."


def test_rust_parameters_are_pattern_names_and_self() -> None:
    result = parse(
        "impl S {\n    fn m(&mut self, mut a: u8, (b, c): (u8, u8), _: u8) {}\n}\n"
        "async fn g(self: Box<Self>) {}\n"
    )
    assert result.classes[0].methods[0].parameters == ["self", "a", "(b, c)", "_"]
    (g,) = result.functions
    assert (g.parameters, g.is_async) == (["self"], True)


def test_rust_calls_cover_paths_methods_chains_and_macros() -> None:
    result = parse(
        "fn f() {\n    let v = Vec::<u8>::new();\n    self.bar();\n"
        "    x.iter().map(|a| g(a)).collect::<Vec<_>>();\n"
        "    let y = client.get(u).await?.json();\n"
        '    println!("{}", h(1));\n    assert_eq!(Foo::new(2), a.b(3));\n}\n'
    )
    assert result.functions[0].calls == [
        "Vec::new",
        "self.bar",
        "x.iter",
        "x.iter().map",
        "x.iter().map().collect",
        "g",
        "client.get",
        "client.get().await?.json",
        "println!",
        "h",
        "assert_eq!",
        "Foo::new",
        "a.b",
    ]


def test_rust_nested_fn_calls_belong_to_the_enclosing_fn_and_const_calls_to_none() -> None:
    result = parse(
        "const N: usize = size();\nfn outer() {\n    fn helper() { deep() }\n    helper();\n}\n"
    )
    (outer,) = result.functions
    assert outer.calls == ["deep", "helper"]


def test_rust_exports_are_public_file_level_names_and_pub_use_bindings() -> None:
    result = parse(
        "pub use self::a::B as C;\npub const K: u8 = 1;\nstatic S: u8 = 2;\npub fn f() {}\n"
        "pub(crate) enum E {}\nfn private() {}\n"
    )
    assert result.exports == ["C", "K", "f", "E"]


@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b"fn \xff\xfe(a: \x00) { \xc3\x28 }\nuse a::{\n",
        b"impl<T> for {",
        FIXTURE.read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_rust_parser_returns_an_analysis_for_any_input(source: bytes) -> None:
    result = RustParser().parse(source, "bad.rs")
    assert isinstance(result, FileAnalysis)
    assert result.language == "rust"


def test_rust_parser_survives_every_truncation_of_a_real_file() -> None:
    source = FIXTURE.read_bytes()
    parser = RustParser()
    for end in range(0, len(source), 37):
        assert parser.parse(source[:end], "cut.rs").language == "rust"
