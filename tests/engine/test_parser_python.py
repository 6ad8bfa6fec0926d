"""Behaviour of the Python parser, on small inline sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmstruct.engine.model import FileAnalysis
from llmstruct.engine.parsers.python import PythonParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages" / "python"


def parse(source: str) -> FileAnalysis:
    return PythonParser().parse(source.encode(), "x.py")


def test_python_imports_give_one_record_per_bound_name() -> None:
    result = parse(
        "import a.b, c as d\n"
        "from x.y import (z as w,\n    q)\n"
        "from . import z\n"
        "from ..p import *\n"
        "from __future__ import annotations\n"
    )
    got = [(i.module, i.name, i.alias, i.line) for i in result.imports]
    assert got == [
        ("a.b", None, None, 1),  # Python binds `a` here; the resolver knows
        ("c", None, "d", 1),
        ("x.y", "z", "w", 2),
        ("x.y", "q", None, 2),
        (".", "z", None, 4),
        ("..p", "*", None, 5),
    ]


def test_python_imports_inside_functions_and_guards_count() -> None:
    result = parse(
        "if TYPE_CHECKING:\n    from a import B\n"
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
        "def f():\n    import lazy.mod\n"
    )
    assert [i.module for i in result.imports] == ["a", "ujson", "json", "lazy.mod"]


def test_python_module_docstring_is_cleaned_after_leading_comments() -> None:
    result = parse('#!/usr/bin/env python\n# coding: utf-8\n"""Title.\n\n    Body.\n"""\nx = 1\n')
    assert result.module_doc == "Title.\n\nBody."


def test_python_docstrings_are_evaluated_and_cleaned() -> None:
    result = parse(
        'def a():\n    """Caf\\u00e9.\n\n    Indented."""\n'
        'def b():\n    r"""Raw \\d+."""\n'
        'def c():\n    b"bytes are not docstrings"\n'
        'def d():\n    x = 1\n    "not first"\n'
    )
    assert [f.docstring for f in result.functions] == ["Café.\n\nIndented.", "Raw \\d+.", "", ""]


def test_python_decorators_are_their_text_without_the_at_sign() -> None:
    result = parse("@functools.lru_cache(maxsize=None)\n@property\ndef f(): pass\n")
    assert result.functions[0].decorators == ["functools.lru_cache(maxsize=None)", "property"]


def test_python_parameters_keep_star_markers_and_drop_separators() -> None:
    source = "def f(a, b: int = 1, /, *args: str, c, d=2, e: str, **kw) -> None: pass\n"
    source += "def g(self, *, key): pass\n"
    first, second = parse(source).functions
    assert first.parameters == ["a", "b", "*args", "c", "d", "e", "**kw"]
    assert second.parameters == ["self", "key"]


def test_python_calls_in_nested_functions_belong_to_the_enclosing_function() -> None:
    result = parse("def outer():\n    def inner():\n        deep()\n    return inner()\n")
    (outer,) = result.functions
    assert outer.calls == ["deep", "inner"]


def test_python_calls_keep_dotted_callees_and_chains_with_empty_argument_lists() -> None:
    result = parse(
        "def f(self):\n"
        "    os.path.join(a)\n    self.x.y(1)\n    super().__init__()\n"
        "    a(1).b(2).c()\n    handlers[k]()\n    (x or y)()\n    os.path.join(b)\n"
    )
    assert result.functions[0].calls == [
        "os.path.join",
        "self.x.y",
        "super",
        "super().__init__",
        "a",
        "a().b",
        "a().b().c",
    ]


def test_python_module_level_calls_belong_to_no_function() -> None:
    result = parse("setup()\ndef f():\n    g()\nteardown()\n")
    assert result.functions[0].calls == ["g"]


def test_python_methods_include_conditional_and_decorated_defs() -> None:
    result = parse(
        "class A(Base, Mixin[T], metaclass=Meta):\n"
        "    @staticmethod\n    def s(): pass\n"
        "    if PY3:\n        def cond(self): pass\n"
        "    class Inner:\n        def hidden(self): pass\n"
    )
    (cls,) = result.classes
    assert cls.bases == ["Base", "Mixin[T]"]  # keyword arguments are not bases
    assert [m.name for m in cls.methods] == ["s", "cond"]  # nested classes get no entry
    assert cls.methods[0].decorators == ["staticmethod"]


def test_python_module_level_conditional_definitions_are_top_level() -> None:
    result = parse("try:\n    from _c import f\nexcept ImportError:\n    def f(x): return x\n")
    assert [f.name for f in result.functions] == ["f"]


def test_python_module_level_lambda_is_a_function_named_by_its_variable() -> None:
    (func,) = parse("key = lambda item, *rest: item.lower()\n").functions
    assert (func.name, func.signature, func.parameters) == (
        "key",
        "key = lambda item, *rest",
        ["item", "*rest"],
    )
    assert func.calls == ["item.lower"]


def test_python_dunder_all_literals_are_the_exports() -> None:
    result = parse('__all__ = ["a", "b"] + ["c"]\n__all__ += ("d",)\n__all__.extend(dynamic)\n')
    assert result.exports == ["a", "b", "c", "d"]
    assert parse("def f(): pass\n").exports == []


def test_python_exported_follows_the_underscore_rule_with_dunders_public() -> None:
    result = parse(
        "def f(): pass\ndef _g(): pass\n"
        "class _C:\n    def __init__(self): pass\n    def __p(self): pass\n"
    )
    assert [f.exported for f in result.functions] == [True, False]
    (cls,) = result.classes
    assert cls.exported is False
    assert [m.exported for m in cls.methods] == [True, False]


def test_python_overload_stubs_fold_into_the_implementation() -> None:
    result = parse(
        "@overload\ndef f(a: int) -> int: ...\n@typing.overload\ndef f(a: str) -> str: ...\n"
        "def f(a): return a\n"
    )
    (func,) = result.functions
    assert (func.signature, func.decorators) == ("def f(a)", [])


def test_python_async_signature_and_ranges_exclude_decorators_and_body() -> None:
    source = "@d\nasync def f(a) -> int:  # a comment\n    return a\n"
    (func,) = parse(source).functions
    assert func.is_async
    assert func.signature == "async def f(a) -> int"
    assert func.line_range == (2, 3)
    assert source.encode()[func.byte_range[0] : func.byte_range[1]].startswith(b"async def f")


@pytest.mark.parametrize(
    "source",
    [
        b"",
        bytes(range(256)) * 4,
        b'def \xff\xfe(a \x00):\n    """\xc3\x28"""\n',
        b"class A(:\n  def",
        (FIXTURES / "inventory.py").read_bytes()[:1500],
    ],
    ids=["empty", "junk", "invalid-utf8", "fragment", "truncated"],
)
def test_python_parser_returns_an_analysis_for_any_input(source: bytes) -> None:
    result = PythonParser().parse(source, "bad.py")
    assert isinstance(result, FileAnalysis)
    assert result.language == "python"


def test_python_parser_survives_every_truncation_of_a_real_file() -> None:
    source = (FIXTURES / "inventory.py").read_bytes()
    parser = PythonParser()
    for end in range(0, len(source), 37):
        assert parser.parse(source[:end], "cut.py").language == "python"
