"""The fleet store as the identity stores see it: Redis (store/redis_backend.py) while it answers, this host's
replica (store/replica.py) while it does not (issue 21 items 1 and 5).

- Reads: Redis; on 503 fleet_unavailable the replica, once it has been refreshed at least once (a host that never
  saw Redis has no identity to fall back on, and says so: 503). After Redis restarted empty, until a host's replica
  is written back (store/replica.py), a key Redis lacks is read from the replica.
- Writes: Redis, then the replica at once (so this host's own changes, a revocation above all, are in the replica
  before the next refresh). After Redis restarted empty, until a replica is written back, writes wait as during
  an outage (a change then would be undone by the write-back of another host's replica). While Redis is away,
  only what one host may do alone happens, in the replica: the login limiter's counters (host-local: exact per
  host), sessions (a login, a logout: written to Redis when it returns) and a token's last-used time. Everything
  else changes the fleet's identity (users, roles, passwords, tokens, setup, logout everywhere) and must be
  fleet-wide or not happen: 503 fleet_unavailable, saying so.
- Lookups (`lookup`): the session and token checks of every authenticated request run in a worker thread with a
  deadline of LOOKUP_TIMEOUT_S, then against the replica: a slow Redis never holds the event loop.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio

from store.base import offload
from store.redis_backend import BREAKER_S, FleetUnavailable, RedisCache
from store.replica import HOST_LOCAL, Replica

T = TypeVar("T")
LOOKUP_TIMEOUT_S = 0.25  # a lookup is 2 Redis reads (credential, user): ~1 ms when Redis is well
_SESSION, _TOKEN = "session:", "token:"


def identity_change_refused(reason: FleetUnavailable) -> FleetUnavailable:
    return FleetUnavailable(f"{reason.message}; meanwhile this host serves from its replica of the fleet's "
                            "identity, and changes to users, roles, passwords, tokens and sessions everywhere are "
                            "refused: they must reach every host or not happen", details=dict(reason.details or {},
                                                                                         degraded=True),
                            # a process that saw Redis fail keeps off it for BREAKER_S, then tries again
                            headers={"Retry-After": str(math.ceil(BREAKER_S))})


class FleetCache:
    """The diskcache subset of store/redis_backend.RedisCache, falling back on the replica (see the module)."""

    def __init__(self, remote: RedisCache, replica: Replica) -> None:
        self.remote, self.replica = remote, replica
        self.down_since: float | None = None  # this process' view; health prefers the agent's (replica meta)

    def __getattr__(self, name: str) -> Any:  # redis, setting, call, reachable, guard: Redis' own
        return getattr(self.remote, name)

    def _failed(self, exc: FleetUnavailable) -> None:
        if self.down_since is None:
            self.down_since = time.time()
        if not self.replica.available():
            raise exc

    def _ok(self) -> None:
        self.down_since = None

    def degradation(self, connected: bool) -> dict[str, Any]:
        """Health's words for the outage (epoch seconds): `status` ok | degraded (this host serves from its replica),
        `since` (the agent's first failed refresh, else this process' first failure), the replica's last refresh."""
        meta, now = self.replica.meta(), time.time()
        refreshed = meta.get("refreshed")
        since = None if connected else (meta.get("down_since") or self.down_since or now)
        return {"status": "ok" if connected else "degraded", "since": since, "replica_refreshed": refreshed,
                "replica_age_s": round(now - refreshed, 3) if refreshed else None}

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None, expire_time: bool = False) -> Any:
        if key.startswith(HOST_LOCAL) and self.down_since is not None and self.replica.available():
            return self.replica.cache.get(key, default, expire_time=expire_time)
        try:
            value = self.remote.get(key, default, expire_time)
        except FleetUnavailable as exc:
            self._failed(exc)
            return self.replica.cache.get(key, default, expire_time=expire_time)
        self._ok()
        if (value[0] if expire_time else value) is default and self.replica.redis_empty():
            return self.replica.cache.get(key, default, expire_time=expire_time)  # until a replica is written back
        return value

    def iterkeys(self, reverse: bool = False) -> Iterator[str]:
        try:
            keys = self.remote.iterkeys(reverse)
        except FleetUnavailable as exc:
            self._failed(exc)
            return iter(sorted(self.replica.keys(), reverse=reverse))
        self._ok()
        if self.replica.redis_empty():
            return iter(sorted(set(keys) | set(self.replica.keys()), reverse=reverse))
        return keys

    # -- writes ------------------------------------------------------------------------------------------
    def set(self, key: str, value: Any, expire: float | None = None, tag: str | None = None, **_: Any) -> bool:
        return self._write(key, value, expire, tag, only_new=False)

    def add(self, key: str, value: Any, expire: float | None = None, tag: str | None = None, **_: Any) -> bool:
        return self._write(key, value, expire, tag, only_new=True)

    def _reseeding(self, key: str) -> FleetUnavailable | None:
        """Redis restarted empty and no replica is written back yet: a change of the fleet's identity now would be
        undone by the write-back if another host's replica is the newest (a deleted token or bouncer key, a
        deleted user, back), so it waits as during an outage (sessions pending here, the rest 503)."""
        if key.startswith(HOST_LOCAL) or not self.replica.redis_empty():
            return None
        return FleetUnavailable("the fleet store (Redis) restarted empty and the fleet's identity is being written "
                                "back from the newest host's replica: retry in a few seconds",
                                details={"reason": "reseeding"})

    def _write(self, key: str, value: Any, expire: float | None, tag: str | None, only_new: bool) -> bool:
        write = self.remote.add if only_new else self.remote.set
        if reseeding := self._reseeding(key):
            return self._write_here(key, value, expire, tag, only_new, reseeding)
        if not (key.startswith(HOST_LOCAL) and self.down_since is not None):
            try:
                written = write(key, value, expire=expire, tag=tag)
            except FleetUnavailable as exc:
                self._failed(exc)
                return self._write_here(key, value, expire, tag, only_new, exc)
            self._ok()
            if written and not key.startswith(HOST_LOCAL):
                self.replica.cache.set(key, value, expire=expire, tag=tag)
            return bool(written)
        return self._write_here(key, value, expire, tag, only_new, None)

    def _write_here(self, key: str, value: Any, expire: float | None, tag: str | None, only_new: bool,
                    exc: FleetUnavailable | None) -> bool:
        """A write during the outage: the ones one host may make alone, or 503."""
        local = self.replica.cache
        if key.startswith(HOST_LOCAL):
            return bool((local.add if only_new else local.set)(key, value, expire=expire, tag=tag))
        if key.startswith(_SESSION) and not only_new:
            self.replica.write_pending(key, value, expire, tag)
            return True
        if key.startswith(_TOKEN) and not only_new and local.get(key) is not None:  # last_used only
            local.set(key, value, expire=expire, tag=tag)
            return True
        raise identity_change_refused(exc or FleetUnavailable("the fleet store (Redis) does not answer"))

    def delete(self, key: str, retry: bool = False) -> bool:
        try:
            if reseeding := self._reseeding(key):
                raise reseeding
            deleted = self.remote.delete(key)
        except FleetUnavailable as exc:
            self._failed(exc)
            if key.startswith(HOST_LOCAL):
                return bool(self.replica.cache.delete(key))
            if key.startswith(_SESSION):  # a logout on this host: ended here now, in Redis when it returns
                return self.replica.delete_pending(key)
            raise identity_change_refused(exc) from None
        self._ok()
        self.replica.cache.delete(key)
        return deleted

    def evict(self, tag: str, retry: bool = False) -> int:
        try:
            if reseeding := self._reseeding(tag):
                raise reseeding
            removed = self.remote.evict(tag)
        except FleetUnavailable as exc:
            self._failed(exc)
            raise identity_change_refused(exc) from None
        self._ok()
        self.replica.cache.evict(tag)
        return removed

    @contextlib.contextmanager
    def transact(self, retry: bool = False) -> Iterator[None]:
        """Redis' fleet-wide lock; during the outage this host's (what happens then happens on one host)."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.remote.transact())
            except FleetUnavailable as exc:
                self._failed(exc)
                stack.enter_context(self.replica.cache.transact())
            yield

    def expire(self) -> int:
        return 0

    def close(self) -> None:
        self.remote.close()
        self.replica.close()


async def lookup(remote: Callable[[str], T], local: Callable[[str], T], credential: str) -> T:
    """`remote(credential)` (a session or token lookup through the fleet store) in a worker thread, waited for at
    most LOOKUP_TIMEOUT_S; then `local(credential)`, the same lookup in the replica. The abandoned thread ends by
    itself within Redis' socket timeout (store/redis_backend.SOCKET_TIMEOUT_S)."""
    with anyio.move_on_after(LOOKUP_TIMEOUT_S):
        return await offload_abandonable(remote, credential)
    return await offload(local, credential)


async def offload_abandonable(func: Callable[[str], T], arg: str) -> T:
    return await anyio.to_thread.run_sync(func, arg, abandon_on_cancel=True)
