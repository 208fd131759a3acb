"""This host's replica of the fleet's identity (issue 21 item 1): a copy, in a diskcache of the data dir
(`<data dir>/fleet-replica`), of the fleet store's keys (store/redis_backend.py: users with their password hashes,
sessions, tokens, setup state, the fleet's blocklist records), so that a Redis outage does not stop anyone from
managing the host.

- Refresh: the host's fleet agent (jobs/fleet/agent.py) mirrors Redis into the replica every couple of seconds, and
  every write that reached Redis is written through at once (store/fleet_cache.py). The replica is never older
  than its last successful refresh (`meta()["refreshed"]`), which health shows, so a revocation made before an
  outage holds during it.
- During an outage store/fleet_cache.py reads the replica, and writes there what may happen on one host: the login
  limiter's counters (host-local, exact per host: never mirrored), sessions (logins and logouts, remembered in
  `PENDING` and written to Redis when it returns) and a token's last-used time. Every other write is refused.
- The epoch: a random marker (`EPOCH_KEY`, outside the mirrored namespace) made once when Redis holds users, and
  kept in the replica. A Redis that answers without it while this replica has one restarted empty: its users and
  tokens are gone. The hosts then offer their replicas (`OFFERS`, scored by the time of their last refresh) for a
  short window, and the host with the newest one writes it back (`write_back`) before anyone mirrors the empty
  Redis; meanwhile a key Redis lacks is read from the replica (`redis_empty`).
Meta keys start with `~`, which no fleet key does (every fleet key is `<kind>:<id>`).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from store.base import open_cache

if TYPE_CHECKING:
    from store.sessions import Sessions
    from store.tokens import Tokens

DIRNAME = "fleet-replica"
META = "~meta"
PENDING = "~pending"
KV, TAG = "bangui:kv:", "bangui:tag:"  # as store/redis_backend.py (which imports redis: not imported here)
EPOCH_KEY = "bangui:identity:epoch"
OFFERS = "bangui:identity:offers"
DEADLINE = "bangui:identity:reseed-at"
SEEDING = "bangui:identity:seeding"  # the host writing its replica back (the marker is set once it is done)
OFFER_WINDOW_S = 3.0  # > the agents' refresh period (fleet.HEARTBEAT_S): every running host has offered by then
GRACE_S = 6.0  # the newest host did not write its replica back in time (it died?): any host that offered may
HOST_LOCAL = ("ratelimit:",)  # counted per host: never mirrored, never written back
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def mirrored(key: str) -> bool:
    return not key.startswith("~") and not key.startswith(HOST_LOCAL)


class Replica:
    sessions: Sessions  # the store's lookups on the replica alone (set by store.Store)
    tokens: Tokens

    def __init__(self, data_dir: Path) -> None:
        self.cache = open_cache(Path(data_dir) / DIRNAME)

    # -- state ---------------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """{"epoch", "refreshed" (epoch seconds of the last complete refresh), "down_since"}; {} before the first."""
        return dict(self.cache.get(META) or {})

    def available(self) -> bool:
        return bool(self.meta().get("refreshed"))

    def redis_empty(self) -> bool:
        """Redis restarted empty and no replica has been written back yet (`refresh` saw it)."""
        return bool(self.meta().get("redis_empty"))

    def mark_down(self, now: float) -> None:
        """A refresh failed: the outage started now, unless it already had."""
        with self.cache.transact():
            meta = self.meta()
            if not meta.get("down_since"):
                self.cache.set(META, dict(meta, down_since=now))

    def lookup_session(self, session_id: str) -> dict[str, Any] | None:
        self._require()
        return self.sessions.lookup(session_id)

    def lookup_token(self, token: str) -> dict[str, Any] | None:
        self._require()
        return self.tokens.lookup(token)

    def _require(self) -> None:
        if not self.available():
            from store.redis_backend import FleetUnavailable  # imports no redis itself

            raise FleetUnavailable("the fleet store (Redis) does not answer in time and this host has no replica "
                                   "of the fleet's identity yet (it never reached Redis): retry")

    def keys(self) -> list[str]:
        return [k for k in self.cache.iterkeys() if not k.startswith("~")]

    # -- writes during an outage ---------------------------------------------------------------------------
    def write_pending(self, key: str, value: Any, expire: float | None, tag: str | None) -> None:
        """A session written on this host while Redis is away: here now, in Redis when it returns."""
        with self.cache.transact():
            self.cache.set(key, value, expire=expire, tag=tag)
            self.cache.set(PENDING, dict(self.cache.get(PENDING) or {}, **{key: "set"}))

    def delete_pending(self, key: str) -> bool:
        with self.cache.transact():
            existed = bool(self.cache.delete(key))
            self.cache.set(PENDING, dict(self.cache.get(PENDING) or {}, **{key: "delete"}))
        return existed

    # -- refresh (the agent, in a worker thread, with the raw synchronous client) ------------------------
    def refresh(self, r: Any, now: float | None = None) -> str:
        """Mirror Redis here. "ok"; or "empty": Redis lost the fleet's identity (it has no epoch marker while this
        replica has one): nothing was mirrored, the caller writes a replica back (`reseed_step`)."""
        now = time.time() if now is None else now
        meta = self.meta()
        marker = _text(r.get(EPOCH_KEY))
        if marker is None:
            if meta.get("epoch"):
                if not meta.get("redis_empty"):  # reads of missing keys use the replica meanwhile (fleet_cache)
                    self.cache.set(META, dict(meta, redis_empty=now))
                return "empty"
            if r.exists(KV + "setup:complete"):  # the fleet has users: mark this Redis' generation
                r.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
                marker = _text(r.get(EPOCH_KEY))
        self._replay(r)
        values = self._read_all(r)
        with self.cache.transact():
            for key in self.keys():
                if mirrored(key) and key not in values:
                    self.cache.delete(key)
            for key, (value, ttl, tag) in values.items():
                if self.cache.get(key, tag=True) != (value, tag):
                    self.cache.set(key, value, expire=ttl, tag=tag)
            self.cache.set(META, {"epoch": marker, "refreshed": now, "down_since": None})
        return "ok"

    def _read_all(self, r: Any) -> dict[str, tuple[Any, float | None, str | None]]:
        """Every mirrored key of the fleet store: key -> (value, seconds to live or None, tag)."""
        keys = sorted({_text(k)[len(KV):] for k in r.scan_iter(match=KV + "*", count=1000)})  # type: ignore[index]
        keys = [k for k in keys if mirrored(k)]
        tags = [_text(t) for t in r.scan_iter(match=TAG + "*", count=1000)]
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.get(KV + key)
            pipe.pttl(KV + key)
        for tag in tags:
            pipe.smembers(tag)
        replies = pipe.execute()
        tag_of = {_text(m): t[len(TAG):] for t, members in zip(tags, replies[2 * len(keys):], strict=True)  # type: ignore[index]
                  for m in members}
        out: dict[str, tuple[Any, float | None, str | None]] = {}
        for i, key in enumerate(keys):
            raw, ttl = replies[2 * i], replies[2 * i + 1]
            if raw is not None:
                out[key] = (_decode(raw), ttl / 1000.0 if ttl >= 0 else None, tag_of.get(key))
        return out

    def _replay(self, r: Any) -> int:
        """Write the sessions made or ended here during the outage to Redis; how many."""
        pending = dict(self.cache.get(PENDING) or {})
        for key, op in pending.items():
            if op == "delete":
                r.delete(KV + key)
                continue
            value, expire_at, tag = self.cache.get(key, expire_time=True, tag=True)
            if value is not None:
                self._write(r, key, value, expire_at, tag)
        with self.cache.transact():  # only what was replayed: a login meanwhile stays pending
            rest = {k: v for k, v in (self.cache.get(PENDING) or {}).items() if pending.get(k) != v}
            self.cache.set(PENDING, rest)
        return len(pending)

    @staticmethod
    def _write(r: Any, key: str, value: Any, expire_at: float | None, tag: str | None) -> None:
        px = max(1, int((expire_at - time.time()) * 1000)) if expire_at is not None else None
        pipe = r.pipeline(transaction=True)
        pipe.set(KV + key, _encode(value), px=px)
        if tag is not None:
            pipe.sadd(TAG + tag, key)
            if px is not None:
                pipe.pexpire(TAG + tag, px, gt=True)
        pipe.execute()

    # -- write back after Redis restarted empty ------------------------------------------------------------
    def reseed_claim(self, r: Any, host: str, now: float | None = None) -> bool:
        """One step of the fleet's choice of the newest replica after Redis restarted empty: True when this host
        is to write its replica back now (`write_back`); False while the hosts still offer theirs, or when another
        host writes (or wrote) its own back: the next refresh mirrors it."""
        now = time.time() if now is None else now
        meta = self.meta()
        if not meta.get("epoch"):
            return False
        pipe = r.pipeline(transaction=True)
        pipe.zadd(OFFERS, {host: float(meta.get("refreshed") or 0.0)})
        pipe.set(DEADLINE, repr(now + OFFER_WINDOW_S), nx=True, ex=120)
        pipe.expire(OFFERS, 120)
        pipe.get(DEADLINE)
        pipe.zrevrange(OFFERS, 0, 0, withscores=True)
        *_, deadline, top = pipe.execute()
        deadline = float(_text(deadline) or now)
        newest = _text(top[0][0]) if top else host
        if now < deadline or (newest != host and now < deadline + GRACE_S):
            return False
        return not r.exists(EPOCH_KEY) and bool(r.set(SEEDING, host, nx=True, ex=60))

    def write_back(self, r: Any, now: float | None = None) -> dict[str, Any]:
        """Write every mirrored key of this replica to Redis, then its epoch marker (last: a host that mirrors
        now sees every key). What was written, for the audit entry and the log."""
        now = time.time() if now is None else now
        meta = self.meta()
        written = users = 0
        for key in self.keys():
            if mirrored(key):
                value, expire_at, tag = self.cache.get(key, expire_time=True, tag=True)
                if value is not None:
                    self._write(r, key, value, expire_at, tag)
                    written += 1
                    users += key.startswith("user:")
        r.set(EPOCH_KEY, meta["epoch"])
        r.delete(OFFERS, DEADLINE, SEEDING)
        refreshed = float(meta.get("refreshed") or 0.0)
        return {"epoch": meta["epoch"], "keys": written, "users": users, "replica_age_s": round(now - refreshed, 3)}

    def close(self) -> None:
        self.cache.close()


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw
