"""Runtime state that all workers answer alike: the leader's latest fail2ban snapshot.

The elected `snapshot` job publishes {"reachable", "version", "jails", "error", "at"} every few
seconds; any worker reads it with one small inline get (`runtime:fail2ban`).
"""

from __future__ import annotations

from typing import Any

import diskcache

from store.base import Clock

_KEY = "runtime:fail2ban"


class RuntimeState:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def publish(self, snapshot: dict[str, Any]) -> None:
        self.cache.set(_KEY, dict(snapshot, at=snapshot.get("at") or self.clock()))

    def current(self) -> dict[str, Any] | None:
        snapshot: dict[str, Any] | None = self.cache.get(_KEY)
        return snapshot
