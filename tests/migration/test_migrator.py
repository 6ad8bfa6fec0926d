"""The staged migrator against a fake of the proxy's admin API (a real HTTP server).

Decision logic runs in-process (``Migrator.run`` with short windows) against
``FakeProxy`` (``migrator_fakeproxy.py``), whose window stats the tests script.
What needs processes runs ``python -m llmstruct migrate ...`` for real: a start
SIGKILLed mid-way and started again, a second start refused, pause, resume,
rollback and finish from another process while a start runs. Waits are bounded by
``HANG`` only to avoid hanging; nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakellm import unused_port

from llmstruct.migration import migrator as migratorlib
from llmstruct.migration import state as statelib
from llmstruct.migration.admin import ProxyAdmin, ProxyError
from llmstruct.migration.gates import parse_gate
from llmstruct.migration.migrator import EXIT_HALTED, Migrator, Plan
from llmstruct.migration.state import StateError
from tests.migration.migrator_fakeproxy import FakeProxy, backend_stats
from tests.migration.migrator_procs import HANG, child_env

GATES = ("error_rate<=0.01", "p95_ratio<=1", "rss_ratio<=1")
DEAD = f"http://127.0.0.1:{unused_port()}"  # nothing listens there


@pytest.fixture
def fake():
    with FakeProxy() as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def quick_ticks(monkeypatch):
    monkeypatch.setattr(migratorlib, "TICK", 0.02)


def make_state(path: Path, proxy: str, stages=(0.1, 0.5, 1.0), gates=GATES, **plan) -> Path:
    options = {"window_s": 0.05, "min_samples": 5, **plan}
    chosen = Plan(tuple(stages), tuple(parse_gate(g) for g in gates), **options)
    with statelib.transaction(path, create=statelib.new_state(proxy, chosen.as_json())):
        pass
    return path


def drive(path: Path, fake: FakeProxy) -> tuple[int, list[str]]:
    said: list[str] = []
    with ProxyAdmin(fake.url) as admin:
        status = Migrator(path, admin, say=said.append).run()
    return status, said


def events(path: Path) -> list[str]:
    return [entry["event"] for entry in statelib.load(path)["history"]]


# -- decisions ------------------------------------------------------------------------------------
def test_moves_through_every_stage_while_the_gates_hold(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    status, said = drive(path, fake)
    assert status == 0
    assert fake.puts == [0.1, 0.5, 1.0]
    state = statelib.load(path)
    assert (state["status"], state["stage"], state["weight"]) == ("completed", 2, 1.0)
    assert events(path) == ["stage", "window", "stage", "window", "stage", "window", "completed"]
    windows = [e for e in state["history"] if e["event"] == "window"]
    assert [w["decision"] for w in windows] == ["pass"] * 3
    # At 100 % legacy gets nothing: p95_ratio compares with the last legacy p95 measured.
    last = {g["gate"]: g for g in windows[-1]["gates"]}
    assert windows[-1]["measured"]["legacy_requests"] == 0
    assert last["p95_ratio<=1"]["value"] == pytest.approx(5.0 / 20.0)
    assert last["rss_ratio<=1"]["value"] == pytest.approx(0.5)
    assert any("completed" in line for line in said)


def test_a_failed_gate_halves_the_weight_and_says_which_gate_and_why(tmp_path, fake):
    # Custom fails half its requests whenever it gets more than 30 % of the traffic.
    fake.traffic = lambda weight: {
        "legacy": backend_stats(50, 0, 20.0, 1.0),
        "custom": backend_stats(50, 25 if weight > 0.3 else 0, 5.0, 1.0),
    }
    path = make_state(tmp_path / "m.json", fake.url, max_retries=2)
    status, said = drive(path, fake)
    assert status == EXIT_HALTED
    # 10 % passes; 50 % fails -> 25 %, which passes -> 50 % again, twice; the third
    # failure at the stage is one more than --max-retries 2: halt, everything to legacy.
    assert fake.puts == [0.1, 0.5, 0.25, 0.5, 0.25, 0.5, 0.0]
    state = statelib.load(path)
    assert (state["status"], state["weight"], state["stage"]) == ("halted", 0.0, 1)
    rollbacks = [e for e in state["history"] if e["event"] == "rollback"]
    assert len(rollbacks) == 2
    assert "error_rate = 0.5 breaks the limit <= 0.01" in rollbacks[0]["reason"]
    assert "weight 50% -> 25%" in rollbacks[0]["reason"]
    assert [e["event"] for e in state["history"]].count("retry_stage") == 2
    assert "--max-retries 2" in state["history"][-1]["reason"]
    assert any("halted at weight 0%" in line and "error_rate" in line for line in said)


def test_a_stage_that_recovers_after_a_rollback_goes_on(tmp_path, fake):
    def traffic(weight):
        # 50 % fails until the migrator has rolled back once, then all is well.
        failing = weight == 0.5 and 0.25 not in fake.puts
        return {
            "legacy": backend_stats(50, 0, 20.0, 1.0),
            "custom": backend_stats(50, 10 if failing else 0, 5.0, 1.0),
        }

    fake.traffic = traffic
    path = make_state(tmp_path / "m.json", fake.url)
    status, _ = drive(path, fake)
    assert status == 0
    assert fake.puts == [0.1, 0.5, 0.25, 0.5, 1.0]
    assert statelib.load(path)["failures"] == 0  # reset when the stage was passed


def test_too_few_samples_hold_the_weight_and_finally_halt(tmp_path, fake):
    fake.per_window = 30  # 10 %: 3 custom requests a window, below --min-samples 5
    path = make_state(tmp_path / "m.json", fake.url, max_inconclusive=3)
    status, said = drive(path, fake)
    assert status == EXIT_HALTED
    assert fake.puts == [0.1, 0.0]  # never advanced, never passed silently
    history = statelib.load(path)["history"]
    assert [e["event"] for e in history].count("hold") == 2
    windows = [e for e in history if e["event"] == "window"]
    assert [w["decision"] for w in windows] == ["inconclusive"] * 3
    assert (
        "only 3 custom requests in the window (fewer than --min-samples 5)"
        in (history[-1]["reason"])
    )
    assert "--max-inconclusive 3" in history[-1]["reason"]


def test_an_unreadable_memory_gauge_holds_the_window_and_says_why(tmp_path, fake):
    fake.rss["custom"] = None  # the custom server's metrics lack the gauge
    path = make_state(tmp_path / "m.json", fake.url, max_inconclusive=2)
    status, _ = drive(path, fake)
    assert status == EXIT_HALTED
    assert fake.puts == [0.1, 0.0]  # an unknown memory never counts as a pass
    history = statelib.load(path)["history"]
    windows = [e for e in history if e["event"] == "window"]
    assert [w["decision"] for w in windows] == ["inconclusive"] * 2
    rss = {g["gate"]: g for g in windows[-1]["gates"]}["rss_ratio<=1"]
    assert rss["outcome"] == "inconclusive"
    assert (
        "rss_ratio: could not read the custom server's process_resident_memory_bytes "
        f"({fake.url}/custom/api/v1/system/metrics has no process_resident_memory_bytes)"
    ) == rss["reason"]


def test_samples_arriving_after_a_hold_let_the_stage_pass(tmp_path, fake):
    def traffic(weight):
        # Each window is two POSTs (open, then close and judge): the first two judged
        # windows (POSTs 1 and 3) are thin, then traffic comes.
        total = 20 if len(fake.windows) < 4 else 200
        custom = round(total * weight)
        return {
            "legacy": backend_stats(total - custom, 0, 20.0, 1.0),
            "custom": backend_stats(custom, 0, 5.0, 1.0),
        }

    fake.traffic = traffic
    path = make_state(tmp_path / "m.json", fake.url, max_inconclusive=3)
    assert drive(path, fake)[0] == 0
    assert events(path)[:5] == ["stage", "window", "hold", "window", "hold"]
    assert fake.puts == [0.1, 0.5, 1.0]


def test_a_proxy_that_lost_its_weight_gets_it_back_before_the_next_window(tmp_path, fake):
    def traffic(weight):
        if weight == 0.5 and 0.5 not in fake.windows_weights:
            fake.weight = 0.0  # the proxy restarted at --weight 0 during this window
        fake.windows_weights.append(weight)
        return FakeProxy.traffic(fake, weight)

    fake.windows_weights = []
    fake.traffic = traffic
    path = make_state(tmp_path / "m.json", fake.url)
    assert drive(path, fake)[0] == 0
    assert fake.puts == [0.1, 0.5, 0.5, 1.0]
    history = statelib.load(path)["history"]
    reasserted = [e for e in history if e["event"] == "weight_reasserted"]
    assert len(reasserted) == 1 and reasserted[0]["found"] == 0.0
    assert reasserted[0]["weight"] == 0.5


def test_a_proxy_that_is_briefly_unavailable_is_waited_for(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(migratorlib, "PROXY_RETRY_S", 0.01)
    path = make_state(tmp_path / "m.json", fake.url)
    fake.unavailable = 2  # the first PUT and its retry fail
    status, said = drive(path, fake)
    assert status == 0
    assert fake.puts == [0.1, 0.5, 1.0]
    errors = [e for e in statelib.load(path)["history"] if e["event"] == "proxy_error"]
    assert [e["attempt"] for e in errors] == [1, 2]
    assert "the proxy answered 503 to PUT" in errors[0]["reason"]
    assert any("trying again" in line for line in said)


@pytest.mark.parametrize("code", [408, 429])
def test_a_proxy_saying_not_now_is_waited_for_like_an_outage(tmp_path, fake, monkeypatch, code):
    # A timeout or the proxy's own rate limit (its clients may share the migrator's
    # address) is a 4xx that asking again does cure: it must not end a long migration.
    monkeypatch.setattr(migratorlib, "PROXY_RETRY_S", 0.01)
    path = make_state(tmp_path / "m.json", fake.url)
    fake.unavailable, fake.refusal = 2, code
    assert drive(path, fake)[0] == 0
    assert fake.puts == [0.1, 0.5, 1.0]
    errors = [e for e in statelib.load(path)["history"] if e["event"] == "proxy_error"]
    assert [e["attempt"] for e in errors] == [1, 2]
    assert f"the proxy answered {code} to PUT" in errors[0]["reason"]


def test_a_proxy_that_stays_away_ends_the_run_with_the_reason(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(migratorlib, "PROXY_RETRY_S", 0.01)
    path = make_state(tmp_path / "m.json", fake.url)
    fake.unavailable = 10**6
    with pytest.raises(ProxyError, match="the proxy answered 503"):
        drive(path, fake)
    state = statelib.load(path)
    assert state["stage"] == -1 and fake.puts == []  # nothing recorded as done
    assert [e["event"] for e in state["history"]] == ["proxy_error"] * migratorlib.PROXY_ATTEMPTS


def test_a_proxy_refusing_a_call_ends_the_run_without_retrying(tmp_path, fake, monkeypatch):
    # A 4xx (a wrong admin key, a shadow-mode proxy) is not a blip: asking again
    # cannot help, so the run ends at once with the proxy's reason.
    monkeypatch.setattr(migratorlib, "PROXY_RETRY_S", 0.01)
    path = make_state(tmp_path / "m.json", fake.url)
    fake.unavailable, fake.refusal = 10**6, 409
    with pytest.raises(ProxyError, match="the proxy answered 409 to PUT .*: refused with 409"):
        drive(path, fake)
    errors = [e for e in statelib.load(path)["history"] if e["event"] == "proxy_error"]
    assert [e["attempt"] for e in errors] == [1]


# -- state ----------------------------------------------------------------------------------------
def test_state_round_trips_and_is_replaced_atomically(tmp_path):
    plan = Plan((0.1, 1.0), (parse_gate("error_rate<=0.01"),), 60.0, 7, 1, 4)
    assert Plan.from_json(json.loads(json.dumps(plan.as_json()))) == plan
    path = tmp_path / "deep" / "m.json"
    with statelib.transaction(path, create=statelib.new_state("http://p", plan.as_json())) as s:
        statelib.record(s, "note", reason="first")
    with statelib.transaction(path) as s:
        s["stage"] = 1
    loaded = statelib.load(path)
    assert loaded["stage"] == 1 and loaded["history"][0]["reason"] == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.json", "m.json.lock"]
    with pytest.raises(RuntimeError), statelib.transaction(path) as s:
        s["stage"] = 99
        raise RuntimeError("a failed change is not written")
    assert statelib.load(path)["stage"] == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "no migration state here"), (b"{", "not a migration state file"),
     (b'{"format": 1, "status": "dancing"}', "not a migration state file of format 1")],
)  # fmt: skip
def test_a_missing_or_foreign_state_file_is_a_clear_error(tmp_path, content, says):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StateError, match=says):
        statelib.load(path)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda s: s.pop("plan"), "'plan' is not an object"),
        (lambda s: s.update(history=None), "'history' is not a list"),
        (lambda s: s.update(history=[{}]), "'history' is not a list of events"),
        (
            lambda s: s.update(history=[{"event": "window", "at": 1.0, "gates": ["x"]}]),
            "'history' is not a list of events",
        ),
        (lambda s: s.update(stage="0"), "'stage' is not -1 or a stage of the plan (0..2)"),
        (lambda s: s.update(stage=7), "'stage' is not -1 or a stage of the plan"),
        (lambda s: s.update(weight="abc"), "'weight' is not a number in [0, 1]"),
        (lambda s: s.update(failures=-1), "'failures' is not a whole number"),
        (lambda s: s["plan"].update(stages=[]), "'stages' are not increasing weights"),
        (lambda s: s["plan"].update(stages=[5.0, 0.1]), "'stages' are not increasing weights"),
        (lambda s: s["plan"].update(window_s=0), "'window_s' is not a positive number"),
        (lambda s: s.pop("proxy"), "'proxy' is not a URL"),
    ],
)
def test_a_damaged_state_file_is_one_clear_line_for_every_command(tmp_path, change, says):
    path = make_state(tmp_path / "m.json", "http://127.0.0.1:9")
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))
    before = path.read_bytes()
    for command in ("status", "pause", "resume", "rollback", "finish", "start"):
        done = migrate(command, "--state", str(path))
        assert done.returncode == 1, (command, done.stderr)
        prefix = f"llmstruct: error: {path}: not a usable migration state file: "
        assert done.stderr.startswith(prefix) and says in done.stderr, (command, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert path.read_bytes() == before  # nothing rewrote it


def test_a_device_or_a_fifo_given_as_the_state_file_is_refused_not_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it to read would wait for a writer; /dev/zero never ends
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(StateError, match="not a regular file"):
            statelib.load(path)


# -- processes ------------------------------------------------------------------------------------
def migrate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmstruct", "migrate", *args]


def migrate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        migrate_command(*args), cwd=cwd, env=child_env(), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=HANG,
    )  # fmt: skip


def spawn(*args: str, log: Path) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(
            migrate_command(*args), env=child_env(), stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def wait_for_state(path: Path, predicate, process: subprocess.Popen | None = None) -> dict:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        try:
            state = statelib.load(path)
        except StateError:
            state = None
        if state is not None and predicate(state):
            return state
        if process is not None and process.poll() is not None:
            pytest.fail(f"the migrator exited ({process.returncode}) before the state matched")
        time.sleep(0.02)
    pytest.fail(f"the state never matched: {path.read_text() if path.exists() else 'no file'}")


def finish_process(process: subprocess.Popen) -> int:
    try:
        return process.wait(HANG)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the migrator did not stop")


START = ("--stages", "10,50,100", "--gate", "error_rate<=0.01", "--gate", "p95_ratio<=1",
         "--gate", "rss_ratio<=1", "--min-samples", "5")  # fmt: skip


def test_a_killed_migrator_restarted_goes_on_from_its_stage(tmp_path, fake):
    path = tmp_path / "m.json"
    first = spawn("start", "--proxy", fake.url, *START, "--window", "1", "--state", str(path),
                  log=tmp_path / "first.log")  # fmt: skip
    try:
        wait_for_state(path, lambda s: s["stage"] == 1, first)  # at 50 %, mid-window
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert fake.puts == [0.1, 0.5]
    fake.weight = 0.0  # as a restarted proxy would be, at its --weight flag
    second = subprocess.run(
        migrate_command("start", "--state", str(path)), env=child_env(), capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=HANG,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed at stage 2/3, weight 50%" in second.stdout
    # The restarted migrator first put 50 % back on the proxy, then went on from there.
    assert fake.puts == [0.1, 0.5, 0.5, 1.0]
    state = statelib.load(path)
    assert state["status"] == "completed"
    resumed = [e for e in state["history"] if e["event"] == "driver_resumed"]
    assert len(resumed) == 1 and resumed[0]["stage"] == 1


def test_a_second_start_is_refused_and_rollback_from_another_process_stops_the_first(
    tmp_path, fake
):
    path = tmp_path / "m.json"
    driver = spawn("start", "--proxy", fake.url, *START, "--window", "30", "--state", str(path),
                   log=tmp_path / "driver.log")  # fmt: skip
    try:
        wait_for_state(path, lambda s: s["stage"] == 0, driver)
        second = migrate("start", "--state", str(path))
        assert second.returncode == 1
        assert f"another 'llmstruct migrate start' (pid {driver.pid}) drives" in second.stderr
        status = migrate("status", "--state", str(path))
        assert f"driver: pid {driver.pid} running" in status.stdout
        back = migrate("rollback", "--state", str(path))
        assert back.returncode == 0, back.stderr
        assert finish_process(driver) == EXIT_HALTED
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert fake.puts == [0.1, 0.0]
    state = statelib.load(path)
    assert (state["status"], state["weight"]) == ("rolled_back", 0.0)
    assert state["history"][-1]["event"] == "rolled_back"  # the driver judged no window after
    again = migrate("start", "--state", str(path))
    assert again.returncode == 1 and "rolled_back; remove the file" in again.stderr


def test_pause_resume_and_finish_from_another_process(tmp_path, fake):
    path = tmp_path / "m.json"
    driver = spawn("start", "--proxy", fake.url, *START, "--window", "1.5", "--state", str(path),
                   log=tmp_path / "driver.log")  # fmt: skip
    try:
        wait_for_state(path, lambda s: s["stage"] == 0, driver)
        paused = migrate("pause", "--state", str(path))
        assert paused.returncode == 0 and "paused at weight" in paused.stdout
        wait_for_state(path, lambda s: any(e["event"] == "paused" for e in s["history"]), driver)
        puts, windows = list(fake.puts), len(fake.windows)
        time.sleep(2.5)  # longer than a window: a running migrator would have moved on
        assert fake.puts == puts and statelib.load(path)["status"] == "paused"
        assert len(fake.windows) <= windows + 1  # at most the window that was open
        early = migrate("finish", "--state", str(path))
        assert early.returncode == 1 and "the last stage (100%) was not reached" in early.stderr
        resumed = migrate("resume", "--state", str(path))
        assert resumed.returncode == 0 and "paused -> running" in resumed.stdout
        assert finish_process(driver) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert fake.puts == [0.1, 0.5, 1.0]
    done = migrate("finish", "--state", str(path))
    assert done.returncode == 0, done.stderr
    assert fake.puts[-1] == 1.0 and statelib.load(path)["status"] == "done"


def test_finish_before_the_last_stage_needs_force(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    with statelib.transaction(path) as state:
        state["stage"], state["weight"] = 0, 0.1
    refused = migrate("finish", "--state", str(path))
    assert refused.returncode == 1
    assert "not reached (at stage 1/3, weight 10%, running): use --force" in refused.stderr
    assert fake.puts == []
    forced = migrate("finish", "--force", "--state", str(path))
    assert forced.returncode == 0, forced.stderr
    assert fake.puts == [1.0]
    state = statelib.load(path)
    assert state["status"] == "done" and state["history"][-1]["forced"] is True


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (dict(stage=2, weight=0.5, status="running"), "weight 50%, running): use --force"),
        (dict(stage=2, weight=0.0, status="halted"), "weight 0%, halted): use --force"),
        (dict(stage=2, weight=1.0, status="rolled_back"), "rolled back, which is final"),
    ],
)
def test_finish_refuses_a_last_stage_whose_gate_failed_and_a_rollback(tmp_path, fake, where, says):
    path = make_state(tmp_path / "m.json", fake.url)
    with statelib.transaction(path) as state:
        state.update(where)
    refused = migrate("finish", "--state", str(path))
    assert refused.returncode == 1 and says in refused.stderr
    assert fake.puts == [] and statelib.load(path)["status"] == where["status"]


def test_finish_at_the_last_stage_at_its_full_weight_needs_no_force(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    with statelib.transaction(path) as state:
        state.update(stage=2, weight=1.0, status="paused")
    done = migrate("finish", "--state", str(path))
    assert done.returncode == 0, done.stderr
    assert fake.puts == [1.0] and statelib.load(path)["history"][-1]["forced"] is False


def test_halted_migration_resumes_at_its_stage_with_fresh_retries(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    with statelib.transaction(path) as state:
        state.update(stage=1, weight=0.0, status="halted", failures=3)
    assert migrate("resume", "--state", str(path)).returncode == 0
    fake.per_window = 100
    status, said = drive(path, fake)
    assert status == 0
    assert fake.puts == [0.5, 1.0]  # the stage again at its full weight, then onwards
    assert "resumed at stage 2/3, weight 50%" in said[0]


def test_default_state_file_is_in_the_current_directory(tmp_path, fake):
    make_state(tmp_path / ".llmstruct" / "migration.json", fake.url)
    shown = migrate("status", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "migration: running, not started" in shown.stdout
    as_json = json.loads(migrate("status", "--json", cwd=tmp_path).stdout)
    assert as_json["plan"]["gates"] == list(GATES) and as_json["driver_running"] is False


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (("start", "--gate", "foo<=1"), 2, "unknown metric 'foo'"),
        (("start", "--gate", "error_rate<=abc"), 2, "the limit 'abc' is not a number"),
        (("start", "--stages", "10,5"), 2, "stages must increase"),
        (("start", "--stages", "0,50"), 2, "stage 0 is not in (0, 100]"),
        (("start", "--window", "-1"), 2, "must be a positive number"),
        (("start", "--stages", "0.1,0.5,1"), 2, "stages are percentages (e.g. 10,50,100)"),
        (("start", "--proxy", "localhost:8080"), 2, "not an http:// or https:// URL"),
        (("start", "--proxy", "http://127.0.0.1:99999"), 2, "is not in 1..65535"),
        (("report", "--proxy", DEAD, "--admin-key", "ключ" * 5), 2,
         "the admin key must be visible ASCII characters"),
        (("report", "--proxy", DEAD, "--api-key", "ключ"), 2,
         "the API key must be visible ASCII characters"),
        (("start", "--proxy", DEAD, "--stages", "10"), 2, "at least one --gate"),
        (("start", "--proxy", DEAD, "--stages", "10", "--gate", "error_rate<1"),
         1, f"cannot reach the proxy (GET {DEAD}/_proxy/config): connection refused"),
        (("status",), 1, "no migration state here"),
        (("pause",), 1, "no migration state here"),
        (("report", "--proxy", DEAD), 1, "cannot reach the proxy"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_no_traceback(tmp_path, args, status, says):
    done = migrate(*args, "--state", str(tmp_path / "m.json")) if args[0] not in (
        "report",) else migrate(*args)  # fmt: skip
    assert done.returncode == status, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()[-1]) < 300
    assert not (tmp_path / "m.json").exists()


def test_flags_that_contradict_the_recorded_plan_are_refused(tmp_path, fake):
    path = make_state(tmp_path / "m.json", fake.url)
    other = migrate("start", "--stages", "20,100", "--state", str(path))
    assert other.returncode == 2
    assert "records a migration with --stages 10,50,100, not 20,100" in other.stderr
    assert fake.puts == []


def test_the_admin_key_goes_to_the_proxy_only_never_to_the_backends(tmp_path):
    # The backends' metrics (for rss_ratio) are other hosts: they get the API key.
    admin_key, api_key = "admin-secret-0123456789", "api-key-0123456789abcdef"
    with FakeProxy(admin_key=admin_key) as guarded:
        path = make_state(tmp_path / "m.json", guarded.url)  # rss_ratio among the gates
        with ProxyAdmin(guarded.url, admin_key, api_key) as admin:
            assert Migrator(path, admin, say=lambda line: None).run() == 0
    assert guarded.metrics_headers, "the rss gate read no backend metrics"
    for headers in guarded.metrics_headers:
        assert headers.get("X-API-Key") == api_key
        assert admin_key not in " ".join(headers.values())


def test_a_wrong_admin_key_is_a_clear_error(tmp_path):
    with FakeProxy(admin_key="right") as guarded:
        path = make_state(tmp_path / "m.json", guarded.url)
        denied = migrate("rollback", "--state", str(path), "--admin-key", "wrong")
        assert denied.returncode == 1
        assert "the proxy answered 401 to PUT" in denied.stderr
        assert "Invalid or missing admin key" in denied.stderr
        assert statelib.load(path)["status"] == "running"  # nothing recorded
        allowed = subprocess.run(
            migrate_command("rollback", "--state", str(path)), capture_output=True, text=True,
            env={**child_env(), "LLMSTRUCT_PROXY_ADMIN_KEY": "right"}, timeout=HANG,
        )  # fmt: skip
        assert allowed.returncode == 0, allowed.stderr
        assert guarded.puts == [0.0]
