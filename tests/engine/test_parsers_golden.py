"""Golden-file tests: each fixture under tests/fixtures/languages/<lang>/ parses to
exactly its ``<file>.expected.json``.

The expected files are reviewed by hand when they change. To regenerate them
after an intended change to a parser, run with ``LLMSTRUCT_UPDATE_GOLDEN=1`` and
read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from llmstruct.engine.parsers import parser_for, supported_extensions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages"
UPDATE = bool(os.environ.get("LLMSTRUCT_UPDATE_GOLDEN"))


def _fixture_files() -> list[Path]:
    return sorted(
        path
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.suffix in supported_extensions()
    )


def _as_json(path: Path) -> str:
    analysis = parser_for(path.name).parse(path.read_bytes(), path.relative_to(FIXTURES).as_posix())
    return json.dumps(dataclasses.asdict(analysis), indent=2, ensure_ascii=False) + "\n"


def _fixture_id(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


@pytest.mark.parametrize("source", _fixture_files(), ids=_fixture_id)
def test_fixture_parses_to_its_golden_file(source: Path) -> None:
    golden = source.with_name(source.name + ".expected.json")
    actual = _as_json(source)
    if UPDATE:
        golden.write_text(actual, "utf-8")
    assert golden.exists(), f"no golden file {golden.name}; run with LLMSTRUCT_UPDATE_GOLDEN=1"
    assert json.loads(actual) == json.loads(golden.read_text("utf-8"))


def test_every_language_has_fixtures() -> None:
    languages = {parser_for(path.name).language for path in _fixture_files()}
    assert languages >= {"python", "javascript", "typescript", "tsx", "go", "rust", "java"}
