"""Who leads the background work: the leader epoch, the published leader record, and fencing.

The election itself is a `flock` (jobs/leader.py); this module is the store half of it.

Guarantees:
- `claim()` increments `leader:epoch` and publishes `leader:current` in one store transaction, so
  epochs are strictly increasing across every process sharing the data dir, even when two claims race.
- `is_current(epoch)` / `run_fenced(epoch, fn)` let a leader that may have been replaced (wedged,
  or its lock file deleted and recreated) refuse to write: `run_fenced` checks the epoch and runs
  `fn` inside the same transaction, so a newer leader's claim cannot interleave with the write.
- Values are JSON and have no expiry (`eviction_policy='none'`): the epoch survives restarts.

Failure modes: a busy store raises `diskcache.Timeout` (callers offload and retry); a store that was
wiped restarts epochs at 1, and any older leader then fails its fencing check and steps down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import diskcache

from store.base import Clock

EPOCH_KEY = "leader:epoch"
CURRENT_KEY = "leader:current"
T = TypeVar("T")


class NotLeader(Exception):
    """The caller's epoch is no longer the current one: another process leads now.

    The one way bangui says "this process lost leadership": every fenced write raises it, and the
    scheduler (jobs/scheduler.py) catches it in one place and steps down."""


def epoch_is_current(cache: diskcache.Cache, epoch: int) -> bool:
    """True when `epoch` is the latest claimed epoch (one small read; use inside `transact` to fence)."""
    return bool(cache.get(EPOCH_KEY) == epoch)


class LeaderState:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def claim(self, pid: int | None = None, host: str | None = None) -> dict[str, Any]:
        """Take the next epoch and publish this process as leader; returns the published record.

        Call only while holding the leader lock. Atomic: the read-increment-write and the publish are
        one transaction (a bare `incr` would not do: with JSON values it would add to a string).
        """
        now = self.clock()
        with self.cache.transact():
            epoch = int(self.cache.get(EPOCH_KEY, 0)) + 1
            record = {"pid": pid if pid is not None else os.getpid(),
                      "host": host if host is not None else socket.gethostname(),
                      "epoch": epoch, "since": now, "heartbeat": now}
            self.cache.set(EPOCH_KEY, epoch)
            self.cache.set(CURRENT_KEY, record)
        return record

    def heartbeat(self, epoch: int) -> None:
        """Refresh the published heartbeat; NotLeader (and no write) if `epoch` is no longer current."""
        with self.cache.transact():
            record = self.cache.get(CURRENT_KEY)
            if not epoch_is_current(self.cache, epoch) or not record or record.get("epoch") != epoch:
                raise NotLeader(f"epoch {epoch} is no longer current")
            record["heartbeat"] = self.clock()
            self.cache.set(CURRENT_KEY, record)

    def current(self) -> dict[str, Any] | None:
        """The published leader record `{pid, host, epoch, since, heartbeat}`, or None.

        One small read: fine inline on the event loop.
        """
        record: dict[str, Any] | None = self.cache.get(CURRENT_KEY)
        return record

    def heartbeat_age(self, record: dict[str, Any]) -> float:
        """Seconds since the record's heartbeat (never negative, even if clocks step back)."""
        return max(0.0, self.clock() - float(record["heartbeat"]))

    def is_current(self, epoch: int) -> bool:
        """Fencing check: may the holder of `epoch` still act as leader?"""
        return epoch_is_current(self.cache, epoch)

    def run_fenced(self, epoch: int, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` (store writes) in one transaction, only if `epoch` is still current.

        Raises NotLeader (nothing written) otherwise. Keep `fn` short: it holds the store's write lock.
        """
        with self.cache.transact():
            if not epoch_is_current(self.cache, epoch):
                raise NotLeader(f"epoch {epoch} is no longer current")
            return fn(*args)

    def release(self, epoch: int) -> None:
        """Withdraw the published record if it is still ours (the epoch counter stays)."""
        with self.cache.transact():
            record = self.cache.get(CURRENT_KEY)
            if record and record.get("epoch") == epoch:
                self.cache.delete(CURRENT_KEY)
