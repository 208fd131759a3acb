"""The current bans as CrowdSec decisions, and each bouncer's position in their change log (issue 22).

The leader's `decisions` job (jobs/decisions.py) publishes what fail2ban bans now; a bouncer's poll
(handlers/decisions.py) answers from here only, never from fail2ban. All keys live in the shared store, so any
worker, after any restart, answers a bouncer's next poll from where its previous poll left it.

Records:
- `decisions:current` -> {"seq", "next_id", "rows": [[id, jail, ip, expires_at | None, origin], ...]}: the bans
  in force after change `seq`. An id is given at first sight of a (jail, ip) ban and kept while it lasts.
- `decisions:seq` -> the last change's number (an idle poll reads only this and its position).
- `decisions:change:<seq>` -> {"new": rows, "deleted": rows}, expiring after `retention_s`.
- `decisions:pos:<bouncer>` -> the change number that bouncer has seen.
- `decisions:count` -> how many decisions are current (for /metrics, without reading every row).
- `decisions:digest` -> a digest of the ban list last published: an unchanged list (most runs) costs the job one
  small read instead of decoding every row twice.

A publish writes all of these in one transaction (the job runs it fenced). A poll whose next change has expired
(the bouncer stopped polling for longer than the retention) gets every current ban, as at startup: never a gap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import diskcache

from store.base import Clock

CURRENT = "decisions:current"
SEQ = "decisions:seq"
CHANGE = "decisions:change:"
POSITION = "decisions:pos:"
COUNT = "decisions:count"
DIGEST = "decisions:digest"
RETENTION_S = 3600.0
Row = list[Any]  # [id, jail, ip, expires_at | None, origin]
Ban = tuple[str, str, float | None]  # (jail, ip, expires_at | None)


class Decisions:
    def __init__(self, cache: diskcache.Cache, clock: Clock, retention_s: float = RETENTION_S) -> None:
        self.cache = cache
        self.clock = clock
        self.retention_s = retention_s

    # -- the leader's side -------------------------------------------------------------------------------------

    def current(self) -> dict[str, Any]:
        state: dict[str, Any] | None = self.cache.get(CURRENT)
        return state or {"seq": 0, "next_id": 1, "rows": []}

    def unchanged(self, bans: Sequence[Ban]) -> bool:
        """Is `bans` the list last published (same addresses, same ends)?"""
        return self.cache.get(DIGEST) == ban_digest(bans)

    def publish(self, bans: Sequence[Ban], origins: Mapping[tuple[str, str], str]) -> int:
        """Make `bans` the current decisions (call it inside a transaction: the job runs it fenced). New bans get
        an id and their origin from `origins` (default `fail2ban`). Returns the change number (unchanged: none)."""
        state = self.current()
        before = {(row[1], row[2]): row for row in state["rows"]}
        rows: list[Row] = []
        new: list[Row] = []
        next_id = state["next_id"]
        for jail, ip, expires_at in bans:
            row = before.pop((jail, ip), None)
            if row is None:
                row = [next_id, jail, ip, expires_at, origins.get((jail, ip), "fail2ban")]
                next_id += 1
                new.append(row)
            elif row[3] != expires_at:  # prolonged (e.g. a re-ban): same decision, new end
                row = [row[0], jail, ip, expires_at, row[4]]
            rows.append(row)
        deleted = list(before.values())
        changed = bool(new or deleted)
        seq = state["seq"] + 1 if changed else state["seq"]
        if changed or rows != state["rows"]:
            self.cache.set(CURRENT, {"seq": seq, "next_id": next_id, "rows": rows})
        self.cache.set(DIGEST, ban_digest(bans))
        if changed:
            self.cache.set(CHANGE + str(seq), {"new": new, "deleted": deleted}, expire=self.retention_s)
            self.cache.set(SEQ, seq)
            self.cache.set(COUNT, len(rows))
        return seq

    def count(self) -> int:
        return int(self.cache.get(COUNT, 0))

    # -- a bouncer's side --------------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        rows: list[Row] = self.current()["rows"]
        return rows

    def pull(self, bouncer: str, startup: bool) -> tuple[list[Row], list[Row]]:
        """(new, deleted) for `bouncer` since its previous pull (everything current at startup, or when its
        position is unknown or older than the retained changes), and move its position."""
        position = None if startup else self.cache.get(POSITION + bouncer)
        seq = int(self.cache.get(SEQ, 0))
        if position == seq:
            return [], []
        new: dict[int, Row] = {}
        deleted: dict[int, Row] = {}
        if position is not None and 0 <= position < seq:
            for number in range(position + 1, seq + 1):
                change = self.cache.get(CHANGE + str(number))
                if change is None:  # expired: this bouncer was away too long
                    break
                for row in change["new"]:
                    new[row[0]] = row
                for row in change["deleted"]:
                    if new.pop(row[0], None) is None:  # added and gone within the window: neither
                        deleted[row[0]] = row
            else:
                self.cache.set(POSITION + bouncer, seq)
                return list(new.values()), list(deleted.values())
        state = self.current()  # a full resync, from one consistent record
        self.cache.set(POSITION + bouncer, state["seq"])
        return state["rows"], []

    def forget(self, bouncer: str) -> None:
        self.cache.delete(POSITION + bouncer)


def ban_digest(bans: Sequence[Ban]) -> str:
    return hashlib.blake2b(repr(sorted(bans, key=lambda b: (b[0], b[1]))).encode(), digest_size=16).hexdigest()


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
