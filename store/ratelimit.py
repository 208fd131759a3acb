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
