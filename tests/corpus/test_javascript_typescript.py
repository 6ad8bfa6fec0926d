"""JavaScript (express) and TypeScript (the compiler's own lib .d.ts files) from Debian."""

from __future__ import annotations

import pytest
from corpora import EXPRESS_LIB, TYPESCRIPT_LIB, definition_line, require

from llmstruct.engine.scanner import ProjectScanner, ScanOptions
from llmstruct.engine.structure import build_struct

pytestmark = pytest.mark.corpus


def _scan(root, include=()) -> dict:
    result = ProjectScanner().scan(ScanOptions(root, include=list(include), use_cache=False))
    assert not result.errors
    return build_struct(result)


def _functions(struct: dict, path: str) -> dict[str, dict]:
    module = next(m for m in struct["modules"] if m["path"] == path)
    return {f["name"]: f for f in module["functions"]}


@pytest.fixture(scope="module")
def express() -> dict:
    return _scan(require(EXPRESS_LIB, "node-express"))


def test_express_function_and_its_line(express) -> None:
    create = _functions(express, "express.js")["createApplication"]
    assert create["line_range"][0] == definition_line(
        EXPRESS_LIB / "express.js", "function createApplication("
    )
    assert create["exported"] is True  # exports = module.exports = createApplication


def test_express_require_binding_resolves_to_the_default_export(express) -> None:
    route = _functions(express, "router/index.js")["proto.route"]
    assert route["parameters"] == ["path"]
    assert route["line_range"][0] == definition_line(
        EXPRESS_LIB / "router/index.js", "proto.route = function route("
    )
    assert route["calls"][:2] == ["router.route#Route", "router.layer#Layer"]
    assert (
        "router.index#proto.route" in _functions(express, "router/route.js")["Route"]["called_by"]
    )


def test_express_named_member_of_a_required_module_resolves(express) -> None:
    lazyrouter = _functions(express, "application.js")["app.lazyrouter"]
    assert {"middleware.query#query", "middleware.init#init"} <= set(lazyrouter["calls"])


@pytest.fixture(scope="module")
def typescript_lib() -> dict:
    return _scan(require(TYPESCRIPT_LIB, "node-typescript"), ["lib.es5.d.ts", "lib.dom.d.ts"])


def test_typescript_interface_methods_and_parameters(typescript_lib) -> None:
    module = next(m for m in typescript_lib["modules"] if m["path"] == "lib.es5.d.ts")
    array = next(c for c in module["classes"] if c["name"] == "Array" and c["kind"] == "interface")
    assert array["line_range"][0] == definition_line(
        TYPESCRIPT_LIB / "lib.es5.d.ts", "interface Array<T> {"
    )
    push = next(m for m in array["methods"] if m["name"] == "push")
    assert push["parameters"] == ["...items"]
    assert push["signature"] == "push(...items: T[]): number"


def test_typescript_declared_functions_are_functions(typescript_lib) -> None:
    functions = _functions(typescript_lib, "lib.es5.d.ts")
    assert functions["parseInt"]["parameters"] == ["string", "radix"]
    assert functions["parseInt"]["docstring"].startswith("Converts a string to an integer.")
