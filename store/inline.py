"""Short SQLite writes on the event loop's own thread when they cannot wait, else in a worker thread (issue 13).

A ban answers only after its history row and its audit entry are written (read-your-writes). Each write is a
fraction of a millisecond, but handing it to a worker thread costs a thread wake-up and two GIL hand-overs, which
on a loaded 2-core host was most of the time a ban took. `write(nowait, func, *args)` therefore first runs `func`
inline on a connection of the calling thread that never waits:

- its busy timeout is 0: if another connection (a worker, the leader's sync, the CLI) holds the write lock,
  `BEGIN IMMEDIATE` fails at once, the transaction rolls back and the same call goes to `offload` (where waiting
  is fine). A lock wait never stalls the loop;
- it never checkpoints (`wal_autocheckpoint = 0`): a checkpoint copies pages into the database file and syncs
  it. Every `OFFLOAD_EVERY`-th write goes through a worker thread instead, whose ordinary connection checkpoints
  as usual, so the WAL stays as small as before.

In WAL mode with `synchronous = NORMAL` a commit is a write into the WAL with no fsync: the inline path does no
disk sync. Only small writes belong here (one audit entry, a few history events); bulk work stays in `offload`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from store.base import offload
from store.connections import PerThread
from store.faults import translated

T = TypeVar("T")
OFFLOAD_EVERY = 8  # write-ahead doubled audit writes (pending + completion): at 16 the WALs outgrew a 3 MiB disk


class WouldBlock(Exception):
    """The write would have waited for SQLite's lock (or is due to checkpoint): run it in a worker thread."""


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc) or getattr(exc, "sqlite_errorcode", 0) & 0xFF in (5, 6))


class NoWait:
    """The no-wait connections of one SQLite file, per thread. `open_conn` opens an ordinary connection of the
    file (with its usual pragmas); while `with nowait():` is active in a thread, the owner's `_conn()` returns
    `nowait.conn()` instead."""

    def __init__(self, open_conn: Callable[[], sqlite3.Connection]) -> None:
        self._connections = PerThread(lambda: _no_wait(open_conn()))
        self._local = threading.local()
        self._writes = 0

    def active(self) -> bool:
        return bool(getattr(self._local, "on", False))

    def conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self._writes += 1
        if self._writes % OFFLOAD_EVERY == 0:
            raise WouldBlock("checkpoint turn")
        self._local.on = True
        try:
            yield
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise WouldBlock(str(exc)) from None
            raise
        finally:
            self._local.on = False


def _no_wait(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("PRAGMA busy_timeout = 0")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


async def write(nowait: NoWait, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` inline through `nowait`'s connection if it needs no lock wait, else `offload`ed. `func` must
    be one transaction (a WouldBlock rolled it back, so running it again is safe). Storage faults are translated
    as `offload` does."""
    try:
        with nowait():
            return func(*args)
    except WouldBlock:
        pass
    except Exception as exc:
        error = translated(exc)
        if error is None:
            raise
        raise error from None
    return await offload(func, *args)
