"""CoreEngine: the facade both servers and the CLI call, on a real scanned tree."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from llmstruct.api import models
from llmstruct.engine.core import PROJECT_INFO_TTL_S, STRUCT_RECHECK_S, CoreEngine, EngineError

FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n',
    "shop/cart.py": "def total(items):\n    return sum(items)\n",
    "shop/util.js": "export function fmt(x) { return String(x); }\n",
}


@pytest.fixture
def engine(tree):
    core = CoreEngine(tree(FILES))
    yield core
    core.close()


def _stream(engine, request):
    async def collect():
        return [item async for item in engine.scan_stream(request)]

    return asyncio.run(collect())


def test_scan_streams_progress_for_every_file_then_the_response(engine) -> None:
    items = _stream(engine, models.ScanRequest())
    progress, response = items[:-1], items[-1]
    assert sorted(p.file for p in progress) == ["shop/cart.py", "shop/util.js"]
    assert isinstance(response, models.ScanResponse)
    assert response.files_processed == 2 and response.output_path == "struct.json"
    assert response.summary["modules_count"] == 2
    assert engine.struct_path.exists()


def test_scan_output_path_must_stay_inside_the_root(engine) -> None:
    with pytest.raises(EngineError, match="inside the project root"):
        _stream(engine, models.ScanRequest(output_path="../escape.json"))


def test_project_info_reads_the_manifest_and_the_struct(engine) -> None:
    _stream(engine, models.ScanRequest())
    info = engine.project_info()
    assert (info.name, info.version, info.description) == ("shop", "1.2.3", "A shop.")
    assert info.file_count == 2 and info.languages == ["javascript", "python"]
    assert info.total_lines == 3


def test_context_and_struct(engine) -> None:
    _stream(engine, models.ScanRequest())
    response = engine.context("FOCUSED", "total of items", 500)
    assert response.context_data["format"] == "md"
    assert "def total(items):" in response.context_data["text"]
    assert {"uid": "shop.cart#total", "level": "full"} in response.context_data["symbols"]
    data, etag = engine.struct_bytes()
    assert data.startswith(b'{"metadata"') and etag.startswith('"')


def test_the_at_once_answers_equal_the_full_ones_once_loaded(engine) -> None:
    _stream(engine, models.ScanRequest())
    assert engine.project_info_now() is None  # the index is not loaded yet
    assert engine.context_json_now("FOCUSED", "total of items", 500) is None  # nor built
    assert engine.project_info_now() is None
    full = engine.context("FOCUSED", "total of items", 500)
    answer = engine.context_json_now("focused", "total of items", 500)
    assert orjson.loads(answer) == full.model_dump(mode="json")
    assert engine.context_json_now("FOCUSED", "total of items", 500) is answer  # kept
    assert engine.project_info_now() == engine.project_info()
    encoded = engine.project_info_json_now()
    assert orjson.loads(encoded) == engine.project_info().model_dump(mode="json")
    assert engine.project_info_json_now() is encoded  # kept with the kept answer


def test_the_engines_own_scan_shows_at_once_an_outside_one_within_a_second(engine) -> None:
    _stream(engine, models.ScanRequest())
    engine.project_info()  # loaded
    assert engine.project_info_now().file_count == 2
    (engine.root / "shop" / "orders.py").write_text("def place():\n    return 1\n")
    _stream(engine, models.ScanRequest())  # through the engine: no window to wait out
    assert engine.project_info_now() is None  # changed: the index is reloaded first
    assert engine.project_info().file_count == 3
    assert engine.project_info_now().file_count == 3  # looked: unchanged since loaded
    struct = engine.struct_path
    struct.write_bytes(struct.read_bytes() + b" ")  # behind the engine's back
    assert engine.project_info_now() is not None  # looked less than a second ago
    time.sleep(STRUCT_RECHECK_S + 0.05)
    assert engine.project_info_now() is None


def test_project_info_shows_a_manifest_edit_within_its_ttl(engine, monkeypatch) -> None:
    _stream(engine, models.ScanRequest())
    assert engine.project_info().version == "1.2.3"
    manifest = engine.root / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace("1.2.3", "1.2.4"))
    clock = time.monotonic() + PROJECT_INFO_TTL_S + 0.01  # the TTL has passed
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    assert engine.project_info().version == "1.2.4"
    _stream(engine, models.ScanRequest())  # a rescan is a new index: shown at once
    assert engine.project_info().file_count == 2
