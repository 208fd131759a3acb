"""The view of fail2ban's current bans that every reader serves from (issues 22 and 25): the API's ban lists and
address lookups, and the CrowdSec decisions stream (store/decisions.py), so fail2ban is not asked for a whole ban
list on each request.

One SQLite file, `<data_dir>/bans.sqlite3` (0600, WAL), shared by every worker and server process on the host.

Who writes it:
- a sync (jobs/decisions.py: the leader's `decisions` job every BANGUI_DECISIONS_SECONDS, or a worker whose
  view is older than that) replaces it with what fail2ban bans now (`publish`). `as_of` is when that read began;
  a sync that read fail2ban before the view's `as_of` writes nothing (a newer read already did);
- bangui's own bans and unbans (actions/bans.py) write their entries at once (`added`, `lifted`), so they are
  visible before the next sync. A ban bangui made is `confirmed` = 0 until a sync sees it in fail2ban's list
  with fail2ban's own times; only confirmed bans are decisions (a bouncer gets each with its real duration).
  A sync whose read began before such a change neither drops that fresh ban nor brings back that unban.

Each ban row has an id (a decision id, never reused: AUTOINCREMENT) kept while the ban lasts with the same end.
The change log (`changes`) holds what bouncers must learn: `gone` 0 for a new decision, 1 for a lifted or expired
one; a ban whose end moved (a re-ban, bantime increment) is the old decision gone and a new one, in one change.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import InvalidInput
from store.ban_order import MISSING, SORT_COLUMNS, Order
from store.base import Clock, bound_wal
from store.connections import PerThread
from store.history_schema import address_with_key, key_range
from store.inline import NoWait

FILENAME = "bans.sqlite3"
BUSY_TIMEOUT_S = 10.0
END_TOLERANCE_S = 2.0  # an end that moved less than this is the same ban (bangui's estimate vs fail2ban's time)
LIFTED_KEEP_S = 120.0  # an unban bangui made is remembered this long against syncs that read fail2ban earlier
Ban = tuple[str, str, float | None, float | None]  # (jail, ip, banned_at, expires_at | None)
OriginOf = Callable[[str, list[str]], Mapping[str, str]]  # (jail, addresses) -> {address: origin} of those known

SCHEMA = """
CREATE TABLE IF NOT EXISTS bans(
    id INTEGER PRIMARY KEY AUTOINCREMENT, jail TEXT NOT NULL, ip TEXT NOT NULL, key BLOB NOT NULL,
    banned_at REAL, expires_at REAL, origin TEXT NOT NULL, confirmed INTEGER NOT NULL, changed_at REAL NOT NULL,
    UNIQUE(jail, ip));
CREATE INDEX IF NOT EXISTS bans_jail_key ON bans(jail, key);
CREATE INDEX IF NOT EXISTS bans_key ON bans(key, jail);
CREATE INDEX IF NOT EXISTS bans_ip ON bans(ip, jail);
CREATE TABLE IF NOT EXISTS lifted(jail TEXT NOT NULL, ip TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY(jail, ip)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(seq INTEGER NOT NULL, gone INTEGER NOT NULL, id INTEGER NOT NULL,
    jail TEXT NOT NULL, ip TEXT NOT NULL, expires_at REAL, origin TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS changes_seq ON changes(seq);
CREATE TABLE IF NOT EXISTS positions(bouncer TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts(jail TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""
COLUMNS = "id, jail, ip, banned_at, expires_at, origin"
# The sorted pages (store/ban_order.py): a generated column per time, a missing time as +inf, and its indexes in a
# jail and across jails. Added to a file of an older bangui in place (virtual columns: nothing is rewritten).
SORT_INDEXES = {**{f"bans_jail_{column}": f"jail, {column}, key" for column in SORT_COLUMNS.values()},
                **{f"bans_{column}": f"{column}, key, jail" for column in SORT_COLUMNS.values()}}


@dataclass(frozen=True)
class ViewBan:
    id: int
    jail: str
    ip: str
    banned_at: float | None
    expires_at: float | None
    origin: str


@dataclass(frozen=True)
class Page:
    bans: list[ViewBan]
    next_cursor: str | None
    total: int


class BanView:
    """The current-bans view at `path`. Safe to share between threads (a connection per thread and process)."""

    def __init__(self, path: Path | str, clock: Clock) -> None:
        self.path = Path(path)
        self.clock = clock
        # 0600 before SQLite creates it (its -wal/-shm take the main file's mode). Never open and close an
        # EXISTING file here: closing any descriptor of a file drops every POSIX lock this process holds on it,
        # SQLite's included; another process then took its connections for the last ones, checkpointed and
        # removed the WAL under them ("database disk image is malformed", seen with the CLI beside a server).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self._connections = PerThread(self._connect)
        self.nowait = NoWait(self._connect)  # store/inline.py: a small direct change on the event loop
        self.conn().executescript(SCHEMA)
        self._add_sort_columns()

    @classmethod
    def in_dir(cls, data_dir: Path | str, clock: Clock) -> BanView:
        return cls(Path(data_dir) / FILENAME, clock)

    def _connect(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # a lost commit is re-read from fail2ban by the next sync
        bound_wal(conn, self.path)  # a WAL that cannot fill a small data disk by itself (store/base.py)
        return conn

    def _add_sort_columns(self) -> None:
        """The generated columns and indexes of the sorted pages, in a file that lacks them (once per file: every
        process opening the view checks, one adds them in a write transaction)."""
        def present(conn: sqlite3.Connection) -> bool:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'bans'")}
            return SORT_INDEXES.keys() <= names

        if present(self.conn()):
            return
        with self.transaction() as conn:
            if present(conn):
                return
            have = {row[1] for row in conn.execute("PRAGMA table_xinfo(bans)")}
            for time, column in SORT_COLUMNS.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE bans ADD COLUMN {column} REAL "
                                 f"GENERATED ALWAYS AS (ifnull({time}, {MISSING})) VIRTUAL")
            for name, columns in SORT_INDEXES.items():
                conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON bans({columns})")

    def conn(self) -> sqlite3.Connection:
        return self.nowait.conn() if self.nowait.active() else self._connections.get()

    def close(self) -> None:
        self._connections.close()
        self.nowait.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several reads."""
        conn = self.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- meta ------------------------------------------------------------------------------------------------

    def meta(self, name: str, conn: sqlite3.Connection | None = None) -> Any:
        row = (conn or self.conn()).execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _set(conn: sqlite3.Connection, name: str, value: Any) -> None:
        conn.execute("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", (name, value))

    def as_of(self) -> float | None:
        """When the read of fail2ban that the view reflects began (None: never synced)."""
        value = self.meta("as_of")
        return None if value is None else float(value)

    def signature(self) -> str | None:
        """fail2ban's counters (per jail: banned now, banned in total) at the last full read."""
        value = self.meta("signature")
        return None if value is None else str(value)

    def full_at(self) -> float:
        return float(self.meta("full_at") or 0.0)

    def jails(self) -> list[str]:
        """The jails fail2ban ran at the last full read (they are part of its signature)."""
        signature = self.signature()
        return [] if signature is None else [name for name, *_ in json.loads(signature)[1]]

    def bantime(self, jail: str) -> int | None:
        value = self.meta("bantime:" + jail)
        return None if value is None else int(value)

    # -- writes ----------------------------------------------------------------------------------------------

    def touch(self, read_at: float, signature: str | None = None) -> bool:
        """fail2ban's counters (or, with `signature`, its ban lists) are unchanged since the last full read: the
        view is as of `read_at` (False: a newer read already said so)."""
        with self.transaction() as conn:
            if read_at <= float(self.meta("as_of", conn) or 0.0):
                return False
            self._set(conn, "as_of", read_at)
            if signature is not None:
                self._set(conn, "full_at", read_at)
                self._set(conn, "signature", signature)
        return True

    def publish(self, bans: Sequence[Ban], origin_of: OriginOf, read_at: float, signature: str,
                bantimes: Mapping[str, int], lists: str = "") -> int | None:
        """Make the view what fail2ban banned when the read began at `read_at` (`bans`: every running jail's).
        A ban the view did not have gets its origin from `origin_of(jail, ips)` (the archive knows bangui's own:
        manual, blocklist, fleet; default `fail2ban`). Returns the change number written (None: nothing for
        bouncers changed, or a newer read was already published)."""
        now = self.clock()
        with self.transaction() as conn:
            if read_at <= float(self.meta("as_of", conn) or 0.0):
                return None
            before = {(jail, ip): (i, expires, confirmed, changed, origin) for i, jail, ip, expires, confirmed,
                      changed, origin in conn.execute(
                          "SELECT id, jail, ip, expires_at, confirmed, changed_at, origin FROM bans")}
            recently_lifted = {(jail, ip) for jail, ip in conn.execute(
                "SELECT jail, ip FROM lifted WHERE at >= ?", (read_at,))}
            new: list[tuple[Any, ...]] = []
            gone: list[tuple[Any, ...]] = []
            confirm: list[tuple[Any, ...]] = []
            fresh: dict[str, list[str]] = {}
            for jail, ip, banned_at, expires_at in bans:
                if (jail, ip) in recently_lifted:
                    continue
                old = before.pop((jail, ip), None)
                if old is None:
                    new.append((jail, ip, banned_at, expires_at, None))
                    fresh.setdefault(jail, []).append(ip)
                    continue
                old_id, old_end, confirmed, _, origin = old
                if not confirmed:
                    confirm.append((banned_at, expires_at, old_id))
                elif not _same_end(old_end, expires_at):  # prolonged: that decision is over, a new one starts
                    gone.append((old_id, jail, ip, old_end, origin))
                    new.append((jail, ip, banned_at, expires_at, origin))
            for (jail, ip), (old_id, old_end, confirmed, changed, origin) in before.items():
                if confirmed:
                    gone.append((old_id, jail, ip, old_end, origin))
                elif changed < read_at:  # bangui's ban that fail2ban no longer (or never) had
                    conn.execute("DELETE FROM bans WHERE id = ?", (old_id,))
            origins = {(jail, ip): origin for jail, ips in fresh.items() for ip, origin in origin_of(jail, ips).items()}
            new = [(*n[:4], n[4] or origins.get((n[0], n[1]), "fail2ban")) for n in new]
            seq = self._apply(conn, new, gone, confirm, now)
            self._set(conn, "as_of", read_at)
            self._set(conn, "full_at", read_at)
            self._set(conn, "signature", signature)
            self._set(conn, "lists", lists)
            for jail, bantime in bantimes.items():
                self._set(conn, "bantime:" + jail, bantime)
            conn.execute("DELETE FROM counts")
            conn.execute("INSERT INTO counts SELECT jail, count(*) FROM bans GROUP BY jail")
            conn.execute("DELETE FROM lifted WHERE at < ?", (now - LIFTED_KEEP_S,))
        return seq

    def _apply(self, conn: sqlite3.Connection, new: list[tuple[Any, ...]], gone: list[tuple[Any, ...]],
               confirm: list[tuple[Any, ...]], now: float) -> int | None:
        """Write a sync's result: gone decisions out, new ones in, bangui's own bans confirmed; one change."""
        seq = int(self.meta("seq", conn) or 0) + 1 if (new or gone or confirm) else None
        if gone:
            conn.executemany("DELETE FROM bans WHERE id = ?", [(g[0],) for g in gone])
            conn.executemany("INSERT INTO changes VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
                             [(seq, *g, now) for g in gone])
        if new:
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'bans'").fetchone()
            conn.executemany(
                "INSERT INTO bans(jail, ip, key, banned_at, expires_at, origin, confirmed, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                [(jail, ip, address_with_key(ip)[1], at, end, origin, now) for jail, ip, at, end, origin in new])
            # AUTOINCREMENT: every id just given is above the highest id ever given before
            conn.execute("INSERT INTO changes SELECT ?, 0, id, jail, ip, expires_at, origin, ? FROM bans "
                         "WHERE id > ?", (seq, now, last[0]))
        if confirm:
            conn.executemany("UPDATE bans SET banned_at = ?, expires_at = ?, confirmed = 1 WHERE id = ?", confirm)
            conn.execute("INSERT INTO changes SELECT ?, 0, id, jail, ip, expires_at, origin, ? FROM bans "
                         "WHERE id IN (SELECT value FROM json_each(?))",
                         (seq, now, json.dumps([c[2] for c in confirm])))
        if seq is not None:
            self._set(conn, "seq", seq)
        return seq

    def added(self, jail: str, ips: Sequence[str], origin: str) -> None:
        """bangui banned `ips` in `jail` just now: visible at once (the next sync confirms each with fail2ban's
        own times). The end is estimated from the jail's bantime as the last sync read it."""
        now = self.clock()
        with self.transaction() as conn:
            bantime = self.meta("bantime:" + jail, conn)
            end = None if bantime is None or int(bantime) < 0 else now + int(bantime)
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO bans(jail, ip, key, banned_at, expires_at, origin, confirmed, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT(jail, ip) DO NOTHING",
                [(jail, ip, address_with_key(ip)[1], now, end, origin, now) for ip in ips])
            _count(conn, jail, conn.total_changes - before)
            conn.executemany("DELETE FROM lifted WHERE jail = ? AND ip = ?", [(jail, ip) for ip in ips])

    def lifted(self, jail: str, ips: Sequence[str]) -> None:
        """bangui unbanned `ips` in `jail` just now: gone at once, for readers and for bouncers."""
        now = self.clock()
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id, jail, ip, expires_at, origin, confirmed FROM bans WHERE jail = ? AND ip IN "
                "(SELECT value FROM json_each(?))", (jail, json.dumps(list(ips)))).fetchall()
            gone = [row[:5] for row in rows if row[5]]
            conn.executemany("DELETE FROM bans WHERE id = ?", [(row[0],) for row in rows])
            _count(conn, jail, -len(rows))
            conn.executemany("INSERT OR REPLACE INTO lifted VALUES (?, ?, ?)", [(jail, ip, now) for ip in ips])
            self._apply(conn, [], gone, [], now)

    # -- reads -----------------------------------------------------------------------------------------------

    def page(self, jail: str | None = None, limit: int | None = None, cursor: str | None = None,
             prefix: str | None = None, network: str | None = None, sort: str | None = None,
             order: str | None = None) -> Page:
        """The current bans that match, `limit` at a time after `cursor` (None: all of them), in the order of
        `sort` and `order` (store/ban_order.py; the default: address order, with `prefix` alone text order)."""
        where: list[str] = []
        params: list[Any] = []
        if jail is not None:
            where.append("jail = ?")
            params.append(jail)
        if network is not None:
            lo, hi = network_range(network)
            where.append("key BETWEEN ? AND ?")
            params += [lo, hi]
        if prefix is not None:
            text = prefix_text(prefix)
            where.append("ip >= ? AND ip < ?")
            params += [text, text[:-1] + chr(ord(text[-1]) + 1)]
        ordered = Order.of(sort, order, text=prefix is not None and network is None)
        filters = " AND ".join(where) or "1"
        with self.reading() as conn:
            if prefix is None and network is None:  # kept per jail: a count of 100,000 rows took ~10 ms
                total = int(conn.execute(f"SELECT coalesce(sum(n), 0) FROM counts WHERE {filters}",
                                         params).fetchone()[0])
            else:
                total = int(conn.execute(f"SELECT count(*) FROM bans WHERE {filters}", params).fetchone()[0])
            after, after_params = "", []
            if cursor is not None:
                after, after_params = " AND " + ordered.after(), ordered.values(cursor)
            sql = (f"SELECT {COLUMNS}, {', '.join(ordered.columns)} FROM bans WHERE {filters}{after} "
                   f"ORDER BY {ordered.order_by()}" + (" LIMIT ?" if limit is not None else ""))
            rows = conn.execute(sql, params + after_params + ([limit + 1] if limit is not None else [])).fetchall()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if limit is not None else rows
        next_cursor = ordered.cursor(rows[-1][6:]) if more else None
        return Page([ViewBan(*row[:6]) for row in rows], next_cursor, total)

    def of_address(self, ip: str) -> list[ViewBan]:
        """The current bans of exactly this entry (an address, or a network banned as such), in every jail."""
        key = address_with_key(ip)[1]
        return [ViewBan(*row) for row in self.conn().execute(
            f"SELECT {COLUMNS} FROM bans WHERE key = ? ORDER BY jail", (key,))]


def _count(conn: sqlite3.Connection, jail: str, delta: int) -> None:
    conn.execute("INSERT INTO counts VALUES (?, ?) ON CONFLICT(jail) DO UPDATE SET n = n + excluded.n",
                 (jail, delta))


def signature_of(identity: str, counters: Sequence[tuple[str, int, int]]) -> str:
    """fail2ban's state as far as its counters tell: its socket's identity, and per jail (name, banned now,
    banned in total). Equal signatures: no ban was added, lifted or expired in between."""
    return json.dumps([identity, [list(c) for c in counters]])


def _same_end(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < END_TOLERANCE_S


def network_range(text: str) -> tuple[bytes, bytes]:
    if "/" not in text:
        raise InvalidInput(f"network must be a CIDR such as 192.0.2.0/24, got {text[:100]!r}",
                           code="invalid_network", details={"field": "network"})
    try:
        return key_range(text)
    except InvalidInput:
        raise InvalidInput(f"network must be a CIDR such as 192.0.2.0/24, got {text[:100]!r}",
                           code="invalid_network", details={"field": "network"}) from None


PREFIX_CHARS = frozenset("0123456789abcdef:./")


def prefix_text(prefix: str) -> str:
    text = prefix.strip().lower()
    if not text or len(text) > 100 or not set(text) <= PREFIX_CHARS:
        raise InvalidInput("prefix: the beginning of an address, such as 10.64. or 2001:db8:",
                           code="invalid_prefix", details={"field": "prefix"})
    return text
