"""Has an SQLite database in WAL mode changed? Asked of shared memory, with no system call.

Every connection to a WAL database maps its ``-shm`` file, whose first 96 bytes are
two copies of the wal-index header (sqlite.org/walformat.html, "The WAL-Index
Header"): the change counter, the last valid frame, the salts and checksums. A
writer rewrites both at each commit, the second copy first, and readers trust the
header only when both copies are equal. The same test here gives a *stamp*: equal
stamps, no commit by any process in between; no stamp (None) while a commit is
being published or the header cannot be read.

Asking SQLite instead (``PRAGMA data_version``, or any query) starts a read
transaction: two fcntl(2) calls on the -shm file, most of a task read by id on a
server's event loop. ``TaskStore`` keys its read cache on the stamp.

The mapping is made per connection and only while that connection is open: an open
connection holds the -shm file's dead-man-switch lock, so no other process deletes
or recreates the file under it (a file remade after the last connection closed
would leave an old mapping frozen on a stale header).
"""

from __future__ import annotations

import mmap
import os
import sqlite3
from pathlib import Path

__all__ = ["WalIndexHeader", "stamp_of"]

HEADER = 48  # bytes of one copy of the wal-index header
IS_INIT = 12  # offset of isInit: u32 iVersion, u32 unused, u32 iChange, then u8 isInit


def stamp_of(first_96: bytes) -> bytes | None:
    """The header if its two copies agree and it is initialised, else None."""
    first, second = first_96[:HEADER], first_96[HEADER : 2 * HEADER]
    if len(second) != HEADER or first != second or not first[IS_INIT]:
        return None
    return first


class WalIndexHeader:
    """``stamp(conn)``: the database's wal-index header as seen by open ``conn``."""

    def __init__(self, database: Path | str) -> None:
        self._shm_path = f"{os.fspath(database)}-shm"
        self._owner: sqlite3.Connection | None = None  # the connection the map belongs to
        self._map: mmap.mmap | None = None

    def stamp(self, conn: sqlite3.Connection) -> bytes | None:
        """Call with ``conn`` open and used by the calling thread alone. A new
        connection (after a close or a fork) gets a new mapping."""
        if conn is not self._owner:
            self._remap(conn)
        mapped = self._map
        if mapped is None:
            return None
        try:
            return stamp_of(mapped[: 2 * HEADER])
        except ValueError:  # closed by another thread's close(): ask SQLite this time
            return None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map = self._owner = None

    def _remap(self, conn: sqlite3.Connection) -> None:
        self.close()
        self._owner = conn
        try:
            fd = os.open(self._shm_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # no -shm file (not in WAL mode yet): no stamps, every read asks SQLite
        try:
            if os.fstat(fd).st_size >= 2 * HEADER:
                self._map = mmap.mmap(fd, 2 * HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            self._map = None
        finally:
            os.close(fd)
