"""Runtime state that all workers answer alike: the leader's latest fail2ban snapshot, and jails' idle flags.

The elected `snapshot` job publishes {"reachable", "version", "jails", "error", "at"} every few
seconds; any worker reads it with one small inline get (`runtime:fail2ban`).

fail2ban 1.0.2 can set a jail idle but not tell whether it is (`get <jail> idle` does not exist): bangui remembers
what it last set, for the fail2ban server it set it on (`server` names that server: its socket file's identity,
new at every fail2ban start), and forgets it when it stops, starts or reloads the jail. Anything else (another
tool's command) is not seen: the flag says what bangui did, and is None when it does not know.
"""

from __future__ import annotations

from typing import Any

import diskcache

from store.base import Clock

_KEY = "runtime:fail2ban"
_IDLE = "runtime:idle:"


class RuntimeState:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def publish(self, snapshot: dict[str, Any]) -> None:
        self.cache.set(_KEY, dict(snapshot, at=snapshot.get("at") or self.clock()))

    def current(self) -> dict[str, Any] | None:
        snapshot: dict[str, Any] | None = self.cache.get(_KEY)
        return snapshot

    def remember_idle(self, jail: str, idle: bool, server: str) -> None:
        self.cache.set(_IDLE + jail, {"idle": idle, "server": server})

    def forget_idle(self, jail: str) -> None:
        self.cache.delete(_IDLE + jail)

    def idle(self, jail: str, server: str) -> bool | None:
        known: dict[str, Any] | None = self.cache.get(_IDLE + jail)
        return bool(known["idle"]) if known is not None and known.get("server") == server else None
