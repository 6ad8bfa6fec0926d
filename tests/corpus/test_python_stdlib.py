"""The whole standard library of this interpreter, scanned as a user would.

Facts are checked against the installed files themselves (``definition_line``
finds the text), so the test holds for whichever 3.11+ patch release is here.
"""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from corpora import PYTHON_STDLIB, definition_line

from llmstruct.engine.scanner import ProjectScanner, ScanOptions
from llmstruct.engine.structure import build_struct

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def stdlib_struct() -> dict:
    # No cache: the tests must not write into the interpreter's directory.
    result = ProjectScanner().scan(ScanOptions(PYTHON_STDLIB, use_cache=False))
    return build_struct(result)


def _module(struct: dict, path: str) -> dict:
    return next(m for m in struct["modules"] if m["path"] == path)


def _function(struct: dict, path: str, name: str) -> dict:
    return next(f for f in _module(struct, path)["functions"] if f["name"] == name)


def _method(struct: dict, path: str, cls: str, name: str) -> dict:
    owner = next(c for c in _module(struct, path)["classes"] if c["name"] == cls)
    return next(m for m in owner["methods"] if m["name"] == name)


def test_every_stdlib_file_is_a_module_or_a_listed_error(stdlib_struct) -> None:
    on_disk = {
        p.relative_to(PYTHON_STDLIB).as_posix()
        for p in PYTHON_STDLIB.rglob("*.py*")
        if p.suffix in (".py", ".pyi")
        and "site-packages" not in p.parts
        and "__pycache__" not in p.parts
    }
    modules = {m["path"] for m in stdlib_struct["modules"]}
    errors = {e["path"] for e in stdlib_struct["metadata"]["scan"]["errors"]}
    assert on_disk == modules | errors
    assert "venv/__init__.py" in modules  # a real package, not a virtualenv
    assert len(modules) > 1500


def test_broken_test_files_are_warnings_not_failures(stdlib_struct) -> None:
    warned = {w["path"] for w in stdlib_struct["metadata"]["scan"]["warnings"]}
    assert "test/badsyntax_3131.py" in warned or any("badsyntax" in p for p in warned)
    assert any("encoded_modules" in p for p in warned)  # latin-1 and koi8-r sources


def test_output_validates_against_both_schemas(stdlib_struct) -> None:
    shipped = resources.files("llmstruct.schema")
    for name in ("llmstruct-v2.1.schema.json", "struct.schema.json"):
        schema = json.loads((shipped / name).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        assert next(validator.iter_errors(stdlib_struct), None) is None


def test_json_dumps_parameters_and_line(stdlib_struct) -> None:
    dumps = _function(stdlib_struct, "json/__init__.py", "dumps")
    assert dumps["parameters"] == [
        "obj", "skipkeys", "ensure_ascii", "check_circular", "allow_nan", "cls",
        "indent", "separators", "default", "sort_keys", "**kw",
    ]  # fmt: skip
    line = definition_line(PYTHON_STDLIB / "json/__init__.py", "def dumps(")
    assert dumps["line_range"][0] == line
    assert dumps["docstring"].startswith("Serialize ``obj`` to a JSON formatted ``str``.")
    assert dumps["tokens"]["full"] > dumps["tokens"]["doc"] > dumps["tokens"]["signature"] > 0


def test_same_module_call_resolves(stdlib_struct) -> None:
    load = _function(stdlib_struct, "json/__init__.py", "load")
    assert "json#loads" in load["calls"]
    assert "json#load" in _function(stdlib_struct, "json/__init__.py", "loads")["called_by"]


def test_relative_import_call_resolves_across_modules(stdlib_struct) -> None:
    create_task = _function(stdlib_struct, "asyncio/tasks.py", "create_task")
    assert "asyncio.events#get_running_loop" in create_task["calls"]
    get_running_loop = _function(stdlib_struct, "asyncio/events.py", "get_running_loop")
    assert "asyncio.tasks#create_task" in get_running_loop["called_by"]


def test_import_inside_a_function_resolves(stdlib_struct) -> None:
    message_from_string = _function(stdlib_struct, "email/__init__.py", "message_from_string")
    assert "email.parser#Parser" in message_from_string["calls"]


def test_self_calls_resolve_to_methods_of_the_class(stdlib_struct) -> None:
    info = _method(stdlib_struct, "logging/__init__.py", "Logger", "info")
    assert info["parameters"] == ["self", "msg", "*args", "**kwargs"]
    assert info["calls"][:2] == ["logging#Logger.isEnabledFor", "logging#Logger._log"]
    line = definition_line(PYTHON_STDLIB / "logging/__init__.py", "class Logger(")
    logger = next(
        c for c in _module(stdlib_struct, "logging/__init__.py")["classes"] if c["name"] == "Logger"
    )
    assert logger["line_range"][0] == line and logger["bases"] == ["Filterer"]


def test_all_exports_are_recorded(stdlib_struct) -> None:
    exports = _module(stdlib_struct, "json/__init__.py")["exports"]
    assert exports == [
        "dump",
        "dumps",
        "load",
        "loads",
        "JSONDecoder",
        "JSONDecodeError",
        "JSONEncoder",
    ]
