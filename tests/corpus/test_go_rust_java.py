"""Go, Rust and Java standard libraries from Debian source packages.

Each test scans a slice of a real corpus (no cache, nothing written next to it)
and checks facts a user would look up: a definition's parameters and line (the
line found in the file's text, independently of tree-sitter) and call edges
resolved across files and packages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora import GO_SRC, RUST_SRC, definition_line, java_sources, require

from llmstruct.engine.scanner import ProjectScanner, ScanOptions
from llmstruct.engine.structure import build_struct

pytestmark = pytest.mark.corpus


def _scan(root: Path, include: list[str]) -> dict:
    struct = build_struct(
        ProjectScanner().scan(ScanOptions(root, include=include, use_cache=False))
    )
    assert not struct["metadata"]["scan"]["errors"]
    return struct


def _symbol(struct: dict, uid: str) -> dict:
    for module in struct["modules"]:
        for function in module["functions"]:
            if function["uid"] == uid:
                return function
        for cls in module["classes"]:
            for method in cls["methods"]:
                if method["uid"] == uid:
                    return method
    raise AssertionError(f"{uid} not in struct")


# -- Go ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def go_struct() -> dict:
    return _scan(require(GO_SRC, "golang-1.19-src"), ["fmt/", "strings/", "net/http/", "errors/"])


def test_go_function_parameters_and_line(go_struct) -> None:
    error = _symbol(go_struct, "net.http.server#Error")
    assert error["parameters"] == ["w", "error", "code"]
    assert error["line_range"][0] == definition_line(GO_SRC / "net/http/server.go", "func Error(")
    assert error["exported"] is True


def test_go_call_through_an_import_resolves_to_the_package(go_struct) -> None:
    assert "fmt.print#Fprintln" in _symbol(go_struct, "net.http.server#Error")["calls"]


def test_go_calls_resolve_within_and_across_files_of_a_package(go_struct) -> None:
    contains = _symbol(go_struct, "strings.strings#Contains")
    assert contains["parameters"] == ["s", "substr"]
    assert "strings.strings#Index" in contains["calls"]
    new_replacer = _symbol(go_struct, "strings.replace#NewReplacer")
    assert new_replacer["parameters"] == ["...oldnew"]
    assert "strings.replace_test#TestReplacer" in new_replacer["called_by"]


def test_go_methods_attach_to_their_receiver_type(go_struct) -> None:
    server = next(
        c for m in go_struct["modules"] if m["path"] == "net/http/server.go"
        for c in m["classes"] if c["name"] == "Server"
    )  # fmt: skip
    assert server["kind"] == "struct"
    assert {"ListenAndServe", "Shutdown", "Close"} <= {m["name"] for m in server["methods"]}


# -- Rust -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rust_struct() -> dict:
    return _scan(require(RUST_SRC, "rust-src"), ["alloc/src/"])


def test_rust_method_of_an_impl_block(rust_struct) -> None:
    push = _symbol(rust_struct, "alloc.src.vec.mod#Vec.push")
    assert push["parameters"] == ["self", "value"]
    path = RUST_SRC / "alloc/src/vec/mod.rs"
    assert push["line_range"][0] == definition_line(path, "pub fn push(&mut self, value: T)")
    assert "alloc.src.vec.mod#Vec.as_mut_ptr" in push["calls"]  # self.as_mut_ptr()


def test_rust_use_crate_path_resolves_across_modules(rust_struct) -> None:
    from_utf8 = _symbol(rust_struct, "alloc.src.string#String.from_utf8")
    assert from_utf8["parameters"] == ["vec"]
    assert "alloc.src.ffi.c_str#CString.into_string" in from_utf8["called_by"]
    assert (
        "alloc.src.string#String.with_capacity"
        in _symbol(rust_struct, "alloc.src.borrow#Cow.add_assign")["calls"]
    )


# -- Java -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def java_root(tmp_path_factory) -> Path:
    return java_sources(tmp_path_factory.mktemp("jdk"), ("java.base/java/util/",))


@pytest.fixture(scope="module")
def java_struct(java_root) -> dict:
    return _scan(java_root, ["java.base/java/util/*.java"])


def test_java_overloads_and_parameters(java_struct, java_root) -> None:
    module = next(m for m in java_struct["modules"] if m["path"].endswith("util/ArrayList.java"))
    array_list = next(c for c in module["classes"] if c["name"] == "ArrayList")
    adds = [
        (m["parameters"], m["line_range"][0]) for m in array_list["methods"] if m["name"] == "add"
    ]
    path = java_root / "java.base/java/util/ArrayList.java"
    assert (
        ["index", "element"],
        definition_line(path, "public void add(int index, E element)"),
    ) in adds
    assert array_list["bases"] == [
        "AbstractList",
        "List",
        "RandomAccess",
        "Cloneable",
        "java.io.Serializable",
    ]  # as written in the source
    assert {"ArrayList.Itr", "ArrayList.SubList"} <= {c["name"] for c in module["classes"]}


def test_java_same_package_class_call_resolves(java_struct) -> None:
    require_non_null = _symbol(java_struct, "java.base.java.util.Objects#Objects.requireNonNull")
    assert (
        "java.base.java.util.AbstractCollection#AbstractCollection.removeAll"
        in (require_non_null["called_by"])
    )


def test_java_calls_within_a_class_resolve(java_struct) -> None:
    add = next(
        m for mod in java_struct["modules"] if mod["path"].endswith("util/ArrayList.java")
        for c in mod["classes"] if c["name"] == "ArrayList"
        for m in c["methods"] if m["name"] == "add" and m["parameters"] == ["index", "element"]
    )  # fmt: skip
    assert "java.base.java.util.ArrayList#ArrayList.rangeCheckForAdd" in add["calls"]
