"""The task database: SQLite, shared by every server worker process and the CLI.

Invariants:
- A write returns only after its COMMIT, and a committed write survives a crash of
  the process or the machine: WAL mode with ``synchronous=FULL`` fsyncs the log on
  every commit (``NORMAL`` would be faster and may lose the last commits on power
  loss). A process killed mid-write loses only its unacknowledged transaction.
- Every write is one ``BEGIN IMMEDIATE`` transaction. It takes the write lock before
  reading, so two processes updating the same task serialise instead of one failing:
  a deferred transaction that starts as a reader and upgrades to a writer gets
  SQLITE_BUSY at once in WAL mode, without waiting on ``busy_timeout``. Readers
  never wait for writers (WAL).
- A writer waits for the write lock by retrying ``BEGIN IMMEDIATE`` every
  millisecond or so, up to ``busy_timeout``, not through SQLite's busy handler.
  That handler backs off to one attempt per 100 ms, while a busy writer re-takes
  the lock within microseconds of its COMMIT, so waiters starve: measured with 4
  processes creating tasks flat out for 10 s, single creates waited up to 7.4 s
  and one process made 228 writes to another's 1,232; with the short retries the
  longest wait was 0.1-0.6 s and the shares were within 30%, for a total within
  the run-to-run noise of the disk. ``busy_timeout`` stays set for everything else.
- Two connections per process, each used by one thread at a time under its own
  lock: a writer and a reader. Readers never wait for writers (WAL), so a read
  must not wait for a commit's fsync behind the same connection lock either: the
  server reads tasks on its event loop while executor threads commit. Each is a
  ``store.connection.ProcessConnection``: after a ``fork()`` the child opens its
  own and never touches the parent's (sqlite.org/howtocorrupt.html, 2.6).
- Creates commit in groups: a create that arrives while another transaction holds
  the writer queues its row, and the next writer inserts every queued row in one
  transaction, one fsync for all of them (group commit, as PostgreSQL's
  ``commit_delay`` or InnoDB's binlog group commit, without their wait: a group is
  whatever queued during the previous commit). Each create still returns only
  after the COMMIT that holds its row; a row that breaks a constraint is retried
  alone, so it cannot fail the rows it was grouped with.
- The schema version is ``PRAGMA user_version``; the schema is created, or migrated,
  on first use inside a write transaction, so concurrent first users do it once.
- Ids are UUID4 strings; timestamps are fixed-width ISO-8601 UTC text (so they sort
  as text); tags are a JSON array. ``updated_at`` strictly increases on every update
  even if the clock does not.

Anything that makes the file unusable (not SQLite, corrupt, a newer schema, another
program's database) is a ``TaskStoreError`` with a message fit for the user.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import random
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from llmstruct.api.models import (
    LIST_LIMIT_MAX,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TaskCreateRequest,
    TaskResponse,
    TaskUpdateRequest,
)
from llmstruct.store.connection import ProcessConnection

SCHEMA_VERSION = 1
DEFAULT_NAME = "tasks.db"
DEFAULT_BUSY_TIMEOUT_S = 10.0
# Longest pause between two attempts at the write lock (see the module docstring).
_WRITE_RETRY_S = 0.001

# Statements that bring the schema from version N-1 to N, keyed by N.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        f"""
        CREATE TABLE tasks (
            id               TEXT PRIMARY KEY,
            title            TEXT NOT NULL,
            description      TEXT,
            status           TEXT NOT NULL CHECK (status IN {TASK_STATUSES!r}),
            priority         TEXT NOT NULL CHECK (priority IN {TASK_PRIORITIES!r}),
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL,
            tags             TEXT NOT NULL CHECK (json_valid(tags)),
            estimated_effort INTEGER
        )
        """,
        "CREATE INDEX tasks_by_created ON tasks (created_at, id)",
        "CREATE INDEX tasks_by_status ON tasks (status, created_at, id)",
    ),
}

_COLUMNS = (
    "id, title, description, status, priority, created_at, updated_at, tags, estimated_effort"
)
_SELECT_BY_ID = f"SELECT {_COLUMNS} FROM tasks WHERE id = ?"
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII)
_COLUMN_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))
# Rows per multi-row INSERT, at most: 9 parameters each, under SQLite's 32,766 per
# statement (fewer where the build allows fewer: 999 before SQLite 3.32).
_ROWS_PER_INSERT = 500
_INSERT = (
    f"INSERT INTO tasks ({_COLUMNS}) VALUES (:id, :title, :description, :status, :priority,"
    " :created_at, :updated_at, :tags, :estimated_effort)"
)
_SEARCH = (
    "(instr(llmstruct_fold(title), :q) > 0"
    " OR instr(llmstruct_fold(coalesce(description, '')), :q) > 0)"
)
_HAS_TAG = "EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.value = :tag)"


class TaskStoreError(Exception):
    """The task database cannot be opened or used."""


# This process's stores. A forked child gets a fresh create queue in each: the rows
# queued are the parent's threads' to commit (and are answered there), and the
# queue's lock may have been held at the fork by a thread the child does not have.
_STORES: weakref.WeakSet[TaskStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._queue = []
        store._queue_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class TaskStore:
    """Tasks in the SQLite database at ``path``, created on first use."""

    def __init__(self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._busy_ms = int(busy_timeout * 1000)
        self._writer = ProcessConnection(self._open)
        self._reader = ProcessConnection(self._open)
        # ``with self._reading as conn``: each connection held by the calling thread,
        # SQLite's errors as TaskStoreError (stateless, so one of each serves all threads).
        self._reading = _Using(self.path, self._reader)
        self._writing = _Using(self.path, self._writer)
        self._queue: builtins.list[_QueuedRow] = []  # creates waiting for a group commit
        self._queue_lock = threading.Lock()
        _STORES.add(self)  # a forked child starts the queue afresh (_after_fork_in_child)
        # Open now: a bad path or file is an error at start-up, not on the first request
        # (nor a reader's first open, with its set-up retries, on a server's event loop).
        with self._writing:
            pass
        with self._reading:
            pass

    # -- public API --------------------------------------------------------------

    def create(self, request: TaskCreateRequest | Mapping[str, Any]) -> TaskResponse:
        """Store a new ``todo`` task; returns it once committed."""
        if not isinstance(request, TaskCreateRequest):
            request = TaskCreateRequest.model_validate(request)
        queued = _QueuedRow(_new_record(request))
        self._insert_in_group([queued])
        if queued.error is not None:
            raise queued.error
        return _task(queued.record)

    def create_many(
        self, requests: builtins.list[TaskCreateRequest], *, as_json: bool = False
    ) -> builtins.list[Any]:
        """Store several new tasks in one group commit (fewer if other threads' creates
        join it); per request, its task once committed (``as_json``: its JSON form, as
        ``get_json``) or the error that refused it.

        For a caller that collects creates itself, such as a server's event loop: one
        thread call per group instead of one per create.
        """
        group = [_QueuedRow(_new_record(request)) for request in requests]
        if group:
            self._insert_in_group(group)
        answer = _task_json if as_json else _task
        return [answer(q.record) if q.error is None else q.error for q in group]

    def get(self, task_id: str) -> TaskResponse | None:
        row = self._row(task_id)
        return None if row is None else _task(row)

    def get_json(self, task_id: str) -> dict[str, Any] | None:
        """``get(task_id).model_dump(mode="json")`` without building the model: a server
        answers task reads from it (validation is for rows coming in, not going out)."""
        row = self._row(task_id)
        return None if row is None else _task_json(row)

    def _row(self, task_id: str) -> sqlite3.Row | None:
        with self._reading as conn:
            return conn.execute(_SELECT_BY_ID, (task_id,)).fetchone()

    def update(
        self, task_id: str, request: TaskUpdateRequest | Mapping[str, Any]
    ) -> TaskResponse | None:
        """Change the fields the request sets (PATCH); None if there is no such task.

        ``updated_at`` moves on every call, even one that sets nothing.
        """
        if not isinstance(request, TaskUpdateRequest):
            request = TaskUpdateRequest.model_validate(request)
        changes = request.model_dump(include=request.model_fields_set)
        if "tags" in changes:
            changes["tags"] = _dump_tags(changes["tags"])
        with self._write() as conn:
            row = conn.execute(_SELECT_BY_ID, (task_id,)).fetchone()
            if row is None:
                return None
            record = {**dict(row), **changes}
            # Strictly after the previous value, so "changed since" never misses an
            # update made in the same clock tick or after the clock stepped back.
            previous = datetime.fromisoformat(row["updated_at"])
            record["updated_at"] = _timestamp(max(_now(), previous + timedelta(microseconds=1)))
            conn.execute(
                "UPDATE tasks SET title = :title, description = :description, status = :status,"
                " priority = :priority, updated_at = :updated_at, tags = :tags,"
                " estimated_effort = :estimated_effort WHERE id = :id",
                record,
            )
        return _task(record)

    def delete(self, task_id: str) -> bool:
        """Remove a task; False if there was none."""
        with self._write() as conn:
            return conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount > 0

    def list(
        self,
        status: str | None = None,
        priority: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[TaskResponse]:
        """Tasks matching every filter given, oldest first (``created_at``, then id).

        ``q`` is a case-insensitive substring of the title or the description;
        ``tag`` must be one of the task's tags exactly. Raises ValueError for a
        status or priority outside the contract, ``limit`` outside 1..1000 or a
        negative ``offset``.
        """
        _check_choice("status", status, TASK_STATUSES)
        _check_choice("priority", priority, TASK_PRIORITIES)
        _check_int("limit", limit, 1, LIST_LIMIT_MAX)
        _check_int("offset", offset, 0, None)
        where = []
        if status is not None:
            where.append("status = :status")
        if priority is not None:
            where.append("priority = :priority")
        if tag is not None:
            where.append(_HAS_TAG)
        if q is not None:
            where.append(_SEARCH)
        sql = f"SELECT {_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id LIMIT :limit OFFSET :offset"
        params = {
            "status": status,
            "priority": priority,
            "tag": tag,
            "q": None if q is None else q.casefold(),
            "limit": limit,
            # SQLite integers are 64-bit (a larger one is an OverflowError); an offset
            # past 2**63 - 1 skips every row, as that one does.
            "offset": min(offset, 2**63 - 1),
        }
        with self._reading as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_task(row) for row in rows]

    def in_progress(self) -> builtins.list[TaskResponse]:
        """Every task whose status is ``in_progress``, oldest first (for SESSION context)."""
        with self._reading as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM tasks WHERE status = 'in_progress' ORDER BY created_at, id"
            ).fetchall()
        return [_task(row) for row in rows]

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        self._reader.close()
        self._writer.close()

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connection and transactions ---------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed before the block's caller returns."""
        with self._writing as conn, self._transaction(conn):
            yield conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._begin_immediate(conn)
        try:
            yield
            self._commit(conn)
        except BaseException:
            # SQLite may already have rolled back (disk full, I/O error).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _insert_in_group(self, rows: builtins.list[_QueuedRow]) -> None:
        """Insert ``rows`` (one or more); return once COMMITs hold them, each row's
        failure in its ``error`` (module docstring: group commit)."""
        with self._queue_lock:
            self._queue.extend(rows)
        leading = False
        try:
            with self._writing as conn:
                if not rows[-1].done:  # no group took them while this thread waited: lead
                    with self._queue_lock:
                        group, self._queue = self._queue, []
                    leading = True
                    self._commit_group(conn, group)
        except BaseException:
            if leading:
                raise  # the group's rows have their errors; this one stops the caller
            # No connection (it could not be opened): rows still queued must not be
            # committed by a later group after this caller was told they failed.
            with self._queue_lock:
                still_queued = any(row is rows[0] for row in self._queue)
                if still_queued:
                    self._queue = [q for q in self._queue if not any(q is r for r in rows)]
            if still_queued:
                raise
            self._await_leader(rows[-1])  # another thread's group has them: its outcome

    def _await_leader(self, last: _QueuedRow) -> None:
        """Wait for the group another thread took ``last`` into (its commit is under way)."""
        deadline = time.monotonic() + self.busy_timeout + 1
        while not last.done:
            if time.monotonic() >= deadline:
                raise TaskStoreError(f"{self.path}: a group commit did not finish in time")
            time.sleep(0.001)

    def _commit_group(self, conn: sqlite3.Connection, group: builtins.list[_QueuedRow]) -> None:
        try:
            try:
                with self._transaction(conn):
                    # Few statements, many rows each: every statement is a trip out of the
                    # GIL and back, which on a busy server's process waits on its event
                    # loop thread (up to sys.getswitchinterval(), 5 ms, per trip).
                    # At most SQLite's variables per statement (999 before SQLite 3.32).
                    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                    per_insert = max(1, min(_ROWS_PER_INSERT, limit // len(_COLUMN_NAMES)))
                    for start in range(0, len(group), per_insert):
                        rows = group[start : start + per_insert]
                        values = [row.record[column] for row in rows for column in _COLUMN_NAMES]
                        conn.execute(_insert_rows(len(rows)), values)
            except sqlite3.IntegrityError:
                if len(group) == 1:
                    raise
                for queued in group:  # find the row at fault: each alone
                    try:
                        with self._transaction(conn):
                            conn.execute(_INSERT, queued.record)
                        queued.committed = True
                    except sqlite3.IntegrityError as exc:
                        queued.error = _store_error(self.path, exc)
        except BaseException as exc:
            error = _store_error(self.path, exc) if isinstance(exc, sqlite3.Error) else exc
            for queued in group:
                if queued.error is None and not queued.committed:
                    queued.error = error if len(group) == 1 else _shared_failure(error)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like: the leader stops, the group has failed
        finally:
            for queued in group:
                queued.done = True

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.busy_timeout
        conn.execute("PRAGMA busy_timeout = 0")  # fail at once; we retry (module docstring)
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                if time.monotonic() >= deadline:
                    raise TaskStoreError(
                        f"{self.path}: another process held the task database's write lock"
                        f" for over {self.busy_timeout:g} s"
                    )
                # Random, so waiting processes do not retry in lockstep.
                time.sleep(random.uniform(0, _WRITE_RETRY_S))
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def _commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def _set_up(self, conn: sqlite3.Connection) -> None:
        """WAL mode and schema. Several workers opening a new database at once race
        for the switch to WAL, which SQLite answers "database is locked" at once,
        without its busy handler; so retry that until the busy timeout."""
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                _setup_once(conn, self.path)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _open(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; _write issues its own.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise TaskStoreError(f"{self.path}: cannot open the task database ({exc})") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            self._set_up(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise TaskStoreError(
                f"{self.path}: not a usable task database ({exc}); move it away to start afresh"
            ) from None
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        conn.create_function("llmstruct_fold", 1, _fold, deterministic=True)
        return conn


def _setup_once(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise TaskStoreError(
            f"{path}: the task database needs WAL mode, got {mode!r}"
            " (a network filesystem or in-memory path?)"
        )
    conn.execute("PRAGMA synchronous = FULL")
    _migrate(conn, path)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return  # the common case, without taking the write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the lock: another process may have just done it.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise TaskStoreError(
                f"{path}: task database schema {version} is newer than this llmstruct"
                f" (schema {SCHEMA_VERSION}); upgrade llmstruct"
            )
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise TaskStoreError(f"{path}: an SQLite database, but not llmstruct's task database")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _QueuedRow:
    """A create's row waiting for a group commit, and that commit's outcome for it."""

    __slots__ = ("record", "done", "error", "committed")

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.done = False
        self.error: BaseException | None = None
        self.committed = False  # committed alone (the retry after a constraint error)


class _Using:
    """``TaskStore._reading``/``_writing``: a connection held by this thread, SQLite's
    errors inside the block raised as ``TaskStoreError``. A class, not a generator
    context manager: a server's task reads come through here on its event loop, and a
    generator would cost a third of the query."""

    __slots__ = ("_path", "_connection")

    def __init__(self, path: Path, connection: ProcessConnection) -> None:
        self._path = path
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self._connection.__enter__()

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        self._connection.__exit__(kind, exc, traceback)
        if isinstance(exc, sqlite3.DatabaseError):
            raise _store_error(self._path, exc) from exc


def _store_error(path: Path, exc: sqlite3.Error) -> TaskStoreError:
    error = TaskStoreError(f"{path}: task database error ({exc})")
    error.__cause__ = exc
    return error


def _shared_failure(error: BaseException) -> TaskStoreError:
    """The error of one create whose group failed: its own object, raised in its own thread."""
    shared = TaskStoreError(str(error))
    shared.__cause__ = error
    return shared


@functools.lru_cache(maxsize=64)
def _insert_rows(count: int) -> str:
    row = "(" + ", ".join("?" * len(_COLUMN_NAMES)) + ")"
    return f"INSERT INTO tasks ({_COLUMNS}) VALUES " + ", ".join([row] * count)


def _new_record(request: TaskCreateRequest) -> dict[str, Any]:
    now = _timestamp(_now())
    return {
        "id": str(uuid.uuid4()),
        "title": request.title,
        "description": request.description,
        "status": "todo",
        "priority": request.priority,
        "created_at": now,
        "updated_at": now,
        "tags": _dump_tags(request.tags),
        "estimated_effort": request.estimated_effort,
    }


def _task(row: Mapping[str, Any]) -> TaskResponse:
    return TaskResponse.model_validate({**dict(row), "tags": json.loads(row["tags"])})


def _task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """``_task(row).model_dump(mode="json")``, without the model for our own rows."""
    created, updated = row["created_at"], row["updated_at"]
    if not (_is_stored_time(created) and _is_stored_time(updated)):
        return _task(row).model_dump(mode="json")  # not our own format: the model decides
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "priority": row["priority"],
        "created_at": _json_time(created),
        "updated_at": _json_time(updated),
        "tags": _tags(row["tags"]),
        "estimated_effort": row["estimated_effort"],
    }


def _dump_tags(tags: builtins.list[str]) -> str:
    """Tags as stored: a JSON array (orjson at a tenth of json's cost; json for what
    orjson refuses, a lone surrogate, which json escapes)."""
    try:
        return orjson.dumps(tags).decode()
    except orjson.JSONEncodeError:
        return json.dumps(tags)


def _tags(stored: str) -> Any:
    """The stored tags (``_dump_tags``, or ``json.dumps`` before it: the same array).
    orjson reads them in a tenth of json's time; what it refuses and json reads (a
    lone surrogate escape) goes to json."""
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError:
        return json.loads(stored)


def _is_stored_time(text: object) -> bool:
    """``text`` is in ``_timestamp``'s fixed-width form, 2026-11-27T21:00:00.000000Z."""
    return isinstance(text, str) and _STORED_TIME.fullmatch(text) is not None


def _json_time(stored: str) -> str:
    """A stored timestamp as pydantic writes the datetime: no fraction when it is zero."""
    return stored[:19] + "Z" if stored.endswith(".000000Z") else stored


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    # Fixed width (timespec: isoformat() would drop ".000000"), so text order is time
    # order; isoformat, not strftime, at half the cost: every create writes two.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _fold(text: str | None) -> str | None:
    # SQLite's lower() folds ASCII only; search must match "Ärger" with "ärger".
    return None if text is None else text.casefold()


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    valid = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not valid or (high is not None and value > high):  # type: ignore[operator]
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{name} must be an integer {bounds}; got {value!r}")
