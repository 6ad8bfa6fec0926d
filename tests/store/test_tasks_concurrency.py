"""No lost writes: several writer processes, a concurrent reader, and writers killed with SIGKILL.

A task counts as acknowledged once ``create()`` has returned in the writer; each
writer reports those ids to the test, and afterwards every one of them must be in
the database. Processes are forked (Linux, macOS): the workers are plain functions
of this module, which a spawned child could not import under pytest's importlib mode.

``LLMSTRUCT_TASKS_STRESS_SECONDS`` sets how long the writers run (3 s by default to
keep CI fast; the issue's acceptance run is 10 s).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from llmstruct.api.models import TaskCreateRequest
from llmstruct.store.tasks import TaskStore

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

STRESS_SECONDS = float(os.environ.get("LLMSTRUCT_TASKS_STRESS_SECONDS", "3"))
# Generous bounds that only stop a hung test; nothing here measures time.
HANG_GUARD_S = 120.0


def fork_context() -> Any:
    return multiprocessing.get_context("fork")


def all_ids(path: Path) -> list[str]:
    """Every task id in the database, read page by page through a fresh store."""
    ids: list[str] = []
    with TaskStore(path) as store:
        while page := store.list(limit=1000, offset=len(ids)):
            ids.extend(task.id for task in page)
    return ids


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# -- workers (run in forked children) -------------------------------------------------


def _writer(path: Path, worker: int, seconds: float, start, results) -> None:
    acknowledged: list[str] = []
    try:
        store = TaskStore(path)
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            request = TaskCreateRequest(
                title=f"worker {worker} task {len(acknowledged)}", tags=[f"w{worker}"]
            )
            acknowledged.append(store.create(request).id)
        results.put(("writer", worker, acknowledged, None))
    except BaseException as exc:
        results.put(("writer", worker, acknowledged, repr(exc)))


def _reader(path: Path, start, stop, results) -> None:
    reads, problems, last_count = 0, [], 0
    try:
        store = TaskStore(path)
        start.wait()
        while not stop.is_set():
            page = store.list(limit=1000)
            # No deletes happen, so the first page can only grow until it is full.
            if len(page) < last_count:
                problems.append(f"first page shrank from {last_count} to {len(page)}")
            last_count = len(page)
            if page and store.get(page[-1].id) != page[-1]:
                problems.append(f"get({page[-1].id}) differs from list()")
            reads += 1
        results.put(("reader", reads, problems, None))
    except BaseException as exc:
        results.put(("reader", reads, problems, repr(exc)))


def _stream_writer(path: Path, acks) -> None:
    store = TaskStore(path)
    n = 0
    while True:  # until SIGKILL
        task = store.create(TaskCreateRequest(title=f"stream {n}", description="x" * 3000))
        acks.send(task.id)
        n += 1


class _PausingStore(TaskStore):
    """Stops inside its Nth transaction, after the INSERT and before COMMIT."""

    def __init__(self, path: Path, pause_at: int, acks) -> None:
        super().__init__(path)
        self._writes, self._pause_at, self._acks = 0, pause_at, acks

    def _commit(self, conn: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes == self._pause_at:
            self._acks.send("paused before commit")
            time.sleep(HANG_GUARD_S)
        super()._commit(conn)


def _pausing_writer(path: Path, pause_at: int, acks) -> None:
    store = _PausingStore(path, pause_at, acks)
    for n in range(pause_at):
        acks.send(store.create(TaskCreateRequest(title=f"paused stream {n}")).id)


# -- tests --------------------------------------------------------------------------------


def run_writers_and_reader(path: Path, seconds: float, writers: int = 4) -> dict[str, Any]:
    """Run ``writers`` writer processes for ``seconds`` beside one reader process."""
    context = fork_context()
    TaskStore(path).close()  # create the schema before the race starts
    start, stop, results = context.Event(), context.Event(), context.Queue()
    processes = [
        context.Process(target=_writer, args=(path, worker, seconds, start, results))
        for worker in range(writers)
    ]
    processes.append(context.Process(target=_reader, args=(path, start, stop, results)))
    for process in processes:
        process.start()
    start.set()
    outcome: dict[str, Any] = {"acknowledged": {}, "errors": [], "reads": 0, "problems": []}
    for _ in range(writers):
        _, worker, acknowledged, error = results.get(timeout=seconds + HANG_GUARD_S)
        outcome["acknowledged"][worker] = acknowledged
        if error:
            outcome["errors"].append(f"writer {worker}: {error}")
    stop.set()
    _, outcome["reads"], outcome["problems"], error = results.get(timeout=HANG_GUARD_S)
    if error:
        outcome["errors"].append(f"reader: {error}")
    for process in processes:
        process.join(timeout=HANG_GUARD_S)
        outcome["errors"] += [f"exit code {process.exitcode}"] if process.exitcode else []
    results.close()
    results.join_thread()
    return outcome


def test_every_task_acknowledged_by_four_writer_processes_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    outcome = run_writers_and_reader(path, STRESS_SECONDS)
    assert outcome["errors"] == []
    assert outcome["problems"] == []
    assert outcome["reads"] > 0
    acknowledged = [i for ids in outcome["acknowledged"].values() for i in ids]
    assert all(outcome["acknowledged"][worker] for worker in range(4))
    stored = all_ids(path)
    assert len(stored) == len(set(stored))
    # Nobody was killed, so the two sets are equal: nothing lost, nothing extra.
    assert set(stored) == set(acknowledged)
    assert len(acknowledged) == len(set(acknowledged))
    assert integrity(path) == "ok"
    print(
        f"\n{len(acknowledged)} tasks in {STRESS_SECONDS:g} s by 4 writers"
        f" ({', '.join(str(len(ids)) for ids in outcome['acknowledged'].values())});"
        f" {outcome['reads']} concurrent reads"
    )


def receive_all(receiver) -> list[str]:
    """Every message still in the pipe, up to the dead writer's end of file."""
    messages: list[str] = []
    while True:
        try:
            messages.append(receiver.recv())
        except (EOFError, OSError):
            return messages


@pytest.mark.parametrize("acks_before_kill", [1, 40, 173])
def test_a_writer_killed_mid_stream_leaves_every_acknowledged_task(
    tmp_path: Path, acks_before_kill: int
) -> None:
    path = tmp_path / "tasks.db"
    context = fork_context()
    acknowledged: list[str] = []
    # Three writers in turn on the same file, each killed at a different point.
    for _ in range(3):
        receiver, sender = context.Pipe(duplex=False)
        writer = context.Process(target=_stream_writer, args=(path, sender))
        writer.start()
        sender.close()  # the child holds the only writing end: its death is our EOF
        for _ in range(acks_before_kill):
            if not receiver.poll(HANG_GUARD_S):
                pytest.fail("the writer stopped acknowledging")
            acknowledged.append(receiver.recv())
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=HANG_GUARD_S)
        assert writer.exitcode == -signal.SIGKILL
        acknowledged += receive_all(receiver)
        receiver.close()

        assert integrity(path) == "ok"
        stored = set(all_ids(path))
        assert set(acknowledged) <= stored
        # At most the one task committed but not yet reported per killed writer.
        assert len(stored - set(acknowledged)) <= 3


def test_a_writer_killed_inside_a_transaction_loses_only_that_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.db"
    context = fork_context()
    receiver, sender = context.Pipe(duplex=False)
    writer = context.Process(target=_pausing_writer, args=(path, 25, sender))
    writer.start()
    sender.close()
    messages: list[str] = []
    while not messages or messages[-1] != "paused before commit":
        if not receiver.poll(HANG_GUARD_S):
            pytest.fail("the writer never reached its paused transaction")
        messages.append(receiver.recv())
    # The writer now holds SQLite's write lock with an uncommitted INSERT.
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=HANG_GUARD_S)
    receiver.close()
    acknowledged = messages[:-1]
    assert len(acknowledged) == 24

    assert integrity(path) == "ok"
    assert sorted(all_ids(path)) == sorted(acknowledged)
    # The dead writer's lock went with it: a new writer is not blocked.
    with TaskStore(path, busy_timeout=5) as store:
        task = store.create(TaskCreateRequest(title="after the crash"))
        assert store.get(task.id) == task
