"""Reconcile the archive's open bans with fail2ban's current bans (issue 18 section 6).

fail2ban bans and unbans without writing a new `bans` row: a jail start (or a fail2ban restart) restores the
unexpired bans of its database ("Restore Ban"), a jail stop lifts them, `fail2ban-client unbanip` deletes the
rows. The row-copying sync cannot see those, so after each sync that found fail2ban's database changed, the
archive is made to agree with fail2ban's current bans (`bips` rows of jails not stopped, not expired: what a jail
start restores):
- a current ban without an open ban in the archive gets a ban event: fail2ban's row as it is when the archive
  never had it, else a restore (origin auto, actor `RESTORED_BY`, at = now, `since` = fail2ban's original ban
  time, bantime = what is left of it, so that it ends when fail2ban's ban ends);
- an open ban in the archive that fail2ban no longer has gets an unban event (origin auto, actor `LIFTED_BY`),
  unless it is younger than `GRACE_S` (fail2ban writes a ban to its database after it answers the ban call):
  then it stays pending and the next sync looks again.

Cheap when little changes: the bans the archive held open after the last reconcile are kept in `sync_open`
(= fail2ban's current bans then), so the candidates for an unban are those plus the ban events added since
(`sync_marks` 'reconcile'/'#event-id'), each checked with one index seek; nothing scans the whole archive
except the first reconcile of an archive.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from store.history_schema import aggregate, next_id

RESTORED_BY = "fail2ban (restored)"
LIFTED_BY = "fail2ban"
GRACE_S = 30.0
MARK_SOURCE, MARK_JAIL = "reconcile", "#event-id"

# The latest event of (ipkey, jail) (an unban at the same time as a ban ends it), as in history_query's ends_at.
_LATEST = ("(SELECT l.id FROM main.events l WHERE l.ipkey = {key} AND l.jail = {jail} "
           "ORDER BY l.at DESC, l.event DESC LIMIT 1)")
_OPEN = "e.event = 'ban' AND (e.bantime IS NULL OR e.bantime < 0 OR e.at + e.bantime > :now)"
_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS cur (key BLOB NOT NULL, jail TEXT NOT NULL, ip TEXT, at, bantime, bancount, "
    "data, country TEXT, PRIMARY KEY (key, jail)) WITHOUT ROWID",
    "CREATE TEMP TABLE IF NOT EXISTS cand (key BLOB NOT NULL, jail TEXT NOT NULL, last INTEGER, "
    "PRIMARY KEY (key, jail)) WITHOUT ROWID",
)


@dataclass(frozen=True, slots=True)
class Reconciled:
    restored: int  # ban events added for bans fail2ban has and the archive held closed
    lifted: int  # unban events added for open bans fail2ban no longer has
    pending: int  # open bans fail2ban does not have (yet), too young to close


def keep_current(conn: sqlite3.Connection) -> int:
    """Copy fail2ban's current bans from an ImportSession's `temp.stage` (addresses mapped in `temp.ipmap`) to
    `temp.cur`, before the import takes merged rows out of the stage; returns how many."""
    for statement in _DDL:
        conn.execute(statement)
    conn.execute("DELETE FROM temp.cur")
    # One row per (address, jail): two texts of one address (IPv4-mapped) keep the later ban.
    return conn.execute(
        "INSERT OR REPLACE INTO temp.cur SELECT m.key, s.jail, m.ip, s.at, s.bantime, s.bancount, s.data, "
        "m.country FROM temp.stage s CROSS JOIN temp.ipmap m ON m.raw = s.ip ORDER BY s.at").rowcount


def drop_agreeing(conn: sqlite3.Connection, now: float) -> None:
    """Take out of `temp.stage` the current bans the archive already holds open: only the others (rows the
    archive lacks, bans it holds closed) go through the import, so a reconcile with 100,000 current bans does
    not re-import them all."""
    latest = _LATEST.format(key="m.key", jail="s.jail")
    conn.execute(
        "DELETE FROM temp.stage WHERE rowid IN (SELECT s.rowid FROM temp.stage s CROSS JOIN temp.ipmap m "
        f"ON m.raw = s.ip WHERE EXISTS (SELECT 1 FROM main.events e WHERE e.id = {latest} AND {_OPEN}))",
        {"now": now})


def reconcile_current(conn: sqlite3.Connection, now: float) -> Reconciled:
    """Inside the caller's write transaction on the same connection, after `keep_current` and the import of
    those rows: add the restores and unbans, keep `sync_open` and the event-id mark."""
    conn.execute("DELETE FROM temp.cand")
    args = {"now": now, "grace": GRACE_S, "restored": RESTORED_BY, "lifted": LIFTED_BY}
    first_new = next_id(conn)
    latest = _LATEST.format(key="c.key", jail="c.jail")
    restored = conn.execute(
        "INSERT OR IGNORE INTO main.events (event, jail, ip, ipkey, at, since, bantime, bancount, data, origin, "
        "actor, country) SELECT 'ban', c.jail, c.ip, c.key, :now, c.at, CASE WHEN c.bantime IS NULL THEN NULL "
        "WHEN c.bantime < 0 THEN -1 ELSE max(0, CAST(round(c.at + c.bantime - :now) AS INTEGER)) END, "
        "c.bancount, c.data, 'auto', :restored, c.country FROM temp.cur c "
        f"WHERE NOT EXISTS (SELECT 1 FROM main.events e WHERE e.id = {latest} AND {_OPEN})", args).rowcount
    if restored:
        aggregate(conn, "id >= ?", (first_new,), +1)
    row = conn.execute("SELECT hwm FROM main.sync_marks WHERE source = ? AND jail = ?",
                       (MARK_SOURCE, MARK_JAIL)).fetchone()
    since_id = int(row[0]) if row else 0
    conn.execute(
        "INSERT OR IGNORE INTO temp.cand SELECT k.ipkey, k.jail, "
        f"{_LATEST.format(key='k.ipkey', jail='k.jail')} FROM (SELECT ipkey, jail FROM main.sync_open UNION "
        "SELECT ipkey, jail FROM main.events WHERE id > :since AND event = 'ban' "
        "AND (bantime IS NULL OR bantime < 0 OR at + bantime > :now)) k "
        "WHERE NOT EXISTS (SELECT 1 FROM temp.cur c WHERE c.key = k.ipkey AND c.jail = k.jail)",
        {**args, "since": since_id})
    lifted = conn.execute(
        "INSERT OR IGNORE INTO main.events (event, jail, ip, ipkey, at, origin, actor, country) "
        "SELECT 'unban', e.jail, e.ip, e.ipkey, :now, 'auto', :lifted, e.country "
        f"FROM temp.cand c JOIN main.events e ON e.id = c.last WHERE {_OPEN} AND e.at <= :now - :grace",
        args).rowcount
    # What stays open: fail2ban's current bans and the pending ones; the rest of the candidates is settled.
    conn.execute(f"DELETE FROM temp.cand WHERE last IS NULL OR NOT EXISTS (SELECT 1 FROM main.events e "
                 f"WHERE e.id = cand.last AND {_OPEN} AND e.at > :now - :grace)", args)
    pending = conn.execute("SELECT count(*) FROM temp.cand").fetchone()[0]
    conn.execute("DELETE FROM main.sync_open WHERE NOT EXISTS (SELECT 1 FROM temp.cur c WHERE c.key = "
                 "sync_open.ipkey AND c.jail = sync_open.jail) AND NOT EXISTS (SELECT 1 FROM temp.cand p "
                 "WHERE p.key = sync_open.ipkey AND p.jail = sync_open.jail)")
    conn.execute("INSERT OR IGNORE INTO main.sync_open SELECT key, jail FROM temp.cur UNION "
                 "SELECT key, jail FROM temp.cand")
    conn.execute("INSERT INTO main.sync_marks (source, jail, hwm, updated) VALUES (?, ?, "
                 "(SELECT coalesce(max(id), 0) FROM main.events), ?) ON CONFLICT DO UPDATE SET hwm = excluded.hwm, "
                 "updated = excluded.updated", (MARK_SOURCE, MARK_JAIL, now))
    return Reconciled(restored, lifted, int(pending))
