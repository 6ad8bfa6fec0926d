"""The wal-index stamp and the task read cache built on it, against real SQLite files
and writers in other processes (a server's workers and the CLI share the database)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llmstruct.api.models import TaskCreateRequest, TaskUpdateRequest
from llmstruct.store import tasks as tasklib
from llmstruct.store.tasks import TaskStore
from llmstruct.store.walindex import WalIndexHeader, stamp_of


def in_another_process(code: str, database: Path) -> None:
    """Run ``code`` with ``store``, a TaskStore on ``database``, in a new interpreter."""
    program = (
        "import sys\nfrom llmstruct.store.tasks import TaskStore\n"
        "store = TaskStore(sys.argv[1])\n" + code + "\nstore.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", program, str(database)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


def wal_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    return conn


def test_the_stamp_moves_with_each_commit_of_any_process_and_only_then(tmp_path) -> None:
    path = tmp_path / "t.db"
    conn = wal_connection(path)
    conn.execute("CREATE TABLE t (x)")
    header = WalIndexHeader(path)
    first = header.stamp(conn)
    assert first is not None and header.stamp(conn) == first  # nothing committed
    conn.execute("SELECT count(*) FROM t").fetchone()
    assert header.stamp(conn) == first  # reading commits nothing
    conn.execute("INSERT INTO t VALUES (1)")
    second = header.stamp(conn)
    assert second not in (None, first)
    other = f"import sqlite3; sqlite3.connect({str(path)!r}).execute('INSERT INTO t VALUES (2)')"
    subprocess.run([sys.executable, "-c", other], check=True, timeout=60)
    assert header.stamp(conn) not in (None, second)
    header.close()
    conn.close()


def test_a_header_being_rewritten_or_not_initialised_gives_no_stamp() -> None:
    copy = bytes(range(48))  # isInit (byte 12) is 12: initialised
    assert stamp_of(copy + copy) == copy
    assert stamp_of(copy + bytes(48)) is None  # the copies differ: a commit mid-publish
    blank = bytearray(copy)
    blank[12] = 0
    assert stamp_of(bytes(blank) * 2) is None
    assert stamp_of(copy) is None  # too short to hold both copies


def test_no_shm_file_means_no_stamp_and_plain_queries(tmp_path) -> None:
    path = tmp_path / "rollback-journal.db"
    conn = sqlite3.connect(path)  # not WAL: there is no -shm file
    conn.execute("CREATE TABLE t (x)")
    assert WalIndexHeader(path).stamp(conn) is None
    conn.close()


@pytest.fixture
def store(tmp_path: Path):
    with TaskStore(tmp_path / "tasks.db") as opened:
        yield opened


def test_a_repeated_read_is_answered_from_memory_until_a_commit(store) -> None:
    task = store.create(TaskCreateRequest(title="read me"))
    first = store.get_json(task.id)
    assert first == store.get(task.id).model_dump(mode="json")
    assert store.get_json(task.id) is first  # kept: no query
    store.update(task.id, TaskUpdateRequest(status="done"))
    after = store.get_json(task.id)
    assert after is not first and after["status"] == "done"
    assert store.get_json("no-such-id") is None


def test_another_processs_update_and_delete_show_at_the_next_read(store) -> None:
    task = store.create(TaskCreateRequest(title="shared"))
    assert store.get_json(task.id)["title"] == "shared"
    assert store.get_json(task.id)["title"] == "shared"  # now kept
    in_another_process(f"store.update({task.id!r}, {{'title': 'renamed elsewhere'}})",
                       store.path)  # fmt: skip
    assert store.get_json(task.id)["title"] == "renamed elsewhere"
    in_another_process(f"assert store.delete({task.id!r})", store.path)
    assert store.get_json(task.id) is None


def test_the_cache_stays_bounded(store, monkeypatch) -> None:
    monkeypatch.setattr(tasklib, "READ_CACHE_ENTRIES", 3)
    ids = [store.create(TaskCreateRequest(title=f"t{i}")).id for i in range(5)]
    for task_id in ids:
        assert store.get_json(task_id)["title"] == f"t{ids.index(task_id)}"
    assert len(store._read_cache) <= 3


def test_a_closed_and_reopened_store_maps_its_new_connection(store) -> None:
    task = store.create(TaskCreateRequest(title="before close"))
    assert store.get_json(task.id)["title"] == "before close"
    store.close()
    in_another_process(f"store.update({task.id!r}, {{'title': 'while closed'}})", store.path)
    assert store.get_json(task.id)["title"] == "while closed"
