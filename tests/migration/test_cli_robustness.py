"""``llmstruct migrate`` against damaged state files, closed pipes and wrong servers.

Each test runs the real command (``python -m llmstruct migrate ...``) as QA did:
a hand-edited state file must be refused as damaged, not crash ``status`` or wave
a migration through; a reader that stops early (``| head``) is not an error; a
URL that is no proxy, a tiny factor and a backend refusing its metrics are each
said plainly.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.migration.migrator_fakeproxy import FakeProxy, encoded_histogram
from tests.migration.migrator_procs import HANG, child_env
from tests.migration.test_migrator import make_state, migrate, migrate_command

COMMANDS = ("status", "pause", "resume", "rollback", "finish", "start")


@pytest.fixture
def fake():
    with FakeProxy() as proxy:
        yield proxy


@contextmanager
def canned(status: int, body: dict[str, Any]) -> Iterator[str]:
    """An HTTP server on loopback answering every GET with ``status`` and ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(HANG)


def damage(path: Path, change) -> bytes:
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))
    return path.read_bytes()


def assert_refused_as_damaged(path: Path, done: subprocess.CompletedProcess, says: str) -> None:
    assert done.returncode == 1, done.stderr
    prefix = f"llmstruct: error: {path}: not a usable migration state file: "
    assert done.stderr.startswith(prefix) and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# -- 1. history entries the status printer relies on ---------------------------------------------
def window_event(**fields: Any) -> dict[str, Any]:
    gates = [{"reason": "error_rate = 0 within"}]
    return {"at": 1700000000.0, "event": "window", "stage": 0, "weight": 0.1,
            "decision": "pass", "gates": gates, **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({k: v for k, v in window_event().items() if k != "decision"},
         "(entry 1: a window's 'decision' is not one of pass, fail, inconclusive)"),
        (window_event(decision="maybe"), "a window's 'decision' is not one of"),
        (window_event(at=1e20), "(entry 1: 'at' is not a time)"),
        ({"at": -1e300, "event": "note", "stage": 0, "weight": None}, "'at' is not a time"),
        ({"at": 1700000000.0, "event": "note", "stage": 0}, "'weight' is not a number"),
    ],
)  # fmt: skip
def test_a_history_entry_status_cannot_show_is_a_damaged_file(tmp_path, entry, says):
    path = make_state(tmp_path / "m.json", "http://127.0.0.1:9")
    before = damage(path, lambda s: s.update(history=[entry]))
    for command in COMMANDS:
        done = migrate(command, "--state", str(path))
        assert_refused_as_damaged(path, done, says)
    assert path.read_bytes() == before  # nothing rewrote it


def test_status_shows_the_history_entries_it_accepts(tmp_path):
    path = make_state(tmp_path / "m.json", "http://127.0.0.1:9")
    damage(path, lambda s: s.update(history=[window_event(decision="fail")]))
    shown = migrate("status", "--state", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "last window: fail at 10% (error_rate = 0 within)" in shown.stdout


# -- 2. a plan without gates ----------------------------------------------------------------------
def test_a_plan_without_gates_is_a_damaged_file_and_moves_nothing(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    before = damage(path, lambda s: s["plan"].update(gates=[]))
    for command in COMMANDS:
        done = migrate(command, "--state", str(path))
        assert_refused_as_damaged(path, done, "the plan has no 'gates'")
    assert fake.puts == []  # no window run unjudged, no weight put
    assert path.read_bytes() == before


def test_a_gate_that_does_not_parse_is_a_damaged_file(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    damage(path, lambda s: s["plan"].update(gates=["error_rate<=lots"]))
    done = migrate("start", "--state", str(path))
    assert_refused_as_damaged(path, done, "the plan's 'gates' are not a list of expressions")
    assert fake.puts == []


def test_a_new_migration_without_a_gate_is_still_refused(tmp_path, fake):
    # There is no default gate: a new migration names its own (exit 2, nothing created).
    done = migrate("start", "--proxy", fake.url, "--stages", "100", "--state",
                   str(tmp_path / "m.json"))  # fmt: skip
    assert done.returncode == 2
    assert "at least one --gate" in done.stderr
    assert not (tmp_path / "m.json").exists() and fake.puts == []


# -- 3. a reader that stops early -----------------------------------------------------------------
def run_into_closed_pipe(*args: str, unbuffered: bool) -> subprocess.CompletedProcess:
    """Run ``migrate ARGS`` with stdout a pipe nobody reads any more (``| head`` gone)."""
    env = child_env()
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            migrate_command(*args), env=env, stdout=write, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, timeout=HANG,
        )  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.parametrize("unbuffered", [True, False])
def test_a_closed_stdout_ends_status_and_report_quietly(tmp_path, fake, unbuffered):
    path = make_state(tmp_path / "m.json", fake.url)
    for args in (("status", "--state", str(path)), ("report", "--proxy", fake.url)):
        done = run_into_closed_pipe(*args, unbuffered=unbuffered)
        assert done.returncode == 141, (args, done.stderr)  # 128 + SIGPIPE, as a shell shows
        assert done.stderr == "", (args, done.stderr)


# -- 4. a URL that is no proxy --------------------------------------------------------------------
def test_start_against_something_that_is_not_the_proxy_says_so(tmp_path):
    with canned(200, {"service": "something else"}) as url:
        done = migrate("start", "--proxy", f"{url}/sub", "--stages", "100", "--gate",
                       "error_rate<=0.01", "--state", str(tmp_path / "m.json"))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"llmstruct: error: {url}/sub does not look like an llmstruct proxy (its "
        "/_proxy/config has no mode)\n"
    )
    assert not (tmp_path / "m.json").exists()


# -- 5. tiny factors ------------------------------------------------------------------------------
def test_a_custom_side_2000_times_slower_is_not_shown_as_0_00x(fake):
    def block(latency_us: int) -> dict[str, Any]:
        return {"requests": 100, "errors": 0, "upstream_failures": 0, "rps": 1.0,
                "latency_hdr": encoded_histogram([latency_us] * 100)}  # fmt: skip

    backends = {"legacy": block(1_000), "custom": block(2_000_000)}  # 1 ms and 2 s
    fake.stats_document = {"mode": "split", "weight": 0.5, "backends": backends}
    done = migrate("report", "--proxy", fake.url)
    assert done.returncode == 0, done.stderr
    factors = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines()
               if line.startswith(("response time", "memory", "throughput"))}  # fmt: skip
    assert factors == {"response": "0.00050x", "memory": "2.00x", "throughput": "1.00x"}


# -- 6. backends that refuse their metrics --------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "says"),
    [(None, "the backends' API key is needed (--api-key or $LLMSTRUCT_API_KEY)"),
     ("wrong-key-0123456789", "the backends' API key was refused")],
)  # fmt: skip
def test_an_rss_gate_whose_metrics_answer_401_is_refused_at_start(tmp_path, fake, key, says):
    with canned(401, {"detail": "Invalid or missing API key"}) as guarded:
        # The proxy's backends are the guarded server: their metrics answer 401.
        backends = {"legacy": f"{guarded}/legacy", "custom": f"{guarded}/custom"}
        fake.config = lambda: {"mode": "split", "weight": fake.weight, **backends}
        path = tmp_path / "m.json"
        args = ["start", "--proxy", fake.url, "--stages", "100", "--gate", "rss_ratio<=1",
                "--window", "0.05", "--min-samples", "1", "--max-inconclusive", "1",
                "--state", str(path)]  # fmt: skip
        env = child_env()
        env.pop("LLMSTRUCT_API_KEY", None)
        done = subprocess.run(
            migrate_command(*args, *(["--api-key", key] if key else [])), env=env,
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=HANG,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        "llmstruct: error: the rss_ratio gate cannot read the custom server's memory: "
        f"{guarded}/custom/api/v1/system/metrics answered 401; "
    )
    assert says in done.stderr and done.stderr.count("\n") == 1
    assert fake.puts == [] and not path.exists()


def test_an_rss_gate_whose_metrics_can_be_read_starts(tmp_path, fake):
    path = tmp_path / "m.json"
    done = migrate("start", "--proxy", fake.url, "--stages", "100", "--gate", "rss_ratio<=1",
                   "--window", "0.05", "--min-samples", "1", "--state", str(path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fake.puts == [1.0]
