"""The staged migrator's state on disk: one JSON file, replaced atomically, with two locks.

The file (default ``.llmstruct/migration.json``) holds the plan (proxy URL, stages,
gates, window, limits), where the migration is (status, stage, weight, counters)
and the history of every stage, window and decision. A restarted migrator reads it
and goes on from the recorded stage; ``migrate status|pause|resume|rollback|finish``
read and change it from another terminal while ``migrate start`` runs.

Concurrency. The file is never edited in place: a change is read-modify-write of
the whole document, written with ``atomic_write_bytes`` (a reader sees the old or
the new file, never half), under an exclusive ``flock`` on ``FILE.lock`` held for
the length of the change only (``transaction``). Separately, ``migrate start``
holds ``FILE.driver.lock`` for its whole life (``DriverLock``), so a second
``start`` on the same file is refused instead of driving the proxy in parallel.
``flock`` locks die with their process, so a SIGKILLed migrator leaves no stale
lock behind. The locks are separate files because the state file's inode changes
on every write (a lock on it would lock the old inode).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from llmstruct.migration.gates import DECISIONS, GateError, parse_gate
from llmstruct.store.atomic import atomic_write_bytes

__all__ = [
    "ACTIVE",
    "DEFAULT_PATH",
    "STATUSES",
    "DriverLock",
    "StateError",
    "load",
    "new_state",
    "record",
    "save",
    "transaction",
]

DEFAULT_PATH = Path(".llmstruct") / "migration.json"
FORMAT = 1
# running: the stage loop drives (or will drive, once ``start`` runs) the proxy.
# paused: weight held, no window judged, until ``resume``.
# completed: the last stage's window passed; waits for ``finish``.
# halted: the migrator gave up after too many failed or inconclusive windows (weight 0).
# rolled_back: an operator sent everything back to legacy (weight 0). Final.
# done: ``finish`` sent everything to custom (weight 1). Final.
STATUSES = ("running", "paused", "completed", "halted", "rolled_back", "done")
ACTIVE = ("running", "paused")
FINAL = ("rolled_back", "done")


class StateError(Exception):
    """The state file is missing, unreadable, locked by another migrator, or not ours."""


def new_state(proxy: str, plan: dict[str, Any]) -> dict[str, Any]:
    """A migration that has not moved the proxy yet (stage -1, weight unknown)."""
    return {
        "format": FORMAT,
        "proxy": proxy,
        "plan": plan,
        "status": "running",
        "stage": -1,
        "weight": None,
        "failures": 0,
        "inconclusive": 0,
        "control": 0,  # bumped by every operator command: voids the window in progress
        "baseline_legacy_p95_ms": None,
        "driver_pid": None,
        "updated": time.time(),
        "history": [],
    }


def record(state: dict[str, Any], event: str, **fields: Any) -> dict[str, Any]:
    """Append ``event`` (with the stage and weight it happened at) to the history."""
    entry = {"at": round(time.time(), 3), "event": event, "stage": state["stage"],
             "weight": state["weight"], **fields}  # fmt: skip
    state["history"].append(entry)
    return entry


def load(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(_read_regular(path))
    except FileNotFoundError:
        raise StateError(
            f"{path}: no migration state here (run 'llmstruct migrate start')"
        ) from None
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise StateError(f"{path}: not a migration state file ({exc})") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or data.get("status") not in STATUSES
    ):
        raise StateError(f"{path}: not a migration state file of format {FORMAT}")
    problem = _problem(data)
    if problem is not None:
        raise StateError(f"{path}: not a usable migration state file: {problem}")
    return data


def _read_regular(path: Path) -> bytes:
    """The file's bytes; a device or a FIFO (``--state /dev/zero``) is refused, not read."""
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer (no effect on files).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb", buffering=0) as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path}: not a regular file")
        return file.read()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and value == value and abs(value) != float("inf"))  # fmt: skip


def _is_gate(value: Any) -> bool:
    """A ``--gate`` expression as the plan stores it (``migrate start`` parses them back)."""
    if not isinstance(value, str):
        return False
    try:
        parse_gate(value)
    except GateError:
        return False
    return True


def _problem(data: dict[str, Any]) -> str | None:
    """What makes a parsed state file unusable (a field missing or of the wrong kind)."""
    plan = data.get("plan")
    if not isinstance(data.get("proxy"), str) or not data["proxy"]:
        return "'proxy' is not a URL"
    if not isinstance(plan, dict):
        return "'plan' is not an object"
    stages = plan.get("stages")
    if (
        not isinstance(stages, list)
        or not stages
        or not all(_is_number(w) and 0 < w <= 1 for w in stages)
        or any(a >= b for a, b in zip(stages, stages[1:], strict=False))
    ):
        return "the plan's 'stages' are not increasing weights in (0, 1]"
    if not isinstance(plan.get("gates"), list) or not all(_is_gate(g) for g in plan["gates"]):
        return "the plan's 'gates' are not a list of expressions"
    if not plan["gates"]:
        # With no gate every window "passes": the migration would reach 100 % unjudged.
        return "the plan has no 'gates' (a migration needs at least one to judge its windows)"
    if not _is_number(plan.get("window_s")) or plan["window_s"] <= 0:
        return "the plan's 'window_s' is not a positive number"
    for name in ("min_samples", "max_retries", "max_inconclusive"):
        if not _is_int(plan.get(name)) or plan[name] < 0:
            return f"the plan's {name!r} is not a whole number"
    stage = data.get("stage")
    if not _is_int(stage) or not -1 <= stage < len(stages):
        return f"'stage' is not -1 or a stage of the plan (0..{len(stages) - 1})"
    weight = data.get("weight")
    if weight is not None and not (_is_number(weight) and 0 <= weight <= 1):
        return "'weight' is not a number in [0, 1]"
    for name in ("failures", "inconclusive", "control"):
        if not _is_int(data.get(name)) or data[name] < 0:
            return f"{name!r} is not a whole number"
    baseline = data.get("baseline_legacy_p95_ms")
    if baseline is not None and not (_is_number(baseline) and baseline >= 0):
        return "'baseline_legacy_p95_ms' is not a number"
    if data.get("driver_pid") is not None and not _is_int(data["driver_pid"]):
        return "'driver_pid' is not a process id"
    history = data.get("history")
    if not isinstance(history, list):
        return "'history' is not a list of events"
    for number, entry in enumerate(history, 1):
        problem = _event_problem(entry)
        if problem is not None:
            return f"'history' is not a list of events (entry {number}: {problem})"
    return None


def _event_problem(entry: Any) -> str | None:
    """What keeps ``entry`` from being one ``record`` writes (``migrate status`` shows it)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("event"), str):
        return "no 'event' name"
    if not _is_time(entry.get("at")):
        return "'at' is not a time"
    if "weight" not in entry or (entry["weight"] is not None and not _is_number(entry["weight"])):
        return "'weight' is not a number"
    if entry["event"] == "window":
        gates = entry.get("gates")
        if not isinstance(gates, list) or not all(
            isinstance(g, dict) and isinstance(g.get("reason"), str) for g in gates
        ):
            return "a window's 'gates' are not gate results"
        if entry.get("decision") not in DECISIONS:
            return f"a window's 'decision' is not one of {', '.join(DECISIONS)}"
    return None


def _is_time(value: Any) -> bool:
    """A finite Unix time that ``datetime`` (and so ``migrate status``) can show."""
    if not _is_number(value):
        return False
    try:
        datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def save(path: Path, state: dict[str, Any]) -> None:
    state["updated"] = round(time.time(), 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, orjson.dumps(state, option=orjson.OPT_INDENT_2) + b"\n")


def _lock_path(path: Path, kind: str) -> Path:
    return path.with_name(f"{path.name}.{kind}")


@contextlib.contextmanager
def transaction(path: Path, create: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Read the state under the change lock, yield it, and save it if the block succeeds.

    With ``create``, a missing file starts as ``create``. An exception in the block
    leaves the file as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if create is not None and not path.exists():
            state = create
        else:
            state = load(path)
        yield state
        save(path, state)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


class DriverLock:
    """``FILE.driver.lock``, held by one ``migrate start`` for its whole life."""

    def __init__(self, path: Path) -> None:
        self.path = _lock_path(path, "driver.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateError(
                f"another 'llmstruct migrate start' (pid {holder}) drives this migration"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @staticmethod
    def holder(path: Path) -> int | None:
        """The pid of the ``start`` that drives ``path``'s migration, or ``None``."""
        try:
            fd = os.open(_lock_path(path, "driver.lock"), os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DriverLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
