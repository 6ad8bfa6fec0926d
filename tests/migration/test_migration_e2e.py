"""End to end: real legacy and custom servers, the real proxy, the migrator, steady client load.

Processes, each on a free loopback port, on one project root (so a task created
through one server can be read through the other, as in a real migration over
one database):

* legacy: ``python -m llmstruct.migration.serve_fastapi`` (the FastAPI reference);
* custom: ``python -m llmstruct.server.serve``, or for the failing run
  ``tests/migration/migrator_failing_server.py`` (every second API request 500);
* proxy:  ``python -m llmstruct migrate proxy --weight 0``;
* migrator: ``python -m llmstruct migrate start --window 2 ...``.

``ClientLoad`` (four async httpx clients, ``migrator_procs.py``) runs a mix of
reads and writes through the proxy for the whole run and records every request.

Healthy run: the migrator moves the proxy 10 % -> 50 % -> 100 % and completes,
``finish`` makes it final, and the clients saw no failed request. The gates'
limits are generous (this is no benchmark: the machine is shared) but real, and
each is judged from real measurements (the window history is checked for that).

Failing run: the custom server fails half its API requests; the first window at
10 % fails the error-rate gate, the migrator halves the weight to 5 %, that window
fails too, and with --max-retries 1 it halts at 0 %. The clients' failures are
exactly the custom server's injected 500s that the proxy counted (so the gate saw
every one of them), and once the migrator has halted the clients see none.

The custom server runs with ``LLMSTRUCT_RATE_LIMIT=0``: see ``env()``.

Waits are bounded by ``HANG`` only to avoid hanging; nothing asserts on time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmstruct.migration import state as statelib
from tests.migration.migrator_failing_server import INJECTED
from tests.migration.migrator_procs import HANG, ClientLoad, child_env
from tests.migration.proxy_helpers import Proc, start

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

KEY = "test-key-0123456789abcdef"
FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "1.2.3"\ndescription = "A shop."\n',
    "shop/cart.py": 'def total(items):\n    """Add up the prices."""\n    return sum(items)\n',
    "shop/pricing.py": (
        "from shop.cart import total\n\n\n"
        "def discounted(items, rate):\n    return total(items) * (1 - rate)\n"
    ),
}
HERE = Path(__file__).resolve().parent


def env() -> dict[str, str]:
    # Behind the proxy every client has the proxy's address, so the custom server's
    # per-client rate limit (100/s by default) would count all of them as one client
    # and answer 429: off here, as it must be (or raised) behind a proxy in production.
    return child_env(LLMSTRUCT_API_KEY=KEY, MIGRATOR_TEST_FAIL_SHARE="0.5",
                     LLMSTRUCT_RATE_LIMIT="0")  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "project"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    scanned = subprocess.run(
        [sys.executable, "-m", "llmstruct", "scan", str(root), "-q"], env=env(),
        capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    return root


@pytest.fixture(scope="module")
def legacy(root, tmp_path_factory) -> Iterator[Proc]:
    log = tmp_path_factory.mktemp("legacy") / "legacy.log"
    command = [sys.executable, "-m", "llmstruct.migration.serve_fastapi", "--port", "0",
               "--root", str(root), "--log-level", "warning"]  # fmt: skip
    served = start(command, log, r"serving FastAPI on http://127\.0\.0\.1:(\d+)", env())
    yield served
    served.stop()


def start_custom(root: Path, log: Path, failing: bool) -> Proc:
    program = [str(HERE / "migrator_failing_server.py")] if failing else [
        "-m", "llmstruct.server.serve"]  # fmt: skip
    command = [sys.executable, *program, "--port", "0", "--root", str(root)]
    return start(command, log, r"serving on http://127\.0\.0\.1:(\d+)", env())


def start_proxy(legacy: Proc, custom: Proc, log: Path) -> Proc:
    command = [sys.executable, "-m", "llmstruct", "migrate", "proxy", "--legacy", legacy.url,
               "--custom", custom.url, "--weight", "0", "--port", "0",
               "--log-level", "warning"]  # fmt: skip
    return start(command, log, r"proxy on http://127\.0\.0\.1:(\d+)", env())


def migrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmstruct", "migrate", *args], env=env(), capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=HANG,
    )  # fmt: skip


def proxy_stats(proxy: Proc) -> dict:
    return httpx.get(f"{proxy.url}/_proxy/stats", timeout=HANG).json()


def test_migrates_from_10_to_100_percent_with_no_failed_client_request(root, legacy, tmp_path):
    custom = start_custom(root, tmp_path / "custom.log", failing=False)
    proxy = start_proxy(legacy, custom, tmp_path / "proxy.log")
    state = tmp_path / "migration.json"
    try:
        with ClientLoad(proxy.url, KEY) as load:
            load.wait_for(50)  # the load is flowing before the first stage
            run = migrate(
                "start", "--proxy", proxy.url, "--stages", "10,50,100", "--window", "2",
                "--gate", "error_rate<=0.01", "--gate", "p95_ratio<=10",
                "--gate", "rss_ratio<=3", "--min-samples", "10", "--max-retries", "3",
                "--state", str(state),
            )  # fmt: skip
            assert run.returncode == 0, run.stdout + run.stderr
            done = migrate("finish", "--state", str(state))
            assert done.returncode == 0, done.stderr
            after = time.monotonic()
            load.wait_for(50, since=after)  # all at 100 % now
        stats = proxy_stats(proxy)
        report = migrate("report", "--proxy", proxy.url, "--json")
    finally:
        proxy.stop()
        custom.stop()
    assert load.failures() == [], load.failures()[:5]
    assert load.count() > 100
    history = statelib.load(state)["history"]
    stages = [(e["event"], e["weight"]) for e in history if e["event"] in ("stage", "completed")]
    assert stages == [("stage", 0.1), ("stage", 0.5), ("stage", 1.0), ("completed", 1.0)]
    windows = [e for e in history if e["event"] == "window"]
    assert windows[-1]["decision"] == "pass" and windows[-1]["weight"] == 1.0
    for gate in windows[-1]["gates"]:  # every gate judged on real figures
        assert gate["outcome"] == "pass" and gate["value"] is not None, gate
    assert statelib.load(state)["status"] == "done"
    # Every request after finish went to the custom server; both served some before.
    assert stats["weight"] == 1.0
    assert stats["backends"]["custom"]["requests"] > 0 < stats["backends"]["legacy"]["requests"]
    assert report.returncode == 0, report.stderr
    figures = json.loads(report.stdout)
    for side in ("legacy", "custom"):
        assert figures["backends"][side]["latency_ms"]["p95"] > 0
        assert figures["backends"][side]["rss_bytes"] > 0
    assert figures["improvement_factors"]["response_time"] > 0
    assert figures["improvement_factors"]["memory"] > 0


def test_a_failing_custom_server_is_rolled_back_and_clients_see_only_what_the_gate_saw(
    root, legacy, tmp_path
):
    custom = start_custom(root, tmp_path / "custom.log", failing=True)
    proxy = start_proxy(legacy, custom, tmp_path / "proxy.log")
    state = tmp_path / "migration.json"
    try:
        with ClientLoad(proxy.url, KEY) as load:
            load.wait_for(50)
            run = migrate(
                "start", "--proxy", proxy.url, "--stages", "10,50,100", "--window", "2",
                "--gate", "error_rate<=0.01", "--min-samples", "5", "--max-retries", "1",
                "--state", str(state),
            )  # fmt: skip
            halted = time.monotonic()
            load.wait_for(200, since=halted)  # the load goes on after the halt
        stats = proxy_stats(proxy)
    finally:
        proxy.stop()
        custom.stop()
    assert run.returncode == 3, run.stdout + run.stderr
    assert "halted at weight 0%" in run.stdout
    # Half the API requests fail; health checks (1 in 6 of the mix) never do.
    assert re.search(r"error_rate = 0\.\d+ breaks the limit <= 0\.01", run.stdout)
    recorded = statelib.load(state)
    assert (recorded["status"], recorded["weight"]) == ("halted", 0.0)
    moves = [(e["event"], e["weight"]) for e in recorded["history"]
             if e["event"] in ("stage", "rollback", "halted")]  # fmt: skip
    assert moves == [("stage", 0.1), ("rollback", 0.05), ("halted", 0.0)]
    rollback = next(e for e in recorded["history"] if e["event"] == "rollback")
    assert re.search(r"error_rate = 0\.\d+ breaks the limit <= 0\.01", rollback["reason"])
    assert "weight 10% -> 5%" in rollback["reason"]

    failures = load.failures()
    assert failures, "the failing custom server should have failed some client requests"
    # Every failure is the custom server's own injected 500 (the proxy and the weight
    # changes broke no request), and the proxy counted each one: the gate saw them all.
    assert {(f.status, json.loads(f.error)["detail"]) for f in failures} == {(500, INJECTED)}
    assert len(failures) == stats["backends"]["custom"]["errors"]
    assert stats["backends"]["custom"]["upstream_failures"] == 0
    # Nothing after the halt: weight 0 sends every request to legacy.
    assert load.failures(since=halted) == []
    assert load.count(since=halted) >= 200
