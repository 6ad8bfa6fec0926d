"""The custom server answers as its own ``/openapi.json`` says: schemathesis against it.

A real server (``ServerThread`` on 127.0.0.1 port 0: ``build_app`` with an API key
plus ``add_api_routes``) on a small project scanned through the API, with the fake
LLM behind ``/api/v1/query``. schemathesis loads the document the server serves and
runs every phase (examples, coverage, fuzzing, then stateful: a created task is
fetched, patched, deleted) with every check (no 5xx, only documented status codes,
content types and headers, bodies that match their schema, 401 without the key, 405
for other methods, ...), as ``schemathesis.toml`` beside this file sets them (it says
why two checks are tuned). Kept small: a few dozen cases per operation.

It is driven through its command line, exactly as the run by hand: that is the only
runner with all four phases, and the pytest plugin's ``from_fixture`` (needed for a
server started by a fixture) fails on pytest 9 (it sets ``Function._nodeid``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakellm import FakeLLM

from llmstruct.engine.core import CoreEngine
from llmstruct.server.api import add_api_routes
from llmstruct.server.limits import Limits
from llmstruct.server.system import build_app
from tests.server.helpers import ServerThread

pytest.importorskip("schemathesis")

CONFIG = Path(__file__).with_name("schemathesis.toml")
KEY = "schemathesis-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
HANG = 60.0  # an upper bound on one wait, never asserted on
FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n',
    "shop/cart.py": 'def total(items):\n    """Add up the prices."""\n    return sum(items)\n',
    "shop/pricing.py": (
        "from shop.cart import total\n\n\n"
        "def discounted(items, rate):\n    return total(items) * (1 - rate)\n"
    ),
    "shop/util.js": "export function fmt(x) { return String(x); }\n",
}
MAX_EXAMPLES = 15  # per operation and phase: about a thousand requests in all
SEED = 20261127
RUN_HANG = 600.0  # the whole run, a hang guard only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a custom server with the API on a scanned project."""
    root = tmp_path_factory.mktemp("schemathesis") / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with FakeLLM() as llm, pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMSTRUCT_LLM_BASE_URL", llm.url)
        patch.setenv("LLMSTRUCT_LLM_MODEL", "fake-model")
        patch.setenv("LLMSTRUCT_LLM_RETRIES", "0")
        engine = CoreEngine(root)
        # No rate limit to speak of: schemathesis sends hundreds of requests a second,
        # and a 429 where it expects a 401 (a request without the key) is not a finding.
        app = build_app(KEY, access_log=False, websocket=False, rate_limit=1e6, rate_burst=10**6)
        add_api_routes(app, engine)
        thread = ServerThread(app, Limits(), "httptools" if _has_httptools() else "h11")
        try:
            thread.start()
            url = f"http://127.0.0.1:{thread.port}"
            scanned = httpx.post(f"{url}/api/v1/project/scan", json={}, headers=AUTH, timeout=HANG)
            assert scanned.status_code == 200, scanned.text
            yield url
        finally:
            thread.stop()
            engine.close()


def _has_httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def _schemathesis(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The schemathesis command line, as run by hand (README: the API contract)."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "NO_COLOR": "1", "COLUMNS": "120"}
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_HANG
    )


def test_the_server_answers_as_its_openapi_document_says(server: str, tmp_path: Path) -> None:
    # Every phase (examples, coverage, fuzzing, stateful) and every check, with the key
    # as a user passes it. A fixed seed: a failure here reproduces with the same command.
    result = _schemathesis(
        "run", f"{server}/openapi.json", "-H", f"Authorization: Bearer {KEY}",
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--seed", str(SEED),
        "--no-color", cwd=tmp_path,
    )  # fmt: skip
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    summary = re.search(r"Test cases:\s*\n\s*(\d+) generated", report)
    assert summary is not None and int(summary.group(1)) >= 13 * 10, report  # really ran
    assert "Operations:       13 selected / 13 total" in report, report
    # No cache and no example database left behind (hypothesis still keeps its
    # character tables in .hypothesis/unicode_data, which git ignores).
    assert not (tmp_path / ".schemathesis").exists()
    assert not (tmp_path / ".hypothesis" / "examples").exists()


def test_schemathesis_finds_a_server_that_breaks_its_document(server: str, tmp_path: Path) -> None:
    # The same run against a document that promises what the server does not do (a task
    # list whose items must carry a field no task has) must fail: the check is live.
    document = httpx.get(f"{server}/openapi.json", timeout=HANG).json()
    task = document["components"]["schemas"]["TaskResponse"]
    task["required"] = [*task["required"], "owner"]
    task["properties"]["owner"] = {"type": "string"}
    (tmp_path / "broken.json").write_text(json.dumps(document))
    result = _schemathesis(
        "run", str(tmp_path / "broken.json"), "--url", server, "-H", f"Authorization: Bearer {KEY}",
        "--max-examples", "5", "--workers", "1", "--seed", str(SEED), "--phases", "fuzzing",
        "--include-path", "/api/v1/tasks", "--no-color", cwd=tmp_path,
    )  # fmt: skip
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "Response violates schema" in report, report


def test_a_task_list_offset_beyond_64_bits_is_an_empty_page(server: str) -> None:
    # Found by schemathesis: SQLite cannot bind it, and the server answered 500.
    offset = 2**64
    response = httpx.get(
        f"{server}/api/v1/tasks", params={"offset": str(offset)}, headers=AUTH, timeout=HANG
    )
    assert (response.status_code, response.json()) == (200, [])


def test_the_settings_file_tunes_only_the_two_checks_it_explains() -> None:
    # A typo in the toml must not quietly switch the run to fewer checks, or off.
    settings = tomllib.loads(CONFIG.read_text())
    assert settings["checks"] == {
        "negative_data_rejection": {"enabled": False},
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
        },
    }
    assert set(settings) <= {"checks", "cache", "generation"}
