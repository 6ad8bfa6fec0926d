"""What another process can do to a task database, for the task store's and the
server's group-commit tests: hold its write lock, or make SQLite refuse some rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

POISON = "SELECT RAISE(ABORT, 'poisoned row')"  # a constraint error, as a corrupt row gets


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as the store can tell: the write lock, held
    until the caller rolls back."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def refuse_title(path: Path, title: str, action: str = POISON) -> None:
    """A trigger that runs ``action`` (by default: a constraint error) for every row
    inserted with ``title``."""
    with sqlite3.connect(path, isolation_level=None) as setup:
        setup.execute(
            f"CREATE TRIGGER refuse_{title} BEFORE INSERT ON tasks WHEN NEW.title = '{title}'"
            f" BEGIN {action}; END"
        )
    setup.close()
