"""Copy fail2ban's ban rows into the archive, incrementally (issue 5). The store owns this SQL; the leader's
`history_sync` job (jobs/archive.py) calls `sync_once` in a thread, on the elected leader only.

fail2ban keeps a ban's row only until the IP is unbanned or `dbpurgeage` (1 day by default) passes; this copies
every row into bangui's archive before that happens.

Contracts:
- fail2ban's database is opened read-only (`mode=ro`); bangui never writes it. It is attached to the archive's
  import session for each read, so a batch is copied by one INSERT ... SELECT into a staging table (no Python
  per row), and fail2ban's database is read-locked only while that statement runs, never during the archive's
  write transaction (it is detached by then).
- Only what is new (issue 20 item 4): a database whose header change counter equals the one of the last
  complete run is not read at all. Otherwise `bans` rows above the rowid mark of the last complete run are read
  (fail2ban writes rows out of `timeofban` order: timeofban is the time of the last *failure*, so a time mark
  cannot be trusted; a new row always gets max(rowid) + 1). fail2ban reuses rowids after deleting the newest
  rows (unban): when the largest rowid fell below the mark, that run falls back to re-reading each jail from its
  time mark minus `lookback` plus all of `bips` (as the first run does), and rows that reused rowids between
  two runs are found among the current bans by the reconcile.
- Every complete run ends with a reconcile (store/history_reconcile.py): the archive's open bans are made to
  agree with fail2ban's current ones (restored bans open again, lifted ones closed), in one transaction that
  also marks the change counter.
- Marks are keyed by the database file's identity (path, device, inode) and checked against its header's change
  counter, so a fail2ban that starts over with a fresh database (even one that got the old inode) is read from
  its beginning; what the archive already holds is untouched.
- `database is locked` (fail2ban writes in rollback-journal mode): retried with backoff, then the run stops with
  status "locked"; batches committed before that keep their marks, the rest is read next run.
- `still_leader()` is asked before every commit; on False the batch is rolled back and NotLeader is raised.
- `data` may be JSON null, malformed or of an unexpected shape: the row is kept, without failures/matches.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from store.history import Archive
from store.history_import import SOURCE, ImportSession
from store.history_reconcile import Reconciled
from store.leader import NotLeader

log = logging.getLogger("bangui.history.sync")

BATCH = 100_000
LOOKBACK_S = 3600.0
RETRIES = 5
BACKOFF_S = 0.05
# Rows as Archive.import_bans takes them (jail, ip, timeofban, bantime, bancount, data), then rowid. Types are
# checked here, in C: anything odd (a NULL ip, a text bantime) becomes NULL or skips the row. fail2ban 1.0.2
# writes `data` as a BLOB of UTF-8 JSON: it is archived as text (invalid JSON is decoded to nothing on read).
_COLUMNS = ("jail, CAST(ip AS TEXT), timeofban, CASE typeof(bantime) WHEN 'integer' THEN bantime END, "
            "CASE typeof(bancount) WHEN 'integer' THEN bancount END, "
            "CASE typeof(data) WHEN 'text' THEN data WHEN 'blob' THEN CAST(data AS TEXT) END, rowid")
_ROW_OK = "jail IS NOT NULL AND ip IS NOT NULL AND typeof(timeofban) IN ('integer', 'real') AND "
_ALL_JAILS = "*"  # the single mark of the `bips` source covers every jail
_COUNTER = "#change-counter"  # a pseudo-jail of the bans source: see _change_counter
_BEFORE_ALL = -(2.0**62)

T = TypeVar("T")


class SyncError(Exception):
    """fail2ban's database cannot be read (missing, unreadable, or not a fail2ban database)."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    rows_read: int
    inserted: int
    merged: int
    status: str  # "ok" | "locked" (gave up on fail2ban's lock)
    seconds: float
    restored: int = 0  # bans fail2ban restored (or the archive lacked) recorded as open again
    lifted: int = 0  # open bans of the archive that fail2ban no longer has, recorded as unbans
    unchanged: bool = False  # fail2ban's database was not written since the last complete run: nothing read


class _Locked(Exception):
    pass


def sync_once(archive: Archive, fail2ban_db_path: str, still_leader: Callable[[], bool] = lambda: True,
              batch: int = BATCH, lookback: float = LOOKBACK_S, retries: int = RETRIES,
              sleep: Callable[[float], None] = time.sleep) -> SyncResult:
    """Copy the rows of fail2ban's `bans` and `bips` tables that are new since the last run into `archive`.

    Raises SyncError when the database is missing or is not fail2ban's, NotLeader when leadership was
    lost before a commit; `sqlite3.Error` from the archive propagates (the scheduler logs it and retries
    next run).
    """
    started = time.monotonic()
    identity = _identity(fail2ban_db_path)
    marks = {table: archive.sync_marks(f"{table}:{identity}") for table in ("bans", "bips", "rowid")}
    counter = _change_counter(fail2ban_db_path)
    seen = marks["bans"].pop(_COUNTER, None)
    if counter is not None and seen is not None and counter < seen:
        # A new file that got the old one's inode (common after delete + create): its marks mean nothing.
        log.info("fail2ban's database %s was replaced; reading it from the start", fail2ban_db_path)
        for table in marks:
            archive.reset_marks(f"{table}:{identity}")
        marks = {"bans": {}, "bips": {}, "rowid": {}}
    elif counter is not None and counter == seen:
        # Nothing was written since the last complete run (issue 20 item 4: an idle leader re-read an hour of
        # bans every run): no new rows, and fail2ban's current bans are what the archive already agrees with.
        return SyncResult(0, 0, 0, "ok", time.monotonic() - started, unchanged=True)
    plan = _Plan(fail2ban_db_path, identity, batch, lookback, retries, sleep, marks, counter)
    counts = _Counts()
    status = "ok"
    reconciled = None
    # Measured: a helper thread reading ahead did not help (the GIL hand-over between the reader's Python
    # and SQLite's per-row re-acquire serialised them), so reading and writing simply alternate.
    try:
        with archive.import_session() as session:
            for marks_now, rows in _stage_batches(plan, _Reader(session, plan)):
                result = session.commit_staged(marks_now, commit_if=still_leader)
                if result is None:
                    raise NotLeader("history sync stopped before a commit: another process leads now")
                counts.read += rows
                counts.inserted += result.inserted
                counts.merged += result.merged
            reconciled = _reconcile(session, plan, still_leader)
    except _Locked:
        status = "locked"
        log.warning("fail2ban's database %s stayed locked; the history sync resumes next run", fail2ban_db_path)
    return SyncResult(counts.read, counts.inserted, counts.merged, status, time.monotonic() - started,
                      restored=reconciled.restored if reconciled else 0,
                      lifted=reconciled.lifted if reconciled else 0)


def _reconcile(session: ImportSession, plan: _Plan, still_leader: Callable[[], bool]) -> Reconciled:
    """Make the archive's open bans agree with fail2ban's current ones (store/history_reconcile.py), and mark
    the database's change counter as done (the next run skips an unchanged database)."""
    reader = _Reader(session, plan)
    enabled = f"AND jail NOT IN (SELECT name FROM {SOURCE}.jails WHERE enabled = 0)" \
        if "jails" in reader.tables() else ""
    # What a jail start restores (fail2ban's getCurrentBans): unexpired rows of `bips`; a stopped jail (its
    # `jails` row disabled) bans none of them. A jail missing from `jails` counts as running.
    reader.stage(f"SELECT {_COLUMNS} FROM {SOURCE}.bips WHERE {_ROW_OK}(bantime <= -1 OR timeofban + bantime > ?) "
                 f"{enabled}", [session.clock()])
    done_marks = {(f"bans:{plan.identity}", _COUNTER): float(plan.counter)} if plan.counter is not None else {}
    done = session.reconcile_staged(plan.final_marks, done_marks, commit_if=still_leader)
    if done is None:
        raise NotLeader("history sync stopped before a commit: another process leads now")
    return done


@dataclass(slots=True)
class _Counts:
    read: int = 0
    inserted: int = 0
    merged: int = 0


@dataclass(slots=True)
class _Plan:
    path: str
    identity: str
    batch: int
    lookback: float
    retries: int
    sleep: Callable[[float], None]
    marks: dict[str, dict[str, float]]  # table -> {jail: hwm}
    counter: int | None  # the database header's change counter when the run started
    final_marks: dict[tuple[str, str], float] = field(default_factory=dict)  # saved by a complete run


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


def _stage_batches(plan: _Plan, reader: _Reader) -> Iterator[tuple[dict[tuple[str, str], float], int]]:
    """(new marks, rows staged) per batch; the rows are in the session's staging table until the caller commits
    them (the next batch replaces them). Incremental by rowid when a complete run marked one (issue 20 item 4:
    only what is new), else each jail of `bans` by timeofban with the lookback, then all of `bips`."""
    tables = reader.tables()
    if "bans" not in tables:
        raise SyncError(f"{plan.path} has no 'bans' table: it is not a fail2ban database")
    top = reader.run(f"SELECT coalesce(max(rowid), 0) FROM {SOURCE}.bans")[0][0]
    plan.final_marks[(f"rowid:{plan.identity}", "bans")] = float(top)
    known = plan.marks["rowid"].get("bans")
    if known is not None and top >= known:
        yield from _new_rows(plan, reader, int(known))
        return
    if known is not None:  # the newest rows were deleted (unbans): their rowids come again; read by time once
        reader.session.forget_marks(f"rowid:{plan.identity}")
    scans: list[tuple[str, str | None]] = [("bans", jail) for jail in reader.jails()]
    if "bips" in tables:  # current bans: catches rows purged from `bans` (or written late) while still banned
        scans.append(("bips", None))
    for table, jail in scans:
        mark_jail = jail if jail is not None else _ALL_JAILS
        known = plan.marks[table].get(mark_jail)
        start = _BEFORE_ALL if known is None else known - plan.lookback
        for rows, last_time in _scan(reader, table, jail, start, plan.batch):
            # Odd rows were filtered out by the query; `last_time` is the batch's last good row's.
            # The change counter is marked by the reconcile that ends a complete run, never by a batch: a run
            # cut short must not make the next one skip the database.
            yield {(f"{table}:{plan.identity}", mark_jail): float(last_time)}, rows


def _new_rows(plan: _Plan, reader: _Reader, after: int) -> Iterator[tuple[dict[tuple[str, str], float], int]]:
    """Stage the rows of `bans` with rowid > after, in rowid batches. SQLite gives a new row max(rowid) + 1, so
    while the newest row stays, every new row lies above the mark whatever its timeofban (rows deleted and
    written again between two runs, which could reuse rowids under the mark, are still current bans if they
    matter: the reconcile reads those from `bips`). The per-jail time marks follow, for a fallback run."""
    sql = (f"SELECT {_COLUMNS} FROM {SOURCE}.bans WHERE {_ROW_OK}rowid > ? ORDER BY rowid LIMIT ?")
    last = after
    while True:
        count, tail = reader.stage(sql, [last, plan.batch])
        if not count:
            return
        last = tail[1]
        marks = {(f"bans:{plan.identity}", jail): float(at) for jail, at in reader.session.staged_times()}
        marks[(f"rowid:{plan.identity}", "bans")] = float(last)
        yield marks, count
        if count < plan.batch:
            return


def _scan(reader: _Reader, table: str, jail: str | None, start: float, batch: int) -> Iterator[tuple[int, Any]]:
    """Stage the rows of one jail of `bans` (or all of `bips`) with timeofban >= start, in keyset batches of
    (timeofban, rowid) so that rows sharing one second are never skipped between batches; yields (rows staged,
    timeofban of the last)."""
    where, params = ("jail = ? AND ", [jail]) if jail is not None else ("", [])
    sql = (f"SELECT {_COLUMNS} FROM {SOURCE}.{table} WHERE {where}{_ROW_OK}"
           "timeofban >= ? AND (timeofban > ? OR rowid > ?) ORDER BY timeofban, rowid LIMIT ?")
    last_time, last_rowid = start, -1
    while True:
        count, last = reader.stage(sql, [*params, last_time, last_time, last_rowid, batch])
        if count:
            yield count, last[0]
        if count < batch:
            return
        last_time, last_rowid = last


class _Reader:
    """fail2ban's database, attached read-only to the import session; retries while fail2ban holds its write
    lock (a short busy timeout per attempt: our own backoff decides how long a run waits in total)."""

    def __init__(self, session: ImportSession, plan: _Plan) -> None:
        self.session, self.path, self.retries, self.sleep = session, plan.path, plan.retries, plan.sleep
        session.use_source(plan.path)

    def run(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._attempt(self.session.read_source, sql, params)

    def stage(self, sql: str, params: list[Any]) -> tuple[int, Any]:
        return self._attempt(self.session.stage_from_source, sql, params)

    def _attempt(self, fn: Callable[..., T], *args: Any) -> T:
        for attempt in range(self.retries + 1):
            try:
                return fn(*args)
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
        return {name for (name,) in self.run(f"SELECT name FROM {SOURCE}.sqlite_master WHERE type = 'table'")}

    def jails(self) -> list[str]:
        """Distinct jails of `bans`, one index seek each (fail2ban indexes bans(jail, timeofban)), in one query."""
        rows = self.run(f"WITH RECURSIVE j(name) AS (SELECT min(jail) FROM {SOURCE}.bans UNION ALL "
                        f"SELECT (SELECT min(jail) FROM {SOURCE}.bans WHERE jail > j.name) FROM j "
                        "WHERE j.name IS NOT NULL) SELECT name FROM j WHERE name IS NOT NULL")
        return [name for (name,) in rows]
