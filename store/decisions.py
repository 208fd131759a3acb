"""The current bans as CrowdSec decisions, and each bouncer's position in their change log (issue 22).

Decisions are the confirmed bans of the one view of current bans (store/ban_view.py, kept by the leader's
`decisions` job, jobs/decisions.py) in the decisions' jails (BANGUI_DECISIONS_JAILS, default all); a bouncer's
poll (handlers/decisions.py) answers from here only, never from fail2ban. The positions live in the view's file,
so any worker, after any restart, answers a bouncer's next poll from where its previous poll left it.

- A poll answers the changes after the bouncer's position (`new` and `deleted` merged by decision id: a decision
  added and lifted in between is neither).
- A bouncer whose next change was trimmed (it stopped polling for longer than the retention) is resynced: every
  current decision in `new`, and in `deleted` every decision lifted or expired since its position: the lifted
  ones are kept (`gone` rows) as long as a known bouncer has not passed them, at most `GONE_KEEP_S`. So a resync
  never leaves a bouncer enforcing a ban that ended while it was away (issue 22).
- `startup=true`, or a bouncer with no position: every current decision, nothing deleted (as the LAPI answers).
- Fleet mode: each host keeps its own view and positions; a bouncer whose previous poll another host answered
  (its record in the fleet's store says which) is resynced here: every current decision in `new`, and in
  `deleted` what this host saw end since that poll (less `MOVED_MARGIN_S`): the shared jails hold the same bans
  on every host, and bouncers delete by value. This host keeps what ended since the fleet's oldest bouncer poll
  (the bouncers' records are the fleet's), so a bouncer away longer than the retention is still told.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from store.ban_view import BanView

RETENTION_S = 3600.0
GONE_KEEP_S = 30 * 86400.0  # a bouncer away longer than this may keep a lifted ban (its key should be deleted)
TRIM_EVERY_S = 60.0
# A bouncer moving between fleet hosts: the other host's view may have seen a fleet unban this much earlier or later
MOVED_MARGIN_S = 60.0
Row = list[Any]  # [id, jail, ip, expires_at | None, origin]
CURRENT = "SELECT id, jail, ip, expires_at, origin FROM bans WHERE confirmed = 1"


class Decisions:
    def __init__(self, view: BanView, jails: Sequence[str] = (), retention_s: float = RETENTION_S) -> None:
        self.view = view
        self.jails = [j for j in jails if j]
        self.retention_s = retention_s

    def _in_jails(self) -> tuple[str, list[Any]]:
        if not self.jails:
            return "", []
        return " AND jail IN (SELECT value FROM json_each(?))", [json.dumps(self.jails)]

    def seq(self) -> int:
        return int(self.view.meta("seq") or 0)

    def count(self) -> int:
        only, params = self._in_jails()
        return int(self.view.conn().execute(f"SELECT count(*) FROM bans WHERE confirmed = 1{only}",
                                            params).fetchone()[0])

    def rows(self, conn: sqlite3.Connection | None = None) -> list[Row]:
        only, params = self._in_jails()
        return [list(row) for row in (conn or self.view.conn()).execute(f"{CURRENT}{only} ORDER BY id", params)]

    def pull(self, bouncer: str, startup: bool, moved_since: float | None = None) -> tuple[list[Row], list[Row]]:
        """(new, deleted) for `bouncer` since its previous pull (see the module docstring), and move its
        position. One transaction: the answer and the new position agree. `moved_since` (fleet mode): the time of
        the bouncer's previous pull, answered by another host, whose positions this view does not know."""
        new, deleted, _ = self.answer(bouncer, startup, moved_since)
        return new, deleted

    def answer(self, bouncer: str, startup: bool, moved_since: float | None = None,
               ) -> tuple[list[Row], list[Row], list[Row]]:
        """`pull`, with the current decisions of every address the answer names (`current`, from the same
        transaction): a bouncer deletes by value, so a lifted decision whose address another jail still bans
        must not reach it as deleted (handlers/decisions.py `per_value`)."""
        conn = self.view.conn()
        row = None if startup else conn.execute("SELECT seq FROM positions WHERE bouncer = ?", (bouncer,)).fetchone()
        position = None if row is None else int(row[0])
        moved = moved_since is not None and not startup
        if position is not None and position == self.seq() and not moved:  # idle: two small reads, no write
            return [], [], []
        only, params = self._in_jails()
        everything = True  # `new` holds every current decision (startup, resync): it is `current` too
        with self.view.transaction() as conn:
            seq = int(self.view.meta("seq", conn) or 0)
            trimmed = int(self.view.meta("trimmed", conn) or 0)
            if moved:  # a resync, with what this host saw end since the other host's answer (the same shared bans)
                new = self.rows(conn)
                deleted = [list(r) for r in conn.execute(
                    f"SELECT id, jail, ip, expires_at, origin FROM changes WHERE gone = 1 AND at >= ?{only} "
                    "ORDER BY seq", [float(moved_since or 0.0) - MOVED_MARGIN_S, *params])]
            elif position is None or position > seq:  # startup, unknown, or a view that was started afresh
                new, deleted = self.rows(conn), []
            elif position >= trimmed:
                new_by_id: dict[int, Row] = {}
                deleted_by_id: dict[int, Row] = {}
                for gone, *change in conn.execute(
                        f"SELECT gone, id, jail, ip, expires_at, origin FROM changes WHERE seq > ?{only} "
                        "ORDER BY seq", [position, *params]):
                    if not gone:
                        new_by_id[change[0]] = change
                    elif new_by_id.pop(change[0], None) is None:
                        deleted_by_id[change[0]] = change
                new, deleted = list(new_by_id.values()), list(deleted_by_id.values())
                everything = False
            else:  # away longer than the retention: a full resync, with what ended meanwhile
                new = self.rows(conn)
                deleted = [list(r) for r in conn.execute(
                    f"SELECT id, jail, ip, expires_at, origin FROM changes WHERE gone = 1 AND seq > ?{only} "
                    "ORDER BY seq", [position, *params])]
            current = new if everything else self._current_of({r[2] for r in new} | {r[2] for r in deleted}, conn)
            conn.execute("INSERT OR REPLACE INTO positions VALUES (?, ?)", (bouncer, seq))
        return new, deleted, current

    def _current_of(self, addresses: set[str], conn: sqlite3.Connection) -> list[Row]:
        if not addresses:
            return []
        only, params = self._in_jails()
        return [list(r) for r in conn.execute(
            f"{CURRENT} AND ip IN (SELECT value FROM json_each(?)){only}", [json.dumps(sorted(addresses)), *params])]

    def forget(self, bouncer: str) -> None:
        with self.view.transaction() as conn:
            conn.execute("DELETE FROM positions WHERE bouncer = ?", (bouncer,))

    def trim_due(self) -> bool:
        return self.view.clock() - float(self.view.meta("trimmed_at") or 0.0) >= TRIM_EVERY_S

    def trim(self, force: bool = False, fleet_pulled_since: float | None = None) -> None:
        """Drop changes older than the retention (new decisions) and lifted ones every known bouncer has passed
        (or older than GONE_KEEP_S). Runs at most every TRIM_EVERY_S unless `force`. `fleet_pulled_since` (fleet
        mode): the oldest last poll of the fleet's bouncers, which this host's positions do not all know: lifted
        ones since then stay, for a bouncer that comes back through this host (`pull`'s `moved_since`)."""
        now = self.view.clock()
        with self.view.transaction() as conn:
            if not force and now - float(self.view.meta("trimmed_at", conn) or 0.0) < TRIM_EVERY_S:
                return
            BanView._set(conn, "trimmed_at", now)
            cutoff = conn.execute("SELECT max(seq) FROM changes WHERE at < ?", (now - self.retention_s,)).fetchone()[0]
            if cutoff is None:
                return
            slowest = conn.execute("SELECT min(seq) FROM positions").fetchone()[0]
            passed = cutoff if slowest is None else min(cutoff, int(slowest))
            kept_from = now if fleet_pulled_since is None else fleet_pulled_since - MOVED_MARGIN_S
            conn.execute("DELETE FROM changes WHERE seq <= ? AND (gone = 0 OR (seq <= ? AND at < ?) OR at < ?)",
                         (cutoff, passed, kept_from, now - GONE_KEEP_S))
            BanView._set(conn, "trimmed", max(int(cutoff), int(self.view.meta("trimmed", conn) or 0)))


def go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()` for whole seconds ("3h59m12s", "1m0s", "5s"), as the LAPI writes durations."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
