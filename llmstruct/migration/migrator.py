"""The staged migrator: move the proxy's weight stage by stage while every gate holds.

``migrate start`` runs ``Migrator.run``: for each stage (e.g. 10 %, 50 %, 100 % of
requests to the custom server) it puts the weight on the proxy, opens a window
(``POST /_proxy/stats/window``), waits ``window_s``, closes it (the same POST
returns the window's stats), reads both backends' RSS and judges every gate
(``gates.py``). The decision, written with the window's figures to the state's
history (``state.py``):

* pass: at the stage's weight, the next stage (after the last: ``completed``,
  waiting for ``migrate finish``); at a halved weight after a failure, the stage
  is tried again at its full weight.
* fail: roll back by halving the weight and say which gate, its value and its
  limit. The stage is retried after a passing window at the lower weight. After
  more than ``max_retries`` failed windows at one stage the migrator halts:
  weight 0 (all traffic back on legacy), status ``halted``, exit status 3.
* inconclusive (a gate had too few samples, or an RSS gauge was unreadable): hold
  the weight, judge another window. After ``max_inconclusive`` such windows in a
  row the migrator halts as above: a migration that cannot be judged is stopped,
  not waved through.

Control from another terminal: ``pause``, ``resume``, ``rollback`` and ``finish``
change the state file (``rollback``/``finish`` also put the weight on the proxy
first); each bumps the state's ``control`` counter. The loop re-reads the state
every ``TICK`` seconds and drops a window during which the counter moved, so a
decision is never made on a window an operator interfered with. The loop writes
its decisions under the same lock, after checking that counter, so it cannot
overwrite an operator's rollback.

A restarted ``start`` goes on from the recorded stage and first puts the recorded
weight on the proxy again (a restarted proxy starts at its ``--weight`` flag); a
running one checks the proxy's weight before each window and puts it back if the
proxy lost it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmstruct.migration import gates as gatelib
from llmstruct.migration import state as statelib
from llmstruct.migration.admin import ProxyAdmin, ProxyError, RssReading
from llmstruct.migration.state import StateError

__all__ = [
    "EXIT_HALTED",
    "ControlError",
    "Migrator",
    "Plan",
    "finish",
    "pause",
    "resume",
    "rollback",
]

TICK = 0.25  # seconds between looks at the state file: how soon pause/rollback/finish act
PROXY_ATTEMPTS = 5  # failed calls to the proxy in a row that end the run
PROXY_RETRY_S = 1.0  # pause after the first failure; the n-th waits n times as long
# The 4xx answers that say "not now" rather than "never": a proxy whose own rate
# limit or timeouts caught the admin call (its clients may share our address).
TRANSIENT_REFUSALS = frozenset({408, 425, 429})
EXIT_HALTED = 3  # halted, or rolled back by an operator: the migration did not finish
DEFAULT_MIN_SAMPLES = 20
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_INCONCLUSIVE = 10


class ControlError(Exception):
    """A control command that does not apply to the migration's current status."""


@dataclass(frozen=True)
class Plan:
    stages: tuple[float, ...]  # weights in (0, 1], increasing
    gates: tuple[gatelib.Gate, ...]
    window_s: float
    min_samples: int = DEFAULT_MIN_SAMPLES
    max_retries: int = DEFAULT_MAX_RETRIES
    max_inconclusive: int = DEFAULT_MAX_INCONCLUSIVE

    def as_json(self) -> dict[str, Any]:
        return {
            "stages": list(self.stages),
            "gates": [str(gate) for gate in self.gates],
            "window_s": self.window_s,
            "min_samples": self.min_samples,
            "max_retries": self.max_retries,
            "max_inconclusive": self.max_inconclusive,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        try:
            return cls(
                stages=tuple(float(w) for w in data["stages"]),
                gates=tuple(gatelib.parse_gate(text) for text in data["gates"]),
                window_s=float(data["window_s"]),
                min_samples=int(data["min_samples"]),
                max_retries=int(data["max_retries"]),
                max_inconclusive=int(data["max_inconclusive"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the state file's plan is unreadable: {exc}") from None


def percent(weight: float | None) -> str:
    return "unset" if weight is None else f"{weight * 100:.4g}%"


class Migrator:
    """Drives one migration (the state file at ``path``) through ``admin``."""

    def __init__(self, path: Path, admin: ProxyAdmin, say: Callable[[str], None] = print) -> None:
        self.path = path
        self.admin = admin
        self.say = say
        self._proxy_failures = 0

    def run(self) -> int:
        """Drive until completed (0), halted or rolled back (``EXIT_HALTED``) or finished (0).

        Raises ``StateError`` (another driver, unreadable state) and ``ProxyError``.
        """
        with statelib.DriverLock(self.path):
            self._take_over()
            try:
                return self._loop()
            except KeyboardInterrupt:
                with statelib.transaction(self.path) as state:
                    state["driver_pid"] = None
                    statelib.record(state, "driver_stopped", reason="interrupted")
                raise

    # -- start-up ------------------------------------------------------------------------------
    def _take_over(self) -> None:
        with statelib.transaction(self.path) as state:
            plan = Plan.from_json(state["plan"])
            state["driver_pid"] = os.getpid()
            if state["status"] not in statelib.ACTIVE + ("completed",):
                return
            if state["stage"] < 0:
                return  # nothing put on the proxy yet: the loop begins with stage 0
            weight = state["weight"]
            if weight is None:  # resumed after a halt: the stage again, at its full weight
                weight = plan.stages[state["stage"]]
            self.admin.put_weight(weight)
            state["weight"] = weight
            statelib.record(state, "driver_resumed", status=state["status"])
            self.say(f"resumed at stage {state['stage'] + 1}/{len(plan.stages)}, "
                     f"weight {percent(weight)} ({state['status']})")  # fmt: skip

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> int:
        announced_pause = False
        while True:
            state = statelib.load(self.path)
            status = state["status"]
            if status != "paused":
                announced_pause = False
            if status == "running":
                self._step_tolerantly(state)
                continue
            if status == "paused":
                if not announced_pause:
                    self.say(f"paused at weight {percent(state['weight'])}: "
                             "waiting for 'llmstruct migrate resume'")  # fmt: skip
                    announced_pause = True
                time.sleep(TICK)
                continue
            return self._ended(state)

    def _step_tolerantly(self, state: dict[str, Any]) -> None:
        """One step; a proxy that cannot be reached is waited for, a few times.

        A proxy restart or a network blip must not end a migration that runs for
        hours: the window in progress is dropped, the failure recorded, and the
        step retried after a pause that grows with each failure. After
        ``PROXY_ATTEMPTS`` failures in a row the ``ProxyError`` ends the run (exit 1;
        a new ``start`` goes on from the recorded stage). A refusal (4xx: a wrong
        admin key, a proxy not in split mode) ends it at once: asking again cannot help,
        except 408, 425 and 429 (``TRANSIENT_REFUSALS``), which are waited out as failures.
        """
        try:
            self._step(state)
        except ProxyError as exc:
            self._proxy_failures += 1
            with statelib.transaction(self.path) as current:
                statelib.record(current, "proxy_error", reason=str(exc),
                                attempt=self._proxy_failures)  # fmt: skip
            status = exc.status
            refused = (
                status is not None and 400 <= status < 500 and status not in TRANSIENT_REFUSALS
            )
            if refused or self._proxy_failures >= PROXY_ATTEMPTS:
                raise
            pause = PROXY_RETRY_S * self._proxy_failures
            self.say(f"{exc}; trying again in {pause:g} s")
            time.sleep(pause)
        else:
            self._proxy_failures = 0

    def _ended(self, state: dict[str, Any]) -> int:
        status = state["status"]
        with statelib.transaction(self.path) as current:
            current["driver_pid"] = None
        if status == "completed":
            self.say("completed: the last stage held its window; "
                     "'llmstruct migrate finish' makes it final")  # fmt: skip
            return 0
        if status == "done":
            self.say("done: all traffic goes to the custom server")
            return 0
        last = next((e for e in reversed(state["history"]) if e.get("reason")), None)
        why = f": {last['reason']}" if last else ""
        self.say(f"{status} at weight {percent(state['weight'])}{why}")
        if status == "halted":
            self.say("'llmstruct migrate resume' then 'start' tries the stage again")
        return EXIT_HALTED

    def _step(self, state: dict[str, Any]) -> None:
        plan = Plan.from_json(state["plan"])
        if state["stage"] < 0:
            self._apply(state.get("control", 0), self._first_stage)
            return
        control = state.get("control", 0)
        self._check_weight(state, control)
        self.admin.window()  # discard what came before: the window starts now
        opened = time.monotonic()
        while time.monotonic() - opened < plan.window_s:
            time.sleep(min(TICK, max(0.0, plan.window_s - (time.monotonic() - opened))))
            if statelib.load(self.path).get("control", 0) != control:
                return  # an operator acted: this window is void
        stats = self.admin.window()
        self._apply(control, lambda s: self._judge(s, plan, stats))

    def _check_weight(self, state: dict[str, Any], control: int) -> None:
        """Put the recorded weight back if the proxy lost it (it restarted at its --weight)."""
        found = self.admin.config().get("weight")
        if isinstance(found, int | float) and abs(found - state["weight"]) < 1e-9:
            return

        def reassert(current: dict[str, Any]) -> None:
            self.admin.put_weight(current["weight"])
            statelib.record(current, "weight_reasserted", found=found)
            self.say(f"the proxy had weight {found!r}: {percent(current['weight'])} put back")

        self._apply(control, reassert)

    def _apply(self, control: int, change: Callable[[dict[str, Any]], None]) -> None:
        """Run ``change`` on the state under the lock, unless an operator acted meanwhile."""
        with statelib.transaction(self.path) as state:
            if state.get("control", 0) != control or state["status"] != "running":
                return
            change(state)

    def _first_stage(self, state: dict[str, Any]) -> None:
        plan = Plan.from_json(state["plan"])
        self._move(state, 0, plan.stages[0], "stage", plan)

    def _move(self, state: dict[str, Any], stage: int, weight: float, event: str, plan: Plan,
              **fields: Any) -> None:  # fmt: skip
        """Put ``weight`` on the proxy, then record it (a failed PUT records nothing)."""
        self.admin.put_weight(weight)
        state["stage"], state["weight"] = stage, weight
        statelib.record(state, event, **fields)
        self.say(f"{event}: stage {stage + 1}/{len(plan.stages)}, weight {percent(weight)}"
                 + (f" ({fields['reason']})" if "reason" in fields else ""))  # fmt: skip

    # -- judging a window ----------------------------------------------------------------------
    def _judge(self, state: dict[str, Any], plan: Plan, stats: dict[str, Any]) -> None:
        window = self._measure(state, plan, stats)
        results = [gatelib.evaluate(gate, window, plan.min_samples) for gate in plan.gates]
        decision = gatelib.decide(results)
        statelib.record(
            state, "window", decision=decision, gates=[r.as_json() for r in results],
            measured=_window_json(window),
        )  # fmt: skip
        if window.legacy_requests >= plan.min_samples and window.legacy_p95_ms:
            state["baseline_legacy_p95_ms"] = window.legacy_p95_ms
        self.say(f"window at {percent(state['weight'])}: {decision} ("
                 + "; ".join(r.reason for r in results) + ")")  # fmt: skip
        if decision == gatelib.PASS:
            self._passed(state, plan)
        elif decision == gatelib.FAIL:
            failed = [r for r in results if r.outcome == gatelib.FAIL]
            self._failed(state, plan, "; ".join(r.reason for r in failed))
        else:
            unsure = [r for r in results if r.outcome == gatelib.INCONCLUSIVE]
            self._inconclusive(state, plan, "; ".join(r.reason for r in unsure))

    def _measure(self, state: dict[str, Any], plan: Plan, stats: dict[str, Any]) -> gatelib.Window:
        legacy, custom = stats["backends"]["legacy"], stats["backends"]["custom"]
        rss = {"legacy": RssReading(None), "custom": RssReading(None)}
        if any(gate.metric == "rss_ratio" for gate in plan.gates):
            rss = self.admin.backends_rss(self.admin.config())
        return gatelib.Window(
            custom_requests=_count(custom, "requests"),
            custom_errors=_count(custom, "errors"),
            legacy_requests=_count(legacy, "requests"),
            legacy_errors=_count(legacy, "errors"),
            custom_p95_ms=_p95(custom),
            legacy_p95_ms=_p95(legacy),
            custom_rss=rss["custom"].value,
            legacy_rss=rss["legacy"].value,
            baseline_legacy_p95_ms=state.get("baseline_legacy_p95_ms"),
            custom_rss_problem=rss["custom"].problem,
            legacy_rss_problem=rss["legacy"].problem,
        )

    def _passed(self, state: dict[str, Any], plan: Plan) -> None:
        state["inconclusive"] = 0
        stage = state["stage"]
        target = plan.stages[stage]
        if state["weight"] < target:
            self._move(state, stage, target, "retry_stage", plan,
                       reason=f"a window at {percent(state['weight'])} passed")  # fmt: skip
        elif stage + 1 < len(plan.stages):
            state["failures"] = 0
            self._move(state, stage + 1, plan.stages[stage + 1], "stage", plan)
        else:
            state["status"] = "completed"
            statelib.record(state, "completed")

    def _failed(self, state: dict[str, Any], plan: Plan, reason: str) -> None:
        state["inconclusive"] = 0
        state["failures"] += 1
        if state["failures"] > plan.max_retries:
            self._halt(state, plan, f"{reason}; {state['failures']} failed windows at stage "
                       f"{state['stage'] + 1} (--max-retries {plan.max_retries})")  # fmt: skip
            return
        halved = state["weight"] / 2
        change = f"weight {percent(state['weight'])} -> {percent(halved)}"
        self._move(state, state["stage"], halved, "rollback", plan, reason=f"{reason}; {change}")

    def _inconclusive(self, state: dict[str, Any], plan: Plan, reason: str) -> None:
        state["inconclusive"] += 1
        if state["inconclusive"] >= plan.max_inconclusive:
            self._halt(state, plan, f"{reason}; {state['inconclusive']} inconclusive windows in "
                       f"a row (--max-inconclusive {plan.max_inconclusive})")  # fmt: skip
            return
        statelib.record(state, "hold", reason=reason)
        self.say(f"hold at {percent(state['weight'])}: {reason}")

    def _halt(self, state: dict[str, Any], plan: Plan, reason: str) -> None:
        self.admin.put_weight(0.0)
        state["weight"] = 0.0
        state["status"] = "halted"
        statelib.record(state, "halted", reason=reason)


def _count(backend: dict[str, Any], key: str) -> int:
    value = backend.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProxyError(f"the proxy's window stats have no valid {key!r} count")
    return value


def _p95(backend: dict[str, Any]) -> float | None:
    latency = backend.get("latency_ms")
    if not isinstance(latency, dict) or not isinstance(latency.get("p95"), int | float):
        return None
    return float(latency["p95"])


def _window_json(window: gatelib.Window) -> dict[str, Any]:
    return asdict(window)


# -- control from another terminal ----------------------------------------------------------------
def _control(state: dict[str, Any], event: str, **fields: Any) -> None:
    state["control"] = state.get("control", 0) + 1
    statelib.record(state, event, **fields)


def pause(path: Path) -> str:
    with statelib.transaction(path) as state:
        if state["status"] == "paused":
            return "already paused"
        if state["status"] != "running":
            raise ControlError(f"cannot pause a migration that is {state['status']}")
        state["status"] = "paused"
        _control(state, "paused")
        return f"paused at weight {percent(state['weight'])}"


def resume(path: Path) -> str:
    with statelib.transaction(path) as state:
        status = state["status"]
        if status == "running":
            return "already running"
        if status not in ("paused", "halted"):
            raise ControlError(f"cannot resume a migration that is {status}")
        state["status"] = "running"
        if status == "halted":
            # The stage gets a fresh set of retries at its full weight, which the next
            # ``start`` puts on the proxy (``weight`` None: see Migrator._take_over).
            state["failures"] = state["inconclusive"] = 0
            state["weight"] = None
        _control(state, "resumed", previous=status)
        return f"resumed ({status} -> running)"


def rollback(path: Path, admin_for: Callable[[str], ProxyAdmin]) -> str:
    with statelib.transaction(path) as state:
        if state["status"] == "rolled_back":
            return "already rolled back"
        with admin_for(state["proxy"]) as admin:
            admin.put_weight(0.0)
        previous = state["status"]
        state["status"], state["weight"] = "rolled_back", 0.0
        _control(state, "rolled_back", previous=previous, reason="operator rollback")
        return "rolled back: weight 0%, all traffic to the legacy server"


def finish(path: Path, admin_for: Callable[[str], ProxyAdmin], force: bool = False) -> str:
    with statelib.transaction(path) as state:
        status = state["status"]
        if status == "done":
            return "already done"
        if status == "rolled_back":
            raise ControlError(
                "the migration was rolled back, which is final: remove the state file "
                "and start a new one"
            )
        stages = state["plan"]["stages"]
        # The last stage counts as reached at its full weight only: after a failed
        # gate there the weight is halved, and 100 % would undo that rollback.
        at_last = state["stage"] == len(stages) - 1 and state["weight"] == stages[-1]
        reached = status == "completed" or status in statelib.ACTIVE and at_last
        if not reached and not force:
            raise ControlError(
                f"the last stage ({percent(stages[-1])}) was not reached (at stage "
                f"{state['stage'] + 1}/{len(stages)}, weight {percent(state['weight'])}, "
                f"{status}): use --force to finish anyway"
            )
        with admin_for(state["proxy"]) as admin:
            admin.put_weight(1.0)
        previous = state["status"]
        state["status"], state["weight"] = "done", 1.0
        _control(state, "done", previous=previous, forced=not reached)
        return "done: weight 100%, all traffic to the custom server"
