"""The ban archive: every ban and unban bangui has seen, kept after fail2ban forgets them (issue 5).

One SQLite file, `<data_dir>/history.sqlite3` (0600, WAL), shared by every worker and server process on the host.

Contracts:
- Connections are per thread and per process: `Archive` may be shared by threads; a connection opened before a
  fork is never used (nor closed) in the child. An `ImportSession` (the sync's bulk path) has a connection of its
  own, closed with it. Every write is one `BEGIN IMMEDIATE` transaction, so concurrent writers queue on SQLite's
  lock (busy timeout `BUSY_TIMEOUT_S`) instead of failing.
- An event is unique on (ip, jail, at, event): re-running the sync, or a second leader after a takeover, never
  duplicates a row (`INSERT OR IGNORE`).
- A ban bangui made itself (`record_ban`, origin manual/blocklist/fleet) and fail2ban's copy of the same ban (the sync
  sees it as an ordinary row) are ONE event: whichever arrives second is merged into the first when jail and ip are
  equal and fail2ban's time lies within [since, at] of bangui's record, give or take `MERGE_WINDOW_S` (`since`:
  when the ban call started, `at`: when fail2ban answered; a bulk ban runs its actions address by address, so its
  rows carry any time in between). The origin and actor of bangui's record win; fail2ban's failures, matches,
  bancount and bantime are added.
- The sync's high-water marks live in the same transaction as the rows they cover: a crash or a lost leadership
  (`commit_if` answering False) loses neither.
- Reads never block writers (WAL). Queries are in `store.history_query` and exposed as methods here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from store import history_query, history_stats
from store.base import bound_wal
from store.connections import PerThread
from store.history_import import (
    BUSY_TIMEOUT_S,
    MERGE_WINDOW_S,
    MMAP_BYTES,
    SYNC_CACHE_KIB,
    ImportResult,
    ImportSession,
    Transaction,
)
from store.history_schema import DAY_S, OWN_ORIGINS, address_with_key, aggregate, drop_empty, migrate, next_id
from store.inline import NoWait

if TYPE_CHECKING:
    from geo import CountryLookup

FILENAME = "history.sqlite3"
STATS_CACHE_ENTRIES = 16  # per thread: (range, jail, origin) combinations a dashboard asks for
PURGE_BATCH = 5000  # rows per purge transaction at most
PURGE_FIRST_BATCH = 500
PURGE_HOLD_S = 0.03  # a purge transaction's target length (then PURGE_PAUSE_S without the lock)
PURGE_PAUSE_S = 0.03
PAGE_BYTES = 8192
CACHE_KIB = 4096  # per thread and connection: reads go through the memory map, see _connect
CHECKPOINT_BYTES = 40 << 20
FEW_ADDRESSES = 64  # record_ban of up to this many looks each address up; more probe the span first
WAL_LIMIT_BYTES = 64 << 20

class SyncedBan(NamedTuple):
    """One ban row as fail2ban stored it (`bans`/`bips`). `data` is fail2ban's JSON text as is (the archive
    decodes failures and matches when read, and tolerates null or malformed text)."""

    jail: str
    ip: str
    at: float
    bantime: int | None
    bancount: int | None
    data: str | None


def _source_host(origin: str, source_host: str | None) -> str | None:
    """Only bangui's own origins are recorded by bangui (auto is fail2ban's, through the sync); a fleet event
    names its source host, no other event has one."""
    if origin not in OWN_ORIGINS:
        raise ValueError(f"bangui records origin {', '.join(OWN_ORIGINS)}, not {origin!r}")
    if (origin == "fleet") != bool(source_host):
        raise ValueError("origin fleet needs its source_host, and only origin fleet has one")
    return source_host or None


def _warm(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> None:
    """Read, outside any write lock, every page a purge of the events matching `where` will change: their table
    rows, their entries in the unique (address-ordered) index and their agg_ip rows (the other indexes are in time
    order: their pages follow the rows'). Only a cache warm-up: a snapshot without locks, its result unused."""
    conn.execute(
        "SELECT count(k.rowid), count(a.bans) FROM (SELECT ipkey, jail, at, event FROM events WHERE "
        f"{where}) d JOIN events k INDEXED BY events_key ON k.ipkey = d.ipkey AND k.jail = d.jail AND k.at = d.at "
        "AND k.event = d.event LEFT JOIN agg_ip a ON a.ipkey = d.ipkey", params).fetchone()


class Archive:
    """The history archive at `path`. `clock` is injectable for retention tests; `geo` gives countries."""

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time,
                 geo: CountryLookup | None = None) -> None:
        self.path = Path(path)
        self.clock = clock
        self.geo = geo
        self._connections = PerThread(self._connect)
        self._stats_cache = threading.local()  # per thread, as the connections whose data_version it relies on
        self.nowait = NoWait(self._connect)  # store/inline.py: small records on the event loop when nothing waits
        self._create_file()
        migrate(self._conn())

    @classmethod
    def in_dir(cls, data_dir: Path | str, clock: Callable[[], float] = time.time,
               geo: CountryLookup | None = None) -> Archive:
        """The archive of a data dir (created 0700 if missing; `store.base.prepare_data_dir` checks it)."""
        Path(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(Path(data_dir) / FILENAME, clock=clock, geo=geo)

    # -- connections -----------------------------------------------------------------------------------------

    def _create_file(self) -> None:
        # Create it 0600 before SQLite does (SQLite gives -wal/-shm the main file's mode), and tighten old ones.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        for suffix in ("", "-wal", "-shm"):
            target = Path(str(self.path) + suffix)
            if target.exists() and target.stat().st_mode & 0o077:
                target.chmod(0o600)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again in a forked child)."""
        return self.nowait.conn() if self.nowait.active() else self._connections.get()

    def _connect(self, cache_kib: int = CACHE_KIB) -> sqlite3.Connection:
        # isolation_level=None: autocommit; transactions are explicit BEGIN IMMEDIATE ... COMMIT. A URI filename,
        # so that an ImportSession can ATTACH a source with ?mode=ro whatever SQLite's compile-time URI default.
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=True)
        # Only a new, empty file takes a page size (before WAL mode is set, which fixes it); older archives keep
        # theirs. Larger pages: fewer B-tree pages to split and to write to the WAL per inserted row.
        conn.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; a power cut may lose the last commits,
        # which the next sync run re-reads from fail2ban (its marks are in the same transactions).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Checkpoint every ~40 MB rather than 4 MB: a page the sync rewrites in several batches is copied once.
        # (at most a share of the disk's free space: store/base.py); the WAL shrinks back after a backfill.
        bound_wal(conn, self.path, CHECKPOINT_BYTES, WAL_LIMIT_BYTES)
        # Reads through a memory map (shared by every process, no per-read syscall); a bigger page cache keeps
        # the upper levels of the random-order unique index hot while the sync inserts.
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        return conn

    def close(self) -> None:
        """Close this thread's connections (others close when their threads' objects are collected)."""
        self._connections.close()
        self.nowait.close()

    def _write(self) -> Transaction:
        return Transaction(self._conn())

    # -- writes ----------------------------------------------------------------------------------------------

    def _country(self, ip: str, valid: bool) -> str | None:
        return self.geo.country(ip) if self.geo is not None and valid else None

    def record_ban(self, jail: str, ips: Iterable[str], origin: str = "manual", actor: str | None = None,
                   at: float | None = None, bantime: int | None = None, since: float | None = None,
                   source_host: str | None = None) -> int:
        """Record bans bangui just made; returns how many events were added or claimed.

        `since`: when the ban call to fail2ban started (pass it for every ban: a bulk ban lasts seconds); `at`:
        when it returned (default now). If the sync already copied fail2ban's row of the same ban (origin auto,
        within [since, at] give or take MERGE_WINDOW_S), that row becomes this origin and actor instead of a
        second event. `source_host`: for origin fleet only, the host the ban came from.
        """
        source_host = _source_host(origin, source_host)
        when = self.clock() if at is None else float(at)
        start = min(when, when if since is None else float(since))
        count = 0
        ips = ips if isinstance(ips, (list, tuple)) else list(ips)
        with self._write() as conn:
            first_new = next_id(conn)
            # fail2ban's copies can only be there if the sync ran during this ban's span. A bulk ban (a blocklist
            # of 100,000) probes the span once and, with nothing to claim, skips the query per address. A few
            # addresses go straight to the per-address lookups (an index seek each): the span probe reads every
            # event of the jail in the span, thousands when bans arrive by the hundred per second.
            if len(ips) > FEW_ADDRESSES and conn.execute(
                    "SELECT 1 FROM events WHERE jail = ? AND at BETWEEN ? AND ? AND origin = 'auto' "
                    "AND event = 'ban' LIMIT 1",
                    (jail, start - MERGE_WINDOW_S, when + MERGE_WINDOW_S)).fetchone() is None:
                count = conn.executemany(
                    "INSERT OR IGNORE INTO events (event, jail, ip, ipkey, at, since, bantime, origin, actor, "
                    "country, source_host) VALUES ('ban', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ((jail, ip, key, when, start, bantime, origin, actor, self._country(ip, valid), source_host)
                     for ip, key, valid in map(address_with_key, ips))).rowcount
                ips = ()
            for raw in ips:
                ip, key, valid = address_with_key(raw)
                # Only fail2ban's copy is claimed: another record of ours nearby is another ban (a re-ban right
                # after an unban), never this one (an exact repeat is a no-op of the unique key).
                row = conn.execute(
                    "SELECT id FROM events WHERE ipkey = ? AND jail = ? AND event = 'ban' "
                    "AND origin = 'auto' AND at BETWEEN ? AND ? ORDER BY abs(at - ?) LIMIT 1",
                    (key, jail, start - MERGE_WINDOW_S, when + MERGE_WINDOW_S, when)).fetchone()
                if row is not None:
                    aggregate(conn, "id = ?", (row[0],), -1)
                    # Our clock, not fail2ban's whole second (which may round past a quick unban of ours).
                    conn.execute("UPDATE OR IGNORE events SET origin = ?, actor = ?, at = ?, since = ?, "
                                 "bantime = coalesce(bantime, ?), source_host = ? WHERE id = ?",
                                 (origin, actor, when, start, bantime, source_host, row[0]))
                    aggregate(conn, "id = ?", (row[0],), +1)
                    count += 1
                    continue
                count += conn.execute(
                    "INSERT OR IGNORE INTO events (event, jail, ip, ipkey, at, since, bantime, origin, actor, country, "
                    "source_host) VALUES ('ban', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (jail, ip, key, when, start, bantime, origin, actor, self._country(ip, valid),
                     source_host)).rowcount
            aggregate(conn, "id >= ?", (first_new,), +1)
        return count

    def record_unban(self, jail: str, ip: str, actor: str | None = None, at: float | None = None,
                     origin: str = "manual", source_host: str | None = None) -> bool:
        """Record an unban bangui just made (fail2ban deletes its own rows of it); True if it was new."""
        return self.record_unbans(jail, [ip], actor, at, origin, source_host) > 0

    def record_unbans(self, jail: str, ips: Iterable[str], actor: str | None = None, at: float | None = None,
                      origin: str = "manual", source_host: str | None = None) -> int:
        """Record unbans of many addresses at once (one transaction: unban-all, jail stop, a fleet unban);
        returns how many events were new."""
        source_host = _source_host(origin, source_host)
        when = self.clock() if at is None else float(at)
        added = 0
        with self._write() as conn:
            for ip in ips:
                text, key, valid = address_with_key(ip)
                added += conn.execute(
                    "INSERT OR IGNORE INTO events (event, jail, ip, ipkey, at, origin, actor, country, source_host) "
                    "VALUES ('unban', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (jail, text, key, when, origin, actor, self._country(text, valid), source_host)).rowcount
        return added

    def recorded_since(self, jail: str, event: str, actor: str | None, since: float) -> set[str]:
        """Addresses with a `ban`/`unban` event of `actor` in `jail` at or after `since` (what a process that died
        mid-action had already recorded: reconciliation adds only the rest, jobs/reconcile.py)."""
        rows = self._conn().execute("SELECT ip FROM events WHERE jail = ? AND at >= ? AND event = ? AND actor IS ? "
                                    "AND origin != 'auto'", (jail, since, event, actor))
        return {str(r[0]) for r in rows}

    def import_session(self) -> ImportSession:
        """A bulk import through a connection of its own (`with archive.import_session() as session:`)."""
        return ImportSession(self._connect(cache_kib=SYNC_CACHE_KIB), self.clock, self.geo)

    def import_bans(self, bans: Iterable[Sequence[Any]], marks: Mapping[tuple[str, str], float],
                    commit_if: Callable[[], bool] = lambda: True) -> ImportResult | None:
        """Add fail2ban's rows and advance the sync marks, atomically; None if `commit_if()` said no (fenced).

        Each item is a SyncedBan or any sequence whose first six fields are laid out the same way. Marks only
        move forward: `hwm = max(stored, given)` per (source, jail). The sync goes through `import_session`
        directly (rows staged straight from fail2ban's database); this is the same path fed from Python.
        """
        with self.import_session() as session:
            session.stage_rows(bans)
            return session.commit_staged(marks, commit_if)

    def sync_marks(self, source: str) -> dict[str, float]:
        """The high-water marks of one sync source: {jail: hwm}."""
        rows = self._conn().execute("SELECT jail, hwm FROM sync_marks WHERE source = ?", (source,))
        return dict(rows.fetchall())

    def reset_marks(self, source: str) -> None:
        """Forget the marks of one sync source (its database was replaced): the next run reads it all."""
        with self._write() as conn:
            conn.execute("DELETE FROM sync_marks WHERE source = ?", (source,))

    def purge(self, older_than_days: float, batch: int = PURGE_BATCH) -> int:
        """Delete events older than `older_than_days` (by the injected clock), at most `batch` rows per transaction,
        so that API writes and the sync never wait long behind it. Returns how many were deleted.

        Each transaction is sized to hold the write lock about PURGE_HOLD_S (the batch grows or shrinks with the
        time the last one took: a fixed 5,000 rows held it 200 ms+ on a loaded host), and the purge then sleeps
        PURGE_PAUSE_S: another process waiting for the lock polls it every 1-25 ms in its first ~150 ms (SQLite's
        busy handler), so it gets in during that pause instead of losing the race to the next batch (measured with
        bench/history_big.py: a writer waited up to 1.6 s behind back-to-back batches). Before each transaction
        the batch's pages are read without the lock (`_warm`): on an archive larger than memory a batch otherwise
        waited for the disk while holding the lock (the unique index is in address order, so a batch of old rows
        touches pages all over it), and one such batch held writers up for 484 ms (issue 25 item 4)."""
        cutoff = self.clock() - older_than_days * DAY_S
        total, size = 0, min(batch, PURGE_FIRST_BATCH)
        conn = self._conn()
        while True:
            # The batch is "at <= the size-th oldest time" (ties may add a few rows), or all that is left. Rows the
            # sync adds meanwhile below that time are simply part of it: the transaction re-selects by `where`.
            row = conn.execute("SELECT at FROM events WHERE at < ? ORDER BY at LIMIT 1 OFFSET ?",
                               (cutoff, size - 1)).fetchone()
            where, params = ("at <= ?", (row[0],)) if row is not None else ("at < ?", (cutoff,))
            _warm(conn, where, params)
            started = time.perf_counter()
            with self._write() as tx:
                aggregate(tx, where, params, -1)
                drop_empty(tx, where, params)
                deleted = tx.execute(f"DELETE FROM events WHERE {where}", params).rowcount
            total += deleted
            held = time.perf_counter() - started
            # The batch's pages go to the database file now, without the write lock (a PASSIVE checkpoint never
            # blocks writers): left to the autocheckpoint, the WAL the purge filled was copied and synced by
            # whichever commit crossed the threshold, often a writer's ban (a 40 MB checkpoint in its latency).
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if row is None:
                return total
            size = max(1, min(batch, int(size * min(2.0, PURGE_HOLD_S / max(held, 1e-4)))))
            time.sleep(PURGE_PAUSE_S)

    # -- queries (store.history_query) ---------------------------------------------------------------------

    def events_after(self, last_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with id > last_id, oldest first (ids only grow: for consumers that follow the archive)."""
        rows = self._conn().execute("SELECT id, event, jail, ip, at, origin, actor, source_host FROM events "
                                    "WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)).fetchall()
        keys = ("id", "event", "jail", "ip", "at", "origin", "actor", "source_host")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def ban_origins(self, jail: str, ips: Iterable[str]) -> dict[str, str]:
        """The origin of the latest ban event of each address in `jail` that the archive has (decisions, issue 22)."""
        conn, out = self._conn(), {}
        for ip in ips:
            row = conn.execute("SELECT origin FROM events WHERE ipkey = ? AND jail = ? AND event = 'ban' "
                               "ORDER BY at DESC LIMIT 1", (address_with_key(ip)[1], jail)).fetchone()
            if row is not None:
                out[ip] = str(row[0])
        return out

    def last_event_id(self) -> int:
        return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def events_by_origin(self) -> dict[str, int]:
        """Ban events in the archive per origin, from the per-day aggregate (a few rows per day, not per event)."""
        rows = self._conn().execute("SELECT origin, sum(bans) FROM agg_day GROUP BY origin").fetchall()
        return {origin: int(total) for origin, total in rows}

    def history(self, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
        """See `history_query.history`."""
        return history_query.history(self._conn(), **filters)

    def ip_timeline(self, ip: str) -> dict[str, Any]:
        """See `history_query.ip_timeline`."""
        return history_query.ip_timeline(self._conn(), ip, self.geo)

    def network_timeline(self, network: str) -> dict[str, Any]:
        """See `history_query.network_timeline`."""
        return history_query.network_timeline(self._conn(), network, self.geo)

    def stats(self, range_: str = "24h", jail: str | None = None, origin: str | None = None,
              now: float | None = None) -> dict[str, Any]:
        """See `history_stats.stats`. Answered again from this thread's last results while nothing was written to
        the archive and the window has not moved (issue 25: a 30-day window of a busy archive scans its events for
        the top addresses and countries, milliseconds to seconds, and every open dashboard asks for the same)."""
        conn = self._conn()
        now = self.clock() if now is None else now
        end = history_stats.window_end(range_, now)
        if end is None:  # not a range: stats() says so
            return history_stats.stats(conn, range_, jail=jail, origin=origin, now=now)
        # data_version moves when another connection (any process) commits; total_changes when this one writes.
        version = (id(conn), conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        cache: dict[tuple[Any, ...], tuple[tuple[int, int, int], dict[str, Any]]] = \
            self._stats_cache.__dict__.setdefault("entries", {})
        key = (range_, jail, origin, end)
        hit = cache.get(key)
        if hit is not None and hit[0] == version:
            return dict(hit[1])
        result = history_stats.stats(conn, range_, jail=jail, origin=origin, now=now)
        if len(cache) >= STATS_CACHE_ENTRIES:
            cache.clear()
        cache[key] = (version, result)
        return dict(result)

    def repeat_offenders(self, min_bans: int, days: float, jail: str | None = None) -> list[dict[str, Any]]:
        """See `history_stats.repeat_offenders`."""
        return history_stats.repeat_offenders(self._conn(), min_bans, days, jail, now=self.clock(), geo=self.geo)

    def repeat_offender_count(self, days: int = 30, times: int = 3, now: float | None = None) -> int:
        """Addresses banned ``times`` or more in the last ``days`` days (the advisor's escalation evidence)."""
        since = (self.clock() if now is None else now) - days * 86400
        row = self._conn().execute(
            "SELECT COUNT(*) FROM (SELECT ip FROM events WHERE event = 'ban' AND at >= ? GROUP BY ip "
            "HAVING COUNT(*) >= ?)", (since, times)).fetchone()
        return int(row[0])

    def csv_lines(self, **filters: Any) -> Iterator[str]:
        """See `history_query.csv_lines`: the whole filtered history as CSV text lines, page by page."""
        return history_query.csv_lines(self._conn, **filters)

    def csv_chunks(self, **filters: Any) -> Iterator[str]:
        """See `history_query.csv_chunks`: the same CSV text one page per string (what the export streams)."""
        return history_query.csv_chunks(self._conn, **filters)
