"""One SQLite connection of this process, safe to use from threads and across ``fork()``.

SQLite must not use a connection across ``fork()`` (sqlite.org/howtocorrupt.html,
2.6): a child notices the pid change, opens its own connection, and keeps the
inherited one referenced forever, because closing it would run SQLite's close-time
cleanup on the parent's locks and WAL files. Threads of one process take turns
(one lock per connection).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["ProcessConnection"]

# Connections a forked child inherited: referenced here so they are never closed.
_INHERITED: list[sqlite3.Connection] = []
# Guards the reopen after a fork; replaced in the child because another thread of
# the parent may have held it at the moment of the fork.
_REOPEN = threading.Lock()
# This process's pid, kept current by the at-fork hook: every store call checks it,
# and os.getpid() is a system call each time (glibc stopped caching it in 2.25).
_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _REOPEN, _pid
    _REOPEN = threading.Lock()
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ProcessConnection:
    """One SQLite connection of this process, used by one thread at a time.

    After a ``fork()`` the child leaves the inherited connection open and referenced
    (module docstring) and opens its own on first use. ``open_connection`` makes a
    new connection (the caller's settings and checks).
    """

    def __init__(self, open_connection: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_connection
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def use(self) -> ProcessConnection:
        """``with connection.use() as conn:`` the connection, held by this thread.

        The object is its own context manager, not a generator-based one: a server's
        task reads go through here on its event loop (see ``tasks._Using``).
        """
        return self

    def __enter__(self) -> sqlite3.Connection:
        if self._pid != _pid:
            self._reopen()
        self._lock.acquire()
        try:
            if self._conn is None:  # another thread called close() meanwhile
                self._conn = self._open()
                self._pid = os.getpid()
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, *exc_info: object) -> None:
        # The lock __enter__ took: it is only ever replaced in a forked child before
        # any thread of the child has taken it (_reopen, close).
        self._lock.release()

    def close(self) -> None:
        if self._pid not in (-1, os.getpid()):  # the parent's: never closed here
            with _REOPEN:
                # Checked again under the lock: another thread of this process may
                # have reopened it meanwhile, and may be using it (and its new lock).
                if self._pid not in (-1, os.getpid()):
                    self._forget_inherited()
                    return
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            # The pid stays: the next use() opens anew under this same lock, not through
            # the after-fork path, which replaces the lock other threads may wait on.
            self._conn = None

    def _reopen(self) -> None:
        with _REOPEN:
            if self._pid == os.getpid():
                return  # another thread of this process was first
            self._forget_inherited()
            self._conn = self._open()
            self._pid = os.getpid()

    def _forget_inherited(self) -> None:
        # Call with _REOPEN held, in a process that did not open self._conn.
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._conn = None
        self._pid = -1
        # The inherited lock may be held by a thread that does not exist here.
        self._lock = threading.Lock()
