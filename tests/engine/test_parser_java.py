"""Behaviour of the Java parser, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.java import JavaParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "java"


def parse(source: str) -> FileAnalysis:
    return JavaParser().parse(source.encode(), "X.java")


def test_java_package_and_javadoc_above_it_give_package_and_module_doc() -> None:
    result = parse("/** The shop. */\n@Generated\npackage org.shop;\n")
    assert (result.package, result.module_doc) == ("org.shop", "The shop.")


def test_java_imports_split_the_imported_name_from_its_dotted_module() -> None:
    result = parse("import a.b.C;\nimport a.b.*;\nimport static a.b.C.m;\nimport static a.b.C.*;\n")
    got = [(i.module, i.name, i.alias) for i in result.imports]
    assert got == [
        ("a.b", "C", None),
        ("a.b", "*", None),
        ("a.b.C", "m", None),
        ("a.b.C", "*", None),
    ]


def test_java_member_types_are_flattened_as_outer_dot_inner() -> None:
    result = parse(
        "public class A extends B<T> implements I, java.io.Serializable {\n"
        "  static class Inner { void m() {} }\n  interface J extends K {}\n"
        "  enum E { X; E() {} }\n  record R(int a) {}\n  @interface Ann {}\n}\n"
    )
    got = [(c.name, c.kind, c.bases) for c in result.classes]
    assert got == [
        ("A", "class", ["B", "I", "java.io.Serializable"]),
        ("A.Inner", "class", []),
        ("A.J", "interface", ["K"]),
        ("A.E", "enum", []),
        ("A.R", "record", []),
        ("A.Ann", "interface", []),
    ]
    assert [m.name for m in result.classes[1].methods] == ["m"]
    assert result.functions == []


def test_java_constructors_are_named_after_the_class_with_varargs_kept() -> None:
    result = parse("class A {\n  A(int x, String... rest) { super(x); }\n  A() { this(1); }\n}\n")
    first, second = result.classes[0].methods
    assert (first.name, first.parameters, first.calls) == ("A", ["x", "...rest"], ["super"])
    assert second.calls == ["this"]


def test_java_annotations_are_decorators_outside_the_byte_range() -> None:
    source = 'class A {\n  @Override\n  @SuppressWarnings("unchecked")\n  public void run() {}\n}\n'
    (run,) = parse(source).classes[0].methods
    assert run.decorators == ["Override", 'SuppressWarnings("unchecked")']
    assert run.line_range == (4, 4)
    assert source.encode()[run.byte_range[0] : run.byte_range[1]] == b"public void run() {}"
    assert run.signature == "public void run()"


def test_java_only_javadoc_directly_above_is_a_docstring() -> None:
    result = parse(
        "class A {\n  /** Adds. */\n  @Override\n  void add() {}\n"
        "  // plain\n  void plain() {}\n}\n"
    )
    assert [m.docstring for m in result.classes[0].methods] == ["Adds.", ""]


def test_java_exported_means_public_or_a_non_private_interface_member() -> None:
    result = parse(
        "public class A { void pkg() {} public void pub() {} }\nclass B {}\n"
        "interface I { void m(); private void p() {} }\n"
    )
    a, _, i = result.classes
    assert [m.exported for m in a.methods] == [False, True]
    assert [m.exported for m in i.methods] == [True, False]
    assert result.exports == ["A"]


def test_java_calls_render_receivers_chains_and_constructions() -> None:
    result = parse(
        "class A {\n  void f() {\n    foo(); this.x.y(); super.run(); Math.max(1, 2);\n"
        "    a.b().c(); List.<String>of(); new ArrayList<>(); new java.util.HashMap<K, V>();\n"
        "    ((Foo) o).cast(); arr[0].el();\n  }\n}\n"
    )
    assert result.classes[0].methods[0].calls == [
        "foo",
        "this.x.y",
        "super.run",
        "Math.max",
        "a.b",
        "a.b().c",
        "List.of",
        "new ArrayList",
        "new java.util.HashMap",
    ]


def test_java_anonymous_and_local_class_calls_belong_to_the_enclosing_method() -> None:
    result = parse(
        "class A {\n  Object f() {\n    class Local { void g() { local(); } }\n"
        "    Runnable r = () -> lambda();\n"
        "    return new Thread() { public void run() { anon(); } };\n"
        "  }\n  int field = init();\n}\n"
    )
    (a,) = result.classes
    assert [m.name for m in a.methods] == ["f"]
    assert a.methods[0].calls == ["local", "lambda", "new Thread", "anon"]


@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b"class \xff\xfe { void \x00() { \xc3\x28 } }\n",
        b"public class A extends {",
        (FIXTURES / "Inventory.java").read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_java_parser_returns_an_analysis_for_any_input(source: bytes) -> None:
    result = JavaParser().parse(source, "Bad.java")
    assert isinstance(result, FileAnalysis)
    assert result.language == "java"


def test_java_parser_survives_every_truncation_of_a_real_file() -> None:
    source = (FIXTURES / "Inventory.java").read_bytes()
    parser = JavaParser()
    for end in range(0, len(source), 37):
        assert parser.parse(source[:end], "Cut.java").language == "java"
