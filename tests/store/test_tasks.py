"""The task store: CRUD, PATCH semantics, filters, search, pagination, files it refuses."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from pydantic import ValidationError
from taskdb import hold_write_lock, refuse_title

from llmstruct.api.models import TaskCreateRequest, TaskUpdateRequest
from llmstruct.store.tasks import (
    SCHEMA_VERSION,
    TaskStore,
    TaskStoreError,
    _new_record,
    _QueuedRow,
)


@pytest.fixture
def store(tmp_path: Path):
    with TaskStore(tmp_path / "tasks.db") as store:
        yield store


def new(title: str, **fields) -> TaskCreateRequest:
    return TaskCreateRequest(title=title, **fields)


def patch(**fields) -> TaskUpdateRequest:
    return TaskUpdateRequest.model_validate(fields)


# -- CRUD --------------------------------------------------------------------------


def test_create_returns_a_todo_task_with_a_uuid_and_utc_timestamps(store: TaskStore) -> None:
    task = store.create(new("Write the parser", tags=["engine", "go"], estimated_effort=3))
    assert uuid.UUID(task.id).version == 4
    assert (task.title, task.status, task.priority) == ("Write the parser", "todo", "medium")
    assert task.tags == ["engine", "go"]
    assert task.estimated_effort == 3
    assert task.description is None
    assert task.created_at == task.updated_at
    assert task.created_at.tzinfo is not None
    assert task.created_at.utcoffset() == UTC.utcoffset(None)


def test_get_returns_what_create_stored_and_none_for_an_unknown_id(store: TaskStore) -> None:
    task = store.create(new("a", description="details", priority="urgent"))
    assert store.get(task.id) == task
    assert store.get(str(uuid.uuid4())) is None
    assert store.get("not-a-uuid") is None


def test_create_accepts_a_mapping_and_validates_it(store: TaskStore) -> None:
    assert store.create({"title": "from the CLI"}).title == "from the CLI"
    with pytest.raises(ValidationError):
        store.create({"title": ""})


def test_tasks_survive_closing_and_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    with TaskStore(path) as first:
        task = first.create(new("persist me", tags=["x"]))
    with TaskStore(path) as second:
        assert second.get(task.id) == task


def test_delete_removes_the_task_and_reports_whether_it_existed(store: TaskStore) -> None:
    task = store.create(new("short-lived"))
    assert store.delete(task.id) is True
    assert store.get(task.id) is None
    assert store.delete(task.id) is False


# -- PATCH semantics ---------------------------------------------------------------


def test_update_changes_only_the_fields_sent(store: TaskStore) -> None:
    task = store.create(
        new("original", description="keep", tags=["a"], priority="low", estimated_effort=2)
    )
    updated = store.update(task.id, patch(status="in_progress", tags=["a", "b"]))
    assert updated is not None
    assert (updated.status, updated.tags) == ("in_progress", ["a", "b"])
    assert (updated.title, updated.description, updated.priority) == ("original", "keep", "low")
    assert updated.estimated_effort == 2
    assert updated.created_at == task.created_at
    assert store.get(task.id) == updated


def test_update_clears_nullable_fields_sent_as_null(store: TaskStore) -> None:
    task = store.create(new("t", description="obsolete", estimated_effort=5))
    updated = store.update(task.id, patch(description=None, estimated_effort=None))
    assert updated is not None
    assert (updated.description, updated.estimated_effort) == (None, None)


def test_update_moves_updated_at_forward_even_when_nothing_is_sent(store: TaskStore) -> None:
    task = store.create(new("t"))
    first = store.update(task.id, patch())
    second = store.update(task.id, patch(title="renamed"))
    assert first is not None and second is not None
    assert task.updated_at < first.updated_at < second.updated_at
    assert first.title == "t" and second.title == "renamed"


def test_update_of_an_unknown_id_returns_none(store: TaskStore) -> None:
    assert store.update(str(uuid.uuid4()), patch(title="x")) is None


@pytest.mark.parametrize("field", ["title", "priority", "status", "tags"])
def test_null_for_a_required_field_is_a_validation_error(store: TaskStore, field: str) -> None:
    task = store.create(new("t"))
    with pytest.raises(ValidationError) as caught:
        TaskUpdateRequest.model_validate({field: None})
    assert caught.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError):
        store.update(task.id, {field: None})
    assert store.get(task.id) == task


def test_update_rejects_invalid_values(store: TaskStore) -> None:
    task = store.create(new("t"))
    for bad in ({"title": ""}, {"status": "finished"}, {"estimated_effort": -1}):
        with pytest.raises(ValidationError):
            store.update(task.id, bad)
    assert store.get(task.id) == task


# -- list: filters, search, order, pagination ----------------------------------------


def test_list_filters_by_status_priority_and_exact_tag(store: TaskStore) -> None:
    a = store.create(new("a", priority="high", tags=["python", "api"]))
    b = store.create(new("b", priority="high", tags=["py"]))
    c = store.create(new("c", tags=["python"]))
    store.update(b.id, patch(status="done"))
    assert [t.id for t in store.list(priority="high")] == [a.id, b.id]
    assert [t.id for t in store.list(status="done")] == [b.id]
    assert [t.id for t in store.list(tag="python")] == [a.id, c.id]
    assert [t.id for t in store.list(tag="py")] == [b.id]
    assert [t.id for t in store.list(tag="python", priority="high", status="todo")] == [a.id]
    assert store.list(tag="pyth") == []


def test_search_matches_title_or_description_ignoring_case(store: TaskStore) -> None:
    a = store.create(new("Fix the TOKEN budget"))
    b = store.create(new("Docs", description="explain token counting"))
    c = store.create(new("Straße umbenennen", description="Ärger mit Umlauten"))
    store.create(new("unrelated"))
    assert [t.id for t in store.list(q="token")] == [a.id, b.id]
    assert [t.id for t in store.list(q="ÄRGER")] == [c.id]
    assert [t.id for t in store.list(q="STRASSE")] == [c.id]


def test_search_treats_wildcard_characters_literally(store: TaskStore) -> None:
    percent = store.create(new("100% coverage"))
    underscore = store.create(new("rename snake_case"))
    store.create(new("plain"))
    assert [t.id for t in store.list(q="%")] == [percent.id]
    assert [t.id for t in store.list(q="_")] == [underscore.id]


def test_list_is_oldest_first_and_pages_with_limit_and_offset(store: TaskStore) -> None:
    ids = [store.create(new(f"task {n}")).id for n in range(7)]
    assert [t.id for t in store.list()] == ids
    pages = [store.list(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[t.id for t in page] for page in pages] == [ids[0:3], ids[3:6], ids[6:], []]
    assert len(store.list(limit=1000)) == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 1000; got 0"),
        ({"limit": 1001}, "limit must be an integer from 1 to 1000; got 1001"),
        ({"limit": "10"}, "limit must be an integer from 1 to 1000; got '10'"),
        ({"limit": True}, "limit must be an integer from 1 to 1000; got True"),
        ({"offset": -1}, "offset must be an integer of at least 0; got -1"),
        ({"status": "finished"}, "status must be one of todo, in_progress, done, blocked"),
        ({"priority": "critical"}, "priority must be one of low, medium, high, urgent"),
    ],
)
def test_list_rejects_bad_arguments_with_a_clear_message(
    store: TaskStore, arguments: dict, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        store.list(**arguments)
    assert message in str(caught.value)


def test_in_progress_returns_only_tasks_in_progress(store: TaskStore) -> None:
    tasks = [store.create(new(f"t{n}")) for n in range(4)]
    store.update(tasks[2].id, patch(status="in_progress"))
    store.update(tasks[0].id, patch(status="in_progress"))
    store.update(tasks[1].id, patch(status="done"))
    assert [t.id for t in store.in_progress()] == [tasks[0].id, tasks[2].id]


# -- the database file ---------------------------------------------------------------


def test_database_is_in_wal_mode_with_a_schema_version(store: TaskStore) -> None:
    store.create(new("t"))
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    other.close()


def test_threads_of_one_process_share_the_store_safely(store: TaskStore) -> None:
    created: list[str] = []

    def work(worker: int) -> None:
        for n in range(25):
            created.append(store.create(new(f"{worker}-{n}")).id)
            store.list(limit=5)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.id for t in store.list(limit=1000)) == sorted(created)
    assert len(created) == 200


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def _committing(store: TaskStore) -> bool:
    """A create took its row from the queue and holds the writer (one creating thread)."""
    return not store._queue and store._writer._lock.locked()


def test_a_read_does_not_wait_behind_a_write_in_progress(store: TaskStore) -> None:
    # The server reads tasks on its event loop while executor threads commit: a read
    # must not queue behind a writer's lock (here: a create waiting for the write lock).
    existing = store.create(new("already there"))
    other = hold_write_lock(store.path)
    outcome: list[object] = []
    creator = threading.Thread(target=lambda: outcome.append(store.create(new("blocked"))))
    creator.start()
    try:
        _wait_until(lambda: _committing(store), "the create to start its commit")
        assert store.get(existing.id) == existing
        assert [t.id for t in store.list()] == [existing.id]
        assert creator.is_alive(), "the create should still be waiting for the write lock"
    finally:
        other.execute("ROLLBACK")
        other.close()
        creator.join(timeout=60)
    assert [t.id for t in store.list()] == [existing.id, outcome[0].id]


def test_creates_queued_behind_a_commit_share_the_next_and_a_bad_row_fails_alone(
    store: TaskStore,
) -> None:
    store.create(new("schema in place"))
    refuse_title(store.path, "poison")  # a row SQLite refuses, as a corrupt one
    other = hold_write_lock(store.path)
    results: dict[str, object] = {}

    def create(title: str) -> None:
        try:
            results[title] = store.create(new(title))
        except Exception as exc:
            results[title] = exc

    first = threading.Thread(target=create, args=("first",))
    first.start()
    _wait_until(lambda: _committing(store), "the first create to lead a commit")
    group = [threading.Thread(target=create, args=(t,)) for t in ("a", "poison", "b")]
    for thread in group:
        thread.start()
    _wait_until(lambda: len(store._queue) == 3, "three creates queued behind the first")
    other.execute("ROLLBACK")
    other.close()
    for thread in (first, *group):
        thread.join(timeout=60)
    assert isinstance(results["poison"], TaskStoreError)
    assert "poisoned row" in str(results["poison"])
    stored = {t.title: t for t in store.list(limit=10)}
    assert set(stored) == {"schema in place", "first", "a", "b"}
    for title in ("first", "a", "b"):
        assert stored[title] == results[title]


def test_a_failed_group_commit_fails_every_create_in_it(store: TaskStore) -> None:
    store.create(new("schema in place"))
    store.busy_timeout = 0.3  # the held write lock below outlasts it
    other = hold_write_lock(store.path)
    errors: list[BaseException] = []

    def create(title: str) -> None:
        try:
            store.create(new(title))
        except TaskStoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(f"t{i}",)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(errors) == 4
    assert all("held the task database's write lock" in str(e) for e in errors)
    assert [t.title for t in store.list()] == ["schema in place"]


def _create_in_child(store: TaskStore, results, close_first: bool) -> None:
    # Runs in a forked child that inherited ``store`` with its open connection.
    try:
        if close_first:
            store.close()  # must leave the parent's connection alone
        task = store.create(new("from the child"))
        results.put(("ok", task.id, os.getpid(), len(store.list())))
        store.close()
    except BaseException as exc:  # report, do not hang the parent
        results.put(("error", repr(exc), os.getpid(), 0))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("close_first", [False, True], ids=["use", "close-then-use"])
@pytest.mark.parametrize("mid_create", [False, True], ids=["idle", "fork-mid-create"])
def test_a_forked_child_opens_its_own_connection(
    store: TaskStore, close_first: bool, mid_create: bool
) -> None:
    before = store.create(new("from the parent"))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_create_in_child, args=(store, results, close_first))
    if mid_create:
        # The fork catches another thread of the parent inside a create: its row is
        # queued and the queue's lock held. The child must neither wait on that lock
        # forever nor commit the parent's row.
        store._queue.append(_QueuedRow(_new_record(new("the parent's, queued"))))
        with store._queue_lock:
            child.start()
        store._queue.clear()
    else:
        child.start()
    try:
        outcome, child_task_id, child_pid, child_count = results.get(timeout=60)
    except BaseException:
        child.kill()  # stuck (the failure this test is for): do not leave it behind
        raise
    finally:
        child.join(timeout=60)
    results.close()
    results.join_thread()
    assert outcome == "ok", child_task_id
    assert child_pid != os.getpid() and child.exitcode == 0
    assert child_count == 2
    # The parent's own connection is untouched and sees the child's commit.
    after = store.create(new("parent again"))
    assert [t.id for t in store.list()] == [before.id, child_task_id, after.id]
    assert store.get(child_task_id) is not None
    with sqlite3.connect(store.path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.write_bytes(b"this is a struct.json, not a database\n" * 200)
    with pytest.raises(TaskStoreError, match=r"tasks\.db: not a usable task database"):
        TaskStore(path)
    assert path.read_bytes().startswith(b"this is a struct.json")


def test_a_database_with_a_damaged_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    with TaskStore(path) as store:
        store.create(new("t"))
    data = bytearray(path.read_bytes())
    data[0:16] = b"garbage garbage!"
    path.write_bytes(bytes(data))
    with pytest.raises(TaskStoreError, match="not a usable task database"):
        TaskStore(path)


def test_another_programs_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    with pytest.raises(TaskStoreError, match="not llmstruct's task database"):
        TaskStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    TaskStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(TaskStoreError, match="newer than this llmstruct"):
        TaskStore(path)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaskStoreError, match="cannot open the task database"):
        TaskStore(tmp_path / "missing" / "tasks.db")


def test_an_empty_file_becomes_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.touch()
    with TaskStore(path) as store:
        assert store.list() == []


def test_a_database_with_a_damaged_page_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    with TaskStore(path) as store:
        store.create(new("t"))
    # Closing the last connection checkpointed the WAL: page 2 (the tasks table,
    # created first) is in the main file now.
    page_size = 4096
    data = bytearray(path.read_bytes())
    data[page_size : 2 * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    with pytest.raises(TaskStoreError, match=r"tasks\.db: .*malformed"):
        with TaskStore(path) as store:
            store.list()


def test_a_write_lock_held_too_long_elsewhere_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    with TaskStore(path, busy_timeout=0.2) as store:
        task = store.create(new("before"))
        other = hold_write_lock(path)
        try:
            with pytest.raises(TaskStoreError, match="held the task database's write lock"):
                store.create(new("blocked"))
            # Readers are not blocked by a writer (WAL).
            assert store.list() == [task]
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.create(new("after")).title == "after"


def _open_and_create(path: str, barrier, results) -> None:
    barrier.wait()  # every process opens the brand-new database at the same moment
    try:
        store = TaskStore(path)
        store.create(TaskCreateRequest(title="first"))
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(repr(exc))


def test_several_processes_opening_a_new_database_at_once_all_succeed(tmp_path) -> None:
    # `llmstruct serve --workers N` on a fresh project: every worker creates the
    # database and switches it to WAL at the same time.
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(6), context.Queue()
    path = str(tmp_path / "fresh.db")
    workers = [
        context.Process(target=_open_and_create, args=(path, barrier, results)) for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 6
    assert len(TaskStore(path).list()) == 6


def test_create_many_commits_a_large_group_and_answers_in_order(store: TaskStore) -> None:
    # More rows than one multi-row INSERT takes: the group spans several statements.
    requests = [new(f"bulk {i}", tags=[str(i)], estimated_effort=i % 7) for i in range(1200)]
    answers = store.create_many(requests)
    assert [a.title for a in answers] == [f"bulk {i}" for i in range(1200)]
    assert all(store.get(a.id) == a for a in answers[::97])
    assert len(store.list(limit=1000)) + len(store.list(limit=1000, offset=1000)) == 1200


@pytest.mark.parametrize(
    "stored_time",
    ["2026-01-02T03:04:05.000000Z", "2026-01-02T03:04:05.120000Z", "2026-01-02T03:04:05.123456Z",
     "2026-01-02 03:04:05", "2026-01-02T03:04:05+02:00"],
)  # fmt: skip
def test_get_json_is_what_the_model_dumps(store: TaskStore, stored_time: str) -> None:
    # The server answers reads from get_json: it must equal the model's JSON form for
    # our own timestamps (a zero fraction is dropped, as pydantic does) and others.
    plain = store.create(new("plain"))
    rich = store.create(new("Zürich ☃", description="multi\nline", priority="urgent",
                            tags=["é", "x y", ""], estimated_effort=0))  # fmt: skip
    store.update(rich.id, patch(status="in_progress"))
    with sqlite3.connect(store.path, isolation_level=None) as other:
        other.execute("UPDATE tasks SET created_at = ? WHERE id = ?", (stored_time, plain.id))
    other.close()
    for task_id in (plain.id, rich.id):
        assert store.get_json(task_id) == store.get(task_id).model_dump(mode="json")
    assert store.get_json(str(uuid.uuid4())) is None


def test_get_json_reads_tags_that_orjson_refuses(store: TaskStore) -> None:
    # A lone surrogate is stored as json.dumps escapes it; orjson will not read that back.
    task = store.create(new("odd tag", tags=["\ud800", "ok"]))
    assert store.get_json(task.id)["tags"] == ["\ud800", "ok"] == store.get(task.id).tags


def test_tags_stored_as_json_dumps_wrote_them_read_and_filter_the_same(store: TaskStore) -> None:
    # Databases from before tags were written with orjson hold json.dumps' form
    # (", " between items, non-ASCII escaped): reads and the tag filter see no difference.
    old = store.create(new("old form"))
    fresh = store.create(new("new form", tags=["é", "a b"]))
    with sqlite3.connect(store.path, isolation_level=None) as other:
        other.execute("UPDATE tasks SET tags = ? WHERE id = ?", (json.dumps(["é", "a b"]), old.id))
    other.close()
    assert store.get(old.id).tags == store.get_json(old.id)["tags"] == ["é", "a b"]
    assert {task.id for task in store.list(tag="é")} == {old.id, fresh.id}


def test_create_many_as_json_answers_what_the_model_dumps(store: TaskStore) -> None:
    requests = [new("é ☃", description=None, tags=["a", "é"]), new("b", estimated_effort=5)]
    answers = store.create_many(requests, as_json=True)
    assert [store.get(a["id"]).model_dump(mode="json") for a in answers] == answers


def test_a_group_reports_each_row_as_committed_or_refused(store: TaskStore) -> None:
    # The group fails on a constraint, so each row is retried alone; a later row then
    # fails otherwise (malformed JSON in a trigger): the rows committed alone before it
    # must be reported committed, not failed with it.
    store.create(new("schema in place"))
    refuse_title(store.path, "poison")
    refuse_title(store.path, "explode", "SELECT json_extract('not json', '$')")
    ok, poison, explode = store.create_many([new("ok"), new("poison"), new("explode")])
    assert ok.title == "ok" and store.get(ok.id) == ok
    assert isinstance(poison, TaskStoreError) and "poisoned row" in str(poison)
    assert isinstance(explode, TaskStoreError)
    assert [t.title for t in store.list()] == ["schema in place", "ok"]
    assert store.create_many([]) == []
    [alone] = store.create_many([new("poison")])  # one row: its error, not raised
    assert isinstance(alone, TaskStoreError)


def test_a_create_refused_for_want_of_a_connection_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    store = TaskStore(path)
    store.create(new("before"))
    store.close()
    path.rename(tmp_path / "moved.db")
    path.mkdir()  # the next open fails: a directory where the database was
    with pytest.raises(TaskStoreError):
        store.create(new("refused"))
    path.rmdir()
    (tmp_path / "moved.db").rename(path)
    store.create(new("after"))
    assert [t.title for t in store.list()] == ["before", "after"]
    store.close()


def test_groups_fit_a_build_with_fewer_variables_per_statement(store: TaskStore) -> None:
    # SQLite before 3.32 allows 999 variables per statement: 111 rows of 9 columns.
    with store._writer.use() as conn:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    answers = store.create_many([new(f"row {i}") for i in range(300)])
    assert all(not isinstance(a, BaseException) for a in answers)
    assert len(store.list(limit=1000)) == 300
