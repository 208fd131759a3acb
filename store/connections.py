"""One SQLite connection per thread and per process, for the store's own SQLite files (history, audit).

SQLite connections must not cross threads, nor forks. A connection inherited through a fork is abandoned: kept
referenced forever so that the child never closes it (closing would release the parent's POSIX locks on the
file), and the child opens its own. Empty under spawn (hypercorn's workers).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable

_ABANDONED: list[sqlite3.Connection] = []


class PerThread:
    def __init__(self, open_conn: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_conn
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again in a forked child)."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if conn is not None:
            _ABANDONED.append(conn)
        conn = self._open()
        local.conn, local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread-local objects are collected)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
