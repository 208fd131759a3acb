"""Failed-login limits shared by every worker and process: exact under concurrency.

Each login attempt first *reserves* a slot in both its counters inside one store transaction (SQLite
BEGIN IMMEDIATE, so processes serialise): per client address (`max_failures`, whatever the usernames
tried) and per username across all addresses (`user_max_failures`, much higher). If either is full
within its window, the attempt is refused before the password is even checked. A successful login
gives the address's slot back and clears the username's counter. So N concurrent wrong passwords from
one address admit exactly `max_failures` checks, never more.

Trade-off (issue 8): a per-username limit as low as the per-address one let anyone lock the admin out
from anywhere (5 failures from 8 addresses). Now a stranger needs `user_max_failures` failures in one
window (from at least user_max_failures / max_failures addresses) to lock an account, and a
distributed guesser gets at most that many guesses per window against it. Usernames are folded
(`Admin` is `admin`). Counters are fixed windows starting at the first failure and expire with them
(`expire=`: no immortal keys, unlike a bare `incr`).
"""

from __future__ import annotations

import math
import secrets

import diskcache

from store.base import Clock


def keys(client: str, username: str) -> tuple[str, str]:
    return f"ratelimit:login:ip:{client}", f"ratelimit:login:user:{username.casefold()}"


class LoginLimiter:
    def __init__(self, cache: diskcache.Cache, clock: Clock, max_failures: int, window: float,
                 user_max_failures: int) -> None:
        self.cache = cache
        self.clock = clock
        self.window = window
        self.limits = (max_failures, user_max_failures)  # in the order of keys()

    def reserve(self, client: str, username: str) -> int:
        """Count this attempt; 0 if it may proceed, else the seconds until it may (Retry-After)."""
        now = self.clock()
        with self.cache.transact():
            counters = [(key, self._live(key, now)) for key in keys(client, username)]
            blocked = [c["reset_at"] - now for (_, c), limit in zip(counters, self.limits, strict=True)
                       if c and c["count"] >= limit]
            if blocked:
                return max(1, math.ceil(max(blocked)))
            for key, counter in counters:
                counter = counter or {"count": 0, "reset_at": now + self.window}
                counter["count"] += 1
                self.cache.set(key, counter, expire=max(1.0, counter["reset_at"] - now))
        return 0

    def succeeded(self, client: str, username: str) -> None:
        ip_key, user_key = keys(client, username)
        now = self.clock()
        with self.cache.transact():
            counter = self._live(ip_key, now)
            if counter and counter["count"] > 0:
                counter["count"] -= 1
                self.cache.set(ip_key, counter, expire=max(1.0, counter["reset_at"] - now))
            self.cache.delete(user_key)

    def _live(self, key: str, now: float) -> dict[str, float] | None:
        counter: dict[str, float] | None = self.cache.get(key)
        return counter if counter and counter["reset_at"] > now else None


class ConcurrencyLimiter:
    """At most `limit` operations at once per user, counted by every worker and process on the host (issue 18: 20
    concurrent catastrophic regexes from one operator queued everyone else's filter test for 29 s).

    A running operation holds a slot `{id: expires_at}` in `ratelimit:<kind>:<user>`, taken and given back in
    store transactions. A slot expires `hold` seconds after it was taken (longer than the operation may run),
    so a worker killed mid-operation cannot keep its slot forever; the key itself expires with its last slot.
    """

    def __init__(self, cache: diskcache.Cache, clock: Clock, kind: str, limit: int, hold: float) -> None:
        self.cache = cache
        self.clock = clock
        self.kind = kind
        self.limit = limit
        self.hold = hold

    def _key(self, user: str) -> str:
        return f"ratelimit:{self.kind}:{user.casefold()}"

    def acquire(self, user: str) -> tuple[str | None, int]:
        """(slot id, 0) when one is free, else (None, seconds until the oldest slot expires at the latest)."""
        key, now = self._key(user), self.clock()
        with self.cache.transact():
            slots = {k: v for k, v in (self.cache.get(key) or {}).items() if v > now}
            if len(slots) >= self.limit:
                return None, max(1, math.ceil(min(slots.values()) - now))
            slot = secrets.token_hex(8)
            slots[slot] = now + self.hold
            self.cache.set(key, slots, expire=self.hold)
        return slot, 0

    def release(self, user: str, slot: str) -> None:
        key, now = self._key(user), self.clock()
        with self.cache.transact():
            slots = {k: v for k, v in (self.cache.get(key) or {}).items() if v > now and k != slot}
            if slots:
                self.cache.set(key, slots, expire=max(1.0, max(slots.values()) - now))
            else:
                self.cache.delete(key)
