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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

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
        data = orjson.loads(path.read_bytes())
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
    return data


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
