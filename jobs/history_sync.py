"""Copy fail2ban's ban rows into the archive, incrementally: the body of the history sync job (issue 5).

fail2ban keeps a ban's row only until the IP is unbanned or `dbpurgeage` (1 day by default) passes; this job
copies every row into bangui's archive before that happens. It is a plain synchronous function: the scheduler
runs it in a thread, on the elected leader only.

Contracts:
- fail2ban's database is opened read-only (`mode=ro`); bangui never writes it.
- Incremental per jail, by `timeofban`: fail2ban writes rows out of `timeofban` order (timeofban is the time of
  the last *failure*, which may be minutes older than the ban; bans pass through a queue when bantime.increment
  is on), and it reuses rowids after deleting the newest rows (unban), so neither rowid nor a plain
  "timeofban > mark" can be trusted. Each run re-reads `timeofban >= mark - lookback`; the archive's unique key
  makes the re-read rows no-ops. Rows written more than `lookback` late are still caught while the ban is
  current, through `bips`.
- Marks are keyed by the database file's identity (path, device, inode) and checked against its header's change
  counter, so a fail2ban that starts over with a fresh database (even one that got the old inode) is read from
  its beginning; what the archive already holds is untouched.
- `database is locked` (fail2ban writes in rollback-journal mode): retried with backoff, then the run stops with
  status "locked"; batches committed before that keep their marks, the rest is read next run.
- `still_leader()` is asked before every commit; on False the batch is rolled back and the run stops ("fenced").
- `data` may be JSON null, malformed or of an unexpected shape: the row is kept, without failures/matches.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from store.history import Archive, PreparedBans

log = logging.getLogger("bangui.jobs.history_sync")

BATCH = 100_000
LOOKBACK_S = 3600.0
RETRIES = 5
BACKOFF_S = 0.05
# Rows as Archive.prepare_bans takes them (jail, ip, timeofban, bantime, bancount, data), then rowid. Types are
# checked here, in C: anything odd (a NULL ip, a text bantime) becomes NULL or skips the row. fail2ban 1.0.2
# writes `data` as a BLOB of UTF-8 JSON: it is archived as text (invalid JSON is decoded to nothing on read).
_COLUMNS = ("jail, ip, timeofban, CASE typeof(bantime) WHEN 'integer' THEN bantime END, "
            "CASE typeof(bancount) WHEN 'integer' THEN bancount END, "
            "CASE typeof(data) WHEN 'text' THEN data WHEN 'blob' THEN CAST(data AS TEXT) END, rowid")
_ROW_OK = "jail IS NOT NULL AND ip IS NOT NULL AND typeof(timeofban) IN ('integer', 'real') AND "
_ALL_JAILS = "*"  # the single mark of the `bips` source covers every jail
_COUNTER = "#change-counter"  # a pseudo-jail of the bans source: see _change_counter
_BEFORE_ALL = -(2.0**62)


class SyncError(Exception):
    """fail2ban's database cannot be read (missing, unreadable, or not a fail2ban database)."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    rows_read: int
    inserted: int
    merged: int
    status: str  # "ok" | "locked" (gave up on fail2ban's lock) | "fenced" (lost leadership)
    seconds: float


class _Locked(Exception):
    pass


class _Fenced(Exception):
    pass


def sync_once(archive: Archive, fail2ban_db_path: str, still_leader: Callable[[], bool] = lambda: True,
              batch: int = BATCH, lookback: float = LOOKBACK_S, retries: int = RETRIES,
              sleep: Callable[[float], None] = time.sleep) -> SyncResult:
    """Copy the rows of fail2ban's `bans` and `bips` tables that are new since the last run into `archive`.

    Raises SyncError when the database is missing or is not fail2ban's; `sqlite3.Error` from the archive
    propagates (the scheduler logs it and retries next run).
    """
    started = time.monotonic()
    identity = _identity(fail2ban_db_path)
    marks = {table: archive.sync_marks(f"{table}:{identity}") for table in ("bans", "bips")}
    counter = _change_counter(fail2ban_db_path)
    seen = marks["bans"].pop(_COUNTER, None)
    if counter is not None and seen is not None and counter < seen:
        # A new file that got the old one's inode (common after delete + create): its marks mean nothing.
        log.info("fail2ban's database %s was replaced; reading it from the start", fail2ban_db_path)
        for table in marks:
            archive.reset_marks(f"{table}:{identity}")
        marks = {"bans": {}, "bips": {}}
    plan = _Plan(fail2ban_db_path, identity, batch, lookback, retries, sleep, marks, counter)
    counts = _Counts()
    status = "ok"
    # Measured: a helper thread reading ahead did not help (the GIL hand-over between the reader's Python
    # and SQLite's per-row re-acquire serialised them), so reading and writing simply alternate.
    try:
        for marks_now, prepared, rows in _read_batches(plan, archive):
            result = archive.import_bans(prepared, marks_now, commit_if=still_leader)
            if result is None:
                raise _Fenced
            counts.read += rows
            counts.inserted += result.inserted
            counts.merged += result.merged
    except _Locked:
        status = "locked"
        log.warning("fail2ban's database %s stayed locked; the history sync resumes next run", fail2ban_db_path)
    except _Fenced:
        status = "fenced"
        log.info("history sync stopped before a commit: this process is no longer the leader")
    return SyncResult(counts.read, counts.inserted, counts.merged, status, time.monotonic() - started)


@dataclass(slots=True)
class _Counts:
    read: int = 0
    inserted: int = 0
    merged: int = 0


@dataclass(frozen=True, slots=True)
class _Plan:
    path: str
    identity: str
    batch: int
    lookback: float
    retries: int
    sleep: Callable[[float], None]
    marks: dict[str, dict[str, float]]  # table -> {jail: hwm}
    counter: int | None  # the database header's change counter when the run started


def _identity(path: str) -> str:
    """Path, device and inode: a fresh database file (fail2ban started over) gets marks of its own."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SyncError(f"fail2ban's database {path} cannot be read: {exc.strerror}") from None
    return f"{os.path.realpath(path)}|{st.st_dev}|{st.st_ino}"


def _change_counter(path: str) -> int | None:
    """The "file change counter" of an SQLite header (bytes 24-27): every write transaction of a rollback-journal
    database (fail2ban's) increments it, so a smaller value than last run's means a different file."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(28)
    except OSError:
        return None
    return int.from_bytes(header[24:28], "big") if len(header) == 28 else None


def _read_batches(plan: _Plan, archive: Archive
                  ) -> Iterator[tuple[dict[tuple[str, str], float], PreparedBans, int]]:
    """(new marks, prepared rows, rows read) per batch: each jail of `bans`, then all of `bips`."""
    reader = _Reader(plan.path, plan.retries, plan.sleep)
    try:
        tables = reader.tables()
        if "bans" not in tables:
            raise SyncError(f"{plan.path} has no 'bans' table: it is not a fail2ban database")
        scans: list[tuple[str, str | None]] = [("bans", jail) for jail in reader.jails()]
        if "bips" in tables:  # current bans: catches rows purged from `bans` (or written late) while still banned
            scans.append(("bips", None))
        for table, jail in scans:
            mark_jail = jail if jail is not None else _ALL_JAILS
            known = plan.marks[table].get(mark_jail)
            start = _BEFORE_ALL if known is None else known - plan.lookback
            for rows in _scan(reader, table, jail, start, plan.batch):
                # Odd rows were filtered out by the query; `rows` ends with the batch's last good row.
                marks = {(f"{table}:{plan.identity}", mark_jail): float(rows[-1][2])}
                if plan.counter is not None:
                    marks[(f"bans:{plan.identity}", _COUNTER)] = float(plan.counter)
                yield marks, archive.prepare_bans(rows), len(rows)
    finally:
        reader.close()


def _scan(reader: _Reader, table: str, jail: str | None, start: float, batch: int) -> Iterator[list[Any]]:
    """Rows of one jail of `bans` (or all of `bips`) with timeofban >= start, in keyset batches of
    (timeofban, rowid) so that rows sharing one second are never skipped between batches."""
    where, params = ("jail = ? AND ", [jail]) if jail is not None else ("", [])
    sql = (f"SELECT {_COLUMNS} FROM {table} WHERE {where}{_ROW_OK}"
           "timeofban >= ? AND (timeofban > ? OR rowid > ?) ORDER BY timeofban, rowid LIMIT ?")
    last_time, last_rowid = start, -1
    while True:
        rows = reader.run(sql, [*params, last_time, last_time, last_rowid, batch])
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last_time, last_rowid = rows[-1][2], rows[-1][6]


class _Reader:
    """A read-only connection to fail2ban's database that retries while fail2ban holds its write lock."""

    def __init__(self, path: str, retries: int, sleep: Callable[[float], None]) -> None:
        self.path, self.retries, self.sleep = path, retries, sleep
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        # A short busy timeout per attempt: our own backoff decides how long a run waits in total.
        self.conn = sqlite3.connect(uri, uri=True, timeout=0.1, isolation_level=None)
        # Each jail's rows are spread over the whole table: read it through a memory map rather than one
        # pread() per page visit (measured: a third of the sync's time went to those syscalls).
        self.conn.execute(f"PRAGMA mmap_size = {1 << 30}")

    def run(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for attempt in range(self.retries + 1):
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                message = str(exc).lower()
                if "locked" not in message and "busy" not in message:
                    raise SyncError(f"fail2ban's database {self.path} cannot be read: {exc}") from None
                if attempt < self.retries:
                    self.sleep(BACKOFF_S * 2**attempt)
            except sqlite3.DatabaseError as exc:  # "file is not a database" and friends
                raise SyncError(f"fail2ban's database {self.path} cannot be read: {exc}") from None
        raise _Locked

    def tables(self) -> set[str]:
        return {name for (name,) in self.run("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def jails(self) -> list[str]:
        """Distinct jails of `bans`, one index seek each (fail2ban indexes bans(jail, timeofban))."""
        found: list[str] = []
        row = self.run("SELECT min(jail) FROM bans")
        while row and row[0][0] is not None:
            found.append(row[0][0])
            row = self.run("SELECT min(jail) FROM bans WHERE jail > ?", (found[-1],))
        return found

    def close(self) -> None:
        self.conn.close()

