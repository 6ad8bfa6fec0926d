"""struct.json assembly: schema validity, call resolution, determinism."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from llmstruct.engine.scanner import ProjectScanner, ScanOptions
from llmstruct.engine.structure import build_struct, category
from llmstruct.store.structfile import dumps

REFERENCE_SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _schemas() -> list[dict]:
    shipped = resources.files("llmstruct.schema")
    return [
        json.loads((shipped / name).read_text())
        for name in ("llmstruct-v2.1.schema.json", "struct.schema.json")
    ]


def assert_valid(struct: dict) -> None:
    for schema in _schemas():
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.FormatChecker()
        )
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(struct)]
        assert not errors, errors[:5]


def _struct(root: Path) -> dict:
    return build_struct(ProjectScanner().scan(ScanOptions(root)))


def _function(struct: dict, uid: str) -> dict:
    module_id, qualname = uid.split("#")
    module = next(m for m in struct["modules"] if m["module_id"] == module_id)
    if "." in qualname:
        cls_name, name = qualname.split(".")
        cls = next(c for c in module["classes"] if c["name"] == cls_name)
        return next(f for f in cls["methods"] if f["name"] == name)
    return next(f for f in module["functions"] if f["name"] == qualname)


PYTHON_PROJECT = {
    "app/__init__.py": '"""The app."""\nfrom .core import Engine\n',
    "app/core.py": (
        "from . import util\n"
        "from .util import slugify as slug\n"
        "import app.util\n\n"
        "class Engine:\n"
        "    def start(self):\n"
        "        self.prepare()\n"
        "        return slug(util.clean('x'))\n\n"
        "    def prepare(self):\n"
        "        return app.util.clean('y')\n"
    ),
    "app/util.py": (
        "def clean(s):\n    return s.strip()\n\n\ndef slugify(s):\n    return clean(s)\n"
    ),
    "tests/test_core.py": (
        "from app.core import Engine\n\ndef test_start():\n    Engine().start()\n"
    ),
}


def test_python_calls_resolve_across_modules_and_fill_called_by(tree) -> None:
    struct = _struct(tree(PYTHON_PROJECT))
    start = _function(struct, "app.core#Engine.start")
    assert start["calls"] == ["app.core#Engine.prepare", "app.util#slugify", "app.util#clean"]
    assert _function(struct, "app.core#Engine.prepare")["calls"] == ["app.util#clean"]
    assert _function(struct, "app.util#clean")["called_by"] == [
        "app.core#Engine.prepare",
        "app.core#Engine.start",
        "app.util#slugify",
    ]
    test = _function(struct, "tests.test_core#test_start")
    assert "app.core#Engine" in test["calls"]  # a class call resolves to the class


def test_output_validates_against_both_schemas(tree) -> None:
    assert_valid(_struct(tree(PYTHON_PROJECT)))


def test_stats_and_toc_agree_with_modules(tree) -> None:
    struct = _struct(tree(PYTHON_PROJECT))
    stats = struct["metadata"]["stats"]
    assert stats["modules_count"] == len(struct["modules"]) == len(struct["toc"]) == 4
    assert stats["classes_count"] == 1
    assert stats["functions_count"] == 5  # clean, slugify, start, prepare, test_start
    assert stats["call_edges_count"] == 6
    assert [entry["category"] for entry in struct["toc"]] == ["core", "core", "util", "test"]
    # ``import app.util`` binds (and runs) the package ``app`` itself
    assert struct["modules"][1]["depends_on"] == ["app", "app.util"]


def test_same_tree_gives_identical_bytes_but_for_version_and_artifact(tree) -> None:
    root = tree(PYTHON_PROJECT)
    first = build_struct(ProjectScanner().scan(ScanOptions(root, use_cache=False)))
    second = build_struct(ProjectScanner().scan(ScanOptions(root)))  # from the cache
    assert first["metadata"]["artifact_id"] != second["metadata"]["artifact_id"]
    for struct in (first, second):
        struct["metadata"]["version"] = struct["metadata"]["artifact_id"] = "-"
    assert dumps(first) == dumps(second)


def test_errors_and_skips_are_listed_in_metadata(tree) -> None:
    root = tree({"ok.py": "x = 1\n", "bin.py": b"\x00\x01binary", "id_rsa.py": "secret"})
    struct = _struct(root)
    scan = struct["metadata"]["scan"]
    assert [e["path"] for e in scan["errors"]] == ["bin.py"]
    assert scan["skipped"] == [{"path": "id_rsa.py", "reason": "secret file pattern"}]
    assert_valid(struct)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pkg/core.py", "core"),
        ("tests/test_a.py", "test"),
        ("net/http/server_test.go", "test"),
        ("src/app.spec.ts", "test"),
        ("cmd/go/main.go", "cli"),
        ("pkg/__main__.py", "cli"),
        ("lib/utils/strings.js", "util"),
    ],
)
def test_category_from_path(path: str, expected: str) -> None:
    assert category(path) == expected
