"""The ban archive's schema, its migrations, and the address keys its CIDR queries rely on.

Contracts:
- The schema version is `PRAGMA user_version`; `MIGRATIONS[i]` takes the database from version i to i+1.
  Migrations only ever get appended (never edited once released); `migrate()` applies the missing ones in one
  write transaction, so several processes opening the archive at once migrate it exactly once.
- An archive written by a newer bangui (user_version > len(MIGRATIONS)) is refused, not guessed at.
- `address_with_key()` maps every address to a BLOB key that sorts like the address (family byte + packed
  address; IPv4-mapped IPv6 counts as IPv4) so that a CIDR is one `ipkey BETWEEN lo AND hi` range on an index;
  strings that are not addresses (fail2ban's `banip` accepts anything) get keys after every address, so they
  never fall inside a CIDR range.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sqlite3
from typing import Any

from errors import InvalidInput

log = logging.getLogger("bangui.history")
MIGRATION_WAIT_MS = 15 * 60 * 1000  # a 10-million-event archive's rebuild, with room to spare
ORIGINS = ("auto", "manual", "blocklist", "fleet")
OWN_ORIGINS = ("manual", "blocklist", "fleet")  # the bans bangui made itself (recorded before the sync sees them)
DAY_S = 86400
WEEK_S = 7 * DAY_S
WEEK_OFFSET_S = 4 * DAY_S  # 1970-01-01 was a Thursday: weeks start on Monday 1970-01-05
EVENTS = ("ban", "unban")
# Addresses with at least this many ban events in the archive are in the partial index agg_ip_many (version 6).
# Released in that index's definition: never change it (a new value needs a new index and migration).
MANY_BANS = 32

# Keys: b"\x04" + 4 bytes (IPv4), b"\x06" + 16 bytes (IPv6), b"\xff" + text (not an address). Families never
# interleave, so a CIDR is one BETWEEN range; short IPv4 keys keep the unique index a quarter smaller than
# IPv4-mapped 16-byte keys would (measured: faster sync inserts and top-IP scans).
_V4 = b"\x04"
_V6 = b"\x06"
_NOT_AN_IP = b"\xff"


class SchemaError(Exception):
    """The archive file cannot be used with this version of bangui."""


# Each entry migrates from version i to i+1; released versions are never edited (version 1 was committed before
# version 2 existed, so its changes are a step of their own). Why these indexes (see bench/README.md for the
# measurements):
# - events_key: uniqueness (idempotent sync), the per-IP timeline, CIDR ranges, the dedupe window lookup, and
#   the top-IPs scan when agg_ip cannot decide (it covers jail/at/event, so the scan never touches the table).
# - events_at / events_jail_at / events_own_at: newest-first pages per filter (rowid is implicit in every
#   index, so `ORDER BY at DESC, id DESC` needs no sort).
# - agg_day / agg_week_country / agg_ip: ban events per (day, jail, origin), per (week, jail, origin, country)
#   and per address, so 365d stats read a few thousand rows instead of every event. Kept exact by every write in
#   store.history, a few statements per batch (see the functions at the end): per-row triggers cost the sync a
#   fifth of its speed.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL CHECK (event IN ('ban', 'unban')),
            jail TEXT NOT NULL,
            ip TEXT NOT NULL,
            ipkey BLOB NOT NULL,
            at REAL NOT NULL,
            bantime INTEGER,
            bancount INTEGER,
            data TEXT,
            -- fail2ban's `data` is archived as it wrote it ({"matches": [...], "failures": N}, or null, or
            -- anything): decoding it per row cost the sync a third of its throughput; these virtual columns
            -- decode it when read (a page at a time). The nested CASEs: json_type() raises on malformed JSON.
            failures INTEGER GENERATED ALWAYS AS (CASE WHEN json_valid(data) THEN
                CASE json_type(data, '$.failures') WHEN 'integer' THEN json_extract(data, '$.failures') END
            END) VIRTUAL,
            matches TEXT GENERATED ALWAYS AS (CASE WHEN json_valid(data) THEN
                CASE json_type(data, '$.matches') WHEN 'array' THEN json_extract(data, '$.matches') END
            END) VIRTUAL,
            origin TEXT NOT NULL CHECK (origin IN ('auto', 'manual', 'blocklist')),
            actor TEXT,
            country TEXT
        )""",
        "CREATE UNIQUE INDEX events_key ON events(ipkey, jail, at, event)",
        # country rides along in the time index (no index of its own: each index costs the sync ~2 us a row),
        # so a country filter scans index entries newest first without reading the table.
        "CREATE INDEX events_at ON events(at, country)",
        "CREATE INDEX events_jail_at ON events(jail, at)",
        # Partial: auto rows (the vast majority) are not in it, which keeps the sync's inserts cheap. Queries that
        # should use it repeat its WHERE literally (SQLite's rule for partial indexes).
        "CREATE INDEX events_own_at ON events(origin, at) WHERE origin != 'auto'",
        """CREATE TABLE agg_day (
            day INTEGER NOT NULL, jail TEXT NOT NULL, origin TEXT NOT NULL, bans INTEGER NOT NULL,
            PRIMARY KEY (day, jail, origin)
        ) WITHOUT ROWID""",
        # Weeks (Monday-aligned, as the 365d trend buckets): a country dimension per day multiplied the rows.
        """CREATE TABLE agg_week_country (
            week INTEGER NOT NULL, jail TEXT NOT NULL, origin TEXT NOT NULL, country TEXT NOT NULL,
            bans INTEGER NOT NULL,
            PRIMARY KEY (week, jail, origin, country)
        ) WITHOUT ROWID""",
        # High-water marks of the fail2ban sync: one per (source, jail); source names the fail2ban DB file.
        """CREATE TABLE sync_marks (
            source TEXT NOT NULL, jail TEXT NOT NULL, hwm REAL NOT NULL, updated REAL NOT NULL,
            PRIMARY KEY (source, jail)
        ) WITHOUT ROWID""",
    ),
    (
        # Version 2 (see bench/README.md for the measurements):
        # - failures/matches are no longer generated columns: SQLite (3.40) evaluates VIRTUAL columns on every
        #   insert too (verified with a counting function), so each insert parsed the JSON up to six times:
        #   ~1.3 us of the sync's ~6 us per row. The queries decode `data` themselves, for the rows they return
        #   (store.history_query.FAILURES / MATCHES, the same expressions). Dropping a VIRTUAL column rewrites
        #   only the schema, not the rows.
        "ALTER TABLE events DROP COLUMN failures",
        "ALTER TABLE events DROP COLUMN matches",
        # Ban events per address over everything archived: an upper bound of any window's count, so the 365-day
        # top IPs count exactly only the few hundred addresses that can still win (store.history_query._top_ips)
        # instead of scanning a million index entries. Kept exact by `aggregate`, like the tables above.
        """CREATE TABLE agg_ip (
            ipkey BLOB PRIMARY KEY, bans INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "INSERT INTO agg_ip SELECT ipkey, count(*) FROM events WHERE event = 'ban' GROUP BY ipkey",
    ),
    (
        # Version 3 (issue 8 item 9): when a ban bangui made itself STARTED. `at` is when fail2ban answered; a bulk
        # ban runs the jail's actions address by address, so fail2ban's own row of the same ban (which the sync
        # merges into ours) may carry any time in [since, at]: one timestamp and a 2 s window counted a
        # 700-address ban twice. NULL for fail2ban's rows and for older records (then `at` is both ends).
        "ALTER TABLE events ADD COLUMN since REAL",
    ),
    (
        # Version 4 (issue 14): origin `fleet` (a ban or unban applied on this host because the fleet asked: a fleet
        # ban, or another host's automatic ban in a shared jail) and the host it came from. SQLite cannot change a
        # CHECK constraint in place, so `events` is rebuilt (SQLite's documented 12-step procedure, steps 4-8):
        # copied row by row with its ids (the aggregates and API cursors refer to them), then its indexes made
        # again after the copy (cheaper than updating them row by row). Aggregates have no CHECK: untouched.
        # All of it runs in migrate()'s one transaction: a crash leaves version 3 as it was.
        """CREATE TABLE events_v4 (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL CHECK (event IN ('ban', 'unban')),
            jail TEXT NOT NULL,
            ip TEXT NOT NULL,
            ipkey BLOB NOT NULL,
            at REAL NOT NULL,
            bantime INTEGER,
            bancount INTEGER,
            data TEXT,
            origin TEXT NOT NULL CHECK (origin IN ('auto', 'manual', 'blocklist', 'fleet')),
            actor TEXT,
            country TEXT,
            since REAL,
            -- origin fleet: the host whose ban (or fleet ban/unban) this is; NULL for every other origin.
            source_host TEXT
        )""",
        "INSERT INTO events_v4 (id, event, jail, ip, ipkey, at, bantime, bancount, data, origin, actor, country, "
        "since) SELECT id, event, jail, ip, ipkey, at, bantime, bancount, data, origin, actor, country, since "
        "FROM events ORDER BY id",
        "DROP TABLE events",
        "ALTER TABLE events_v4 RENAME TO events",
        "CREATE UNIQUE INDEX events_key ON events(ipkey, jail, at, event)",
        "CREATE INDEX events_at ON events(at, country)",
        "CREATE INDEX events_jail_at ON events(jail, at)",
        "CREATE INDEX events_own_at ON events(origin, at) WHERE origin != 'auto'",
    ),
    (
        # Version 5 (issue 18 section 6): the bans the archive held open after the last reconcile with fail2ban's
        # current bans (store/history_reconcile.py), so that the next one checks those and the newer ban events
        # only, not every ban ever archived.
        """CREATE TABLE sync_open (
            ipkey BLOB NOT NULL, jail TEXT NOT NULL,
            PRIMARY KEY (ipkey, jail)
        ) WITHOUT ROWID""",
    ),
    (
        # Version 6 (issue 25 item 4): the addresses banned most, in order, for the year's top IPs
        # (store/history_stats.py `_top_ips_bounded`): finding the 257 biggest totals scanned all of agg_ip (a
        # million addresses in a 10-million-event archive: 70-190 ms). Partial, so that the sync's upserts of
        # the many addresses banned a few times never touch it; building it reads agg_ip once (~1 s there).
        f"CREATE INDEX agg_ip_many ON agg_ip(bans) WHERE bans >= {MANY_BANS}",
        # The unbans alone (a few percent of the events), for the `ends_at` of every ban a page or the CSV export
        # returns (store/history_query.py): looked up in the unique index, each ban's seek read that address's
        # later events in the jail from a 10-million-entry index, ~20 us a row in the export. Partial: the sync's
        # ban rows never touch it. Building it reads the events table once (~1 min for 10 million events).
        "CREATE INDEX events_unban ON events(ipkey, jail, at) WHERE event = 'unban'",
    ),
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the archive to the newest schema; returns the version. The connection must be in autocommit mode."""
    target = len(MIGRATIONS)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == target:
        return version
    if 0 < version < 4:
        log.warning("history archive: migrating schema version %d to %d (version 4 rebuilds the events table: "
                    "about 12 s per million events)", version, target)
    # Another process may be migrating a large archive (seconds): wait for its lock rather than fail after the
    # usual busy timeout, then find the work done.
    busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout = {MIGRATION_WAIT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {busy}")
    try:
        # Re-read under the write lock: another process may have migrated while we waited for it.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise SchemaError(f"the history archive has schema version {version}, newer than this bangui "
                              f"understands ({target}); upgrade bangui or move the archive away")
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


def address_with_key(text: str) -> tuple[str, bytes, bool]:
    """(canonical text, sort key, is an address) of an address as fail2ban reports it.

    IPv4-mapped IPv6 addresses become plain IPv4 (fail2ban may report either form for the same client).
    """
    raw = text.strip()
    try:  # the common case, ~10x faster than ipaddress (the sync normalises every row)
        packed = socket.inet_pton(socket.AF_INET, raw)
        return socket.inet_ntop(socket.AF_INET, packed), _V4 + packed, True
    except OSError:
        pass
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return raw, _NOT_AN_IP + raw.encode("utf-8", "surrogatepass"), False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr), _V4 + addr.packed, True
    return str(addr), _V6 + addr.packed, True


def key_range(ip_or_cidr: str) -> tuple[bytes, bytes]:
    """The inclusive (lo, hi) key range of an address or a CIDR; raises InvalidInput for anything else."""
    text = ip_or_cidr.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(f"ip must be an address or a CIDR such as 192.0.2.0/24, got {text!r}",
                           details={"field": "ip"}) from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None \
            and net.prefixlen >= 96:
        # ::ffff:192.0.2.0/120 is the same range as 192.0.2.0/24: addresses are stored in IPv4 form anyway.
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    family = _V4 if net.version == 4 else _V6
    return family + net.network_address.packed, family + net.broadcast_address.packed


# ---- upkeep of the aggregate tables (every write path of store.history calls these) ----


def next_id(conn: sqlite3.Connection) -> int:
    """The id the next insert gets (rowids grow by max + 1): rows with id >= it are this transaction's."""
    return int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0])


def aggregate(conn: sqlite3.Connection, where: str, params: tuple[Any, ...], sign: int) -> None:
    """Add (sign +1) or take away (-1) the ban events matching `where` in the aggregate tables.

    Three statements, each sorting the rows it reads (grouping once by (day, week, jail, origin, country) into a
    temp table and rolling that up twice saved the sync only 2-3 %: not worth the extra table).
    """
    conn.execute(
        f"INSERT INTO agg_day SELECT CAST(at / {DAY_S} AS INTEGER), jail, origin, {int(sign)} * count(*) "
        f"FROM events WHERE event = 'ban' AND {where} GROUP BY 1, 2, 3 "
        "ON CONFLICT DO UPDATE SET bans = bans + excluded.bans", params)
    conn.execute(
        f"INSERT INTO agg_week_country SELECT CAST((at - {WEEK_OFFSET_S}) / {WEEK_S} AS INTEGER), jail, origin, "
        f"country, {int(sign)} * count(*) FROM events WHERE event = 'ban' AND country IS NOT NULL AND {where} "
        "GROUP BY 1, 2, 3, 4 ON CONFLICT DO UPDATE SET bans = bans + excluded.bans", params)
    # `+ipkey`: grouping by the bare column let the planner scan the whole (ipkey, ...) index for its order
    # rather than read the few rows `where` selects (measured: 70 ms per record_ban on a 1M-event archive).
    conn.execute(
        f"INSERT INTO agg_ip SELECT ipkey, {int(sign)} * count(*) FROM events WHERE event = 'ban' AND {where} "
        "GROUP BY +ipkey ON CONFLICT DO UPDATE SET bans = bans + excluded.bans", params)


def drop_empty(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> None:
    """Delete the aggregate rows that `aggregate(where, -1)` brought to zero (before those events are deleted:
    only the days, weeks and addresses of those events are looked at; scanning the whole per-week country table
    cost each purge batch ~10 ms on a year of 20 jails)."""
    lo, hi = conn.execute(f"SELECT min(at), max(at) FROM events WHERE {where}", params).fetchone()
    if lo is None:
        return
    # int() truncates as aggregate()'s CAST does (also before 1970-01-05, where it is not the floor).
    conn.execute("DELETE FROM agg_day WHERE day BETWEEN ? AND ? AND bans <= 0", (int(lo / DAY_S), int(hi / DAY_S)))
    conn.execute("DELETE FROM agg_week_country WHERE week BETWEEN ? AND ? AND bans <= 0",
                 (int((lo - WEEK_OFFSET_S) / WEEK_S), int((hi - WEEK_OFFSET_S) / WEEK_S)))
    conn.execute(f"DELETE FROM agg_ip WHERE ipkey IN (SELECT ipkey FROM events WHERE {where}) AND bans <= 0",
                 params)
