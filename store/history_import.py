"""The sync's bulk path into the ban archive: an `ImportSession` stages fail2ban's rows in SQLite and commits
them with a few set-based statements (no Python per row), merged with bangui's own records of the same bans.

Low-level pieces shared with `store.history` (`Transaction`, the merge window, the memory map size) live
here, so that the two modules do not import each other in a circle.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.faults import is_disk_full
from store.history_reconcile import Reconciled, drop_agreeing, keep_current, reconcile_current
from store.history_schema import address_with_key, aggregate, next_id

if TYPE_CHECKING:
    pass

BUSY_TIMEOUT_S = 5.0
MERGE_WINDOW_S = 2.0  # slack around [since, at] of bangui's own ban (fail2ban stores whole seconds)
# The longest a ban call of bangui can last (f2b.client's budget for the largest request, with margin): how far
# before a synced row's time the sync looks for bangui's own record of the same ban, which is stamped at its end.
MAX_BAN_SPAN_S = 3600.0
MMAP_BYTES = 1 << 30
SYNC_CACHE_KIB = 262144
SOURCE = "src"  # the schema name of the database attached to an ImportSession
SOURCE_BUSY_MS = 100  # a source's reads wait this long per attempt for its writer; callers retry and back off


@dataclass(frozen=True, slots=True)
class ImportResult:
    inserted: int  # new events
    merged: int  # rows folded into a ban bangui had already recorded itself


class Fenced(Exception):
    """Raised inside a write transaction to roll it back because this process is no longer the leader."""


class Transaction:
    """`with` block = one BEGIN IMMEDIATE transaction; an exception rolls back and propagates."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._after_failure(error)
                raise
            return
        self._after_failure(exc)

    def _after_failure(self, exc: BaseException | None) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        if exc is not None and is_disk_full(exc):
            # Give the WAL's space back to the disk (best effort: readers may hold it), so that a full disk does
            # not stay full because of our own WAL once the cause is gone.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# The staged rows of one batch, in the order they arrived (rowid), as `Archive.import_bans` takes them; then the
# address texts seen during the session, normalised once each (key, canonical text, country).
_SESSION_DDL = (
    "CREATE TEMP TABLE stage (jail TEXT, ip TEXT, at, bantime, bancount, data, rid)",
    "CREATE TEMP TABLE ipmap (raw TEXT PRIMARY KEY, ip TEXT NOT NULL, key BLOB NOT NULL, country TEXT) WITHOUT ROWID",
    "CREATE TEMP TABLE own_keys (key BLOB NOT NULL, jail TEXT NOT NULL, PRIMARY KEY (key, jail)) WITHOUT ROWID",
)
_STAGE_COLUMNS = "jail, ip, at, bantime, bancount, data, rid"
# CROSS JOIN keeps the plan: scan the batch, look each address up by its text. Arrival (jail, time) order: sorting
# the batch by address first made the unique index's inserts sequential but cost more than it saved (measured).
_INSERT_STAGED = (
    "INSERT OR IGNORE INTO events (event, jail, ip, ipkey, at, bantime, bancount, data, origin, country) "
    "SELECT 'ban', s.jail, m.ip, m.key, s.at, s.bantime, s.bancount, s.data, 'auto', m.country "
    "FROM temp.stage s CROSS JOIN temp.ipmap m ON m.raw = s.ip")
# The address texts of the batch not mapped yet, each once (GROUP BY: in key order, so the inserts append), through
# SQL functions (cheaper than fetching them and executemany).
_MAP_NEW = ("INSERT INTO temp.ipmap SELECT ip, bangui_ip(ip), bangui_ipkey(ip), bangui_country(ip) FROM temp.stage "
            "WHERE ip NOT IN (SELECT raw FROM temp.ipmap) GROUP BY ip")


class ImportSession:
    """A bulk import of fail2ban's rows into the archive, batch by batch, through one connection of its own.

    A batch is staged in a temp table, either from Python (`stage_rows`) or by one INSERT ... SELECT from a
    database attached read-only (`use_source` + `stage_from_source`: the copy never leaves SQLite); `commit_staged`
    then merges, inserts, counts and advances the marks with a few set-based statements in one transaction.
    The only per-row Python left is per distinct address text (key and country, computed once per session).
    Closing the session closes its connection, which frees the temp tables (a backfill stages ~40 MB a batch).
    """

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float], geo: Any) -> None:
        """`conn`: a connection of the session's own (Archive.import_session opens it with a bigger page
        cache: the rows of a batch land at random places of the ip-keyed unique index, and with the default
        cache every batch rewrote most of that index to the WAL)."""
        self.clock, self.geo = clock, geo
        self.conn = conn
        for statement in _SESSION_DDL:
            self.conn.execute(statement)
        self._source_uri: str | None = None
        self._mapped: dict[str, tuple[str, bytes, str | None]] = {}
        for name, field in (("bangui_ip", 0), ("bangui_ipkey", 1), ("bangui_country", 2)):
            self.conn.create_function(name, 1, lambda raw, f=field: self._address(raw)[f], deterministic=True)

    def __enter__(self) -> ImportSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    # -- the source ------------------------------------------------------------------------------------------

    def use_source(self, path: str) -> None:
        """Read the database at `path` (read-only, mode=ro) as schema `src` in `read_source`/`stage_from_source`.

        It is attached only while those run: `BEGIN IMMEDIATE` opens a read transaction on every attached
        database, so a source left attached would stay read-locked through each of our write transactions, and
        fail2ban (rollback journal) could not commit meanwhile."""
        self._source_uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"

    def read_source(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query that reads the source (and nothing of the archive)."""
        with self._source():
            return self.conn.execute(sql, params).fetchall()

    def stage_from_source(self, select: str, params: Sequence[Any] = ()) -> tuple[int, tuple[Any, Any] | None]:
        """Replace the staged batch with the rows of `select` (columns as `SyncedBan`, then a row id of the
        source); returns (rows staged, (at, rid) of the last one). The source is read-locked only while this
        statement runs."""
        with self._source():
            self.conn.execute("DELETE FROM temp.stage")
            count = self.conn.execute(f"INSERT INTO temp.stage ({_STAGE_COLUMNS}) {select}", params).rowcount
        last = self.conn.execute("SELECT at, rid FROM temp.stage ORDER BY rowid DESC LIMIT 1").fetchone()
        return count, last

    @contextlib.contextmanager
    def _source(self) -> Iterator[None]:
        if self._source_uri is None:
            raise RuntimeError("use_source() first")
        conn = self.conn
        # A short busy timeout while fail2ban writes (the caller retries with its own backoff), set FIRST: the
        # mmap PRAGMA below reads the source's schema, and under the archive's 5 s timeout each attempt on a
        # locked source waited 5 s (issue 20 item 5: a 20 s stall instead of 0.4 s).
        conn.execute(f"PRAGMA busy_timeout = {SOURCE_BUSY_MS}")
        try:
            conn.execute(f"ATTACH DATABASE ? AS {SOURCE}", (self._source_uri,))
        except BaseException:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            raise
        try:
            # fail2ban's rows of one jail are spread over its whole table: read through a memory map rather than
            # one pread() per page visit (measured: a third of the reading time went to those syscalls).
            conn.execute(f"PRAGMA {SOURCE}.mmap_size = {MMAP_BYTES}")
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute(f"DETACH DATABASE {SOURCE}")

    def staged_times(self) -> list[tuple[str, float]]:
        """(jail, latest time) of the staged batch."""
        return self.conn.execute("SELECT jail, max(at) FROM temp.stage GROUP BY jail").fetchall()

    def forget_marks(self, source: str) -> None:
        """Delete the marks of one source (marks otherwise only move forward)."""
        with Transaction(self.conn) as conn:
            conn.execute("DELETE FROM sync_marks WHERE source = ?", (source,))

    # -- batches ---------------------------------------------------------------------------------------------

    def stage_rows(self, bans: Iterable[Sequence[Any]]) -> int:
        """Replace the staged batch with these rows (SyncedBan or the same first six fields)."""
        self.conn.execute("DELETE FROM temp.stage")
        return self.conn.executemany(f"INSERT INTO temp.stage ({_STAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                                     (tuple(ban[:6]) for ban in bans)).rowcount

    def commit_staged(self, marks: Mapping[tuple[str, str], float],
                      commit_if: Callable[[], bool] = lambda: True) -> ImportResult | None:
        """Import the staged batch and advance `marks`, atomically (see `Archive.import_bans`)."""
        conn = self.conn
        self._map_addresses()
        inserted = merged = 0
        try:
            with Transaction(conn):
                lo, hi = conn.execute("SELECT min(at), max(at) FROM temp.stage").fetchone()
                if lo is not None:
                    own = _own_bans(conn, lo, hi)
                    if own:
                        merged = self._merge(own)
                    first_new = next_id(conn)
                    inserted = conn.execute(_INSERT_STAGED).rowcount
                    if inserted:
                        aggregate(conn, "id >= ?", (first_new,), +1)
                _save_marks(conn, marks, self.clock())
                if not commit_if():
                    raise Fenced
        except Fenced:
            return None
        return ImportResult(inserted, merged)

    def reconcile_staged(self, marks: Mapping[tuple[str, str], float], done_marks: Mapping[tuple[str, str], float],
                         commit_if: Callable[[], bool] = lambda: True) -> Reconciled | None:
        """The staged batch is fail2ban's current bans: import what the archive lacks, then make its open bans
        agree with them (store/history_reconcile.py); `marks` are saved with it, `done_marks` too unless some
        bans are pending. None if fenced."""
        self._map_addresses()
        keep_current(self.conn)
        drop_agreeing(self.conn, self.clock())
        if self.commit_staged({}, commit_if) is None:
            return None
        try:
            with Transaction(self.conn) as conn:
                now = self.clock()
                done = reconcile_current(conn, now)
                _save_marks(conn, marks, now)
                if not done.pending:  # else the next run must not skip an unchanged database
                    _save_marks(conn, done_marks, now)
                if not commit_if():
                    raise Fenced
        except Fenced:
            return None
        return done

    def _map_addresses(self) -> None:
        """Key, canonical text and country of every address text of the batch not seen yet in this session."""
        try:
            self.conn.execute(_MAP_NEW)
        finally:
            self._mapped.clear()

    def _address(self, raw: str) -> tuple[str, bytes, str | None]:
        found = self._mapped.get(raw)
        if found is None:
            ip, key, valid = address_with_key(raw)
            geo = self.geo
            found = self._mapped[raw] = (ip, key, geo.country(ip) if geo is not None and valid else None)
        return found

    def _merge(self, own: OwnBans) -> int:
        """Fold the staged rows that are fail2ban's copies of bans bangui recorded itself into those events (and
        take them out of the batch); returns how many events changed."""
        conn = self.conn
        conn.execute("DELETE FROM temp.own_keys")
        conn.executemany("INSERT INTO temp.own_keys VALUES (?, ?)", list(own))
        candidates = conn.execute(
            "SELECT s.rowid, m.key, s.jail, s.at, s.bantime, s.bancount, s.data FROM temp.stage s "
            "CROSS JOIN temp.ipmap m ON m.raw = s.ip "
            "CROSS JOIN temp.own_keys o ON o.key = m.key AND o.jail = s.jail ORDER BY s.rowid").fetchall()
        merged = 0
        folded = []
        for rowid, key, jail, at, bantime, bancount, data in candidates:
            target = _closest(own[(key, jail)], at)
            if target is None:
                continue
            folded.append((rowid,))
            # A re-read of an already merged row changes nothing and is not counted again.
            merged += conn.execute(
                "UPDATE events SET bantime = coalesce(?1, bantime), bancount = ?2, data = ?3 "
                "WHERE id = ?4 AND (bantime IS NOT coalesce(?1, bantime) OR bancount IS NOT ?2 "
                "OR data IS NOT ?3)", (bantime, bancount, data, target)).rowcount
        conn.executemany("DELETE FROM temp.stage WHERE rowid = ?", folded)
        return merged


OwnBans = dict[tuple[bytes, str], list[tuple[float, float, int]]]


def _save_marks(conn: sqlite3.Connection, marks: Mapping[tuple[str, str], float], now: float) -> None:
    conn.executemany(
        "INSERT INTO sync_marks (source, jail, hwm, updated) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET hwm = max(hwm, excluded.hwm), updated = excluded.updated",
        [(source, jail, hwm, now) for (source, jail), hwm in marks.items()])


def _own_bans(conn: sqlite3.Connection, lo: float, hi: float) -> OwnBans:
    """bangui's own ban records that may cover [lo, hi], by (ipkey, jail): the candidates a synced row may merge
    into, as (since, at, id). A record is stamped at the END of its ban call, so it may lie up to MAX_BAN_SPAN_S
    after the rows fail2ban wrote during that call."""
    found: OwnBans = {}
    rows = conn.execute(
        "SELECT ipkey, jail, coalesce(since, at), at, id FROM events INDEXED BY events_own_at "
        "WHERE origin IN ('manual', 'blocklist', 'fleet') AND origin != 'auto' AND at BETWEEN ? AND ? "
        "AND event = 'ban'",
        (lo - MERGE_WINDOW_S, hi + MERGE_WINDOW_S + MAX_BAN_SPAN_S))
    for key, jail, since, at, event_id in rows:
        found.setdefault((key, jail), []).append((since, at, event_id))
    return found


def span_gap(since: float, until: float, at: float) -> float:
    """How far `at` lies outside [since, until] (0 inside)."""
    return max(since - at, at - until, 0.0)


def _closest(candidates: Iterable[tuple[float, float, int]], at: float) -> int | None:
    best = None
    for since, until, event_id in candidates:
        gap = span_gap(since, until, at)
        if gap <= MERGE_WINDOW_S and (best is None or gap < best[0]):
            best = (gap, event_id)
    return best[1] if best else None
