"""The fleet leader: one host leader of the fleet holds a lease in Redis and runs the fleet's jobs.

- Claim: one Lua script (atomic): when `bangui:fleet:leader` is free, take the next fencing token (INCR
  `bangui:fleet:epoch`) and SET the lease `<host>:<token>` with PX = LEASE_S; the other hosts try every
  CLAIM_POLL_S. Held: renewed every RENEW_S (a compare-and-PEXPIRE script), far inside the lease. So a killed
  leader is replaced about LEASE_S after its last renewal (issue 21: within 1.5 s), and a leader that stops
  (graceful) deletes its lease: the next host takes it within CLAIM_POLL_S.
- Stepping down in time: a holder counts its lease from the moment it SENT the last successful renewal and
  acts only until half the lease has passed since then (`acting`), so a host that loses Redis, or stalls, stops
  acting as fleet leader well before another can take the expired lease (clock rates, not clocks, must agree).
- Fencing: fleet writes (log retention, a fleet blocklist's publication) run as scripts that first compare the
  lease with our `<host>:<token>`, so a deposed leader's late write is refused by Redis itself, whatever it
  believes.
"""

from __future__ import annotations

import time
from typing import Any

from fleet import EPOCH, LEASE

LEASE_S = 1.0  # a SIGKILLed leader's lease lapses within this; the next host claims within CLAIM_POLL_S after
RENEW_S = 0.2  # the holder renews 5 times a lease: one late renewal (a busy host) does not cost it the lease
CLAIM_POLL_S = 0.1  # how often the other hosts try to claim (one tiny Lua call)
CLAIM = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Fenced stream trim: only the current lease holder trims the fleet log.
FENCED_TRIM = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('xtrim', KEYS[2], 'MINID', ARGV[2])
"""

# Fenced publication of a fleet job's log entry (a fleet blocklist import): the per-host pending statuses and the
# entry, only while Redis still holds our lease. ARGV: lease value, MINID, status TTL, host count, then
# host/status pairs, then the entry's field/value pairs.
FENCED_PUBLISH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local n = tonumber(ARGV[4])
if n > 0 then
  redis.call('hset', KEYS[3], unpack(ARGV, 5, 4 + 2 * n))
  redis.call('expire', KEYS[3], ARGV[3])
end
redis.call('xadd', KEYS[2], 'MINID', '~', ARGV[2], '*', unpack(ARGV, 5 + 2 * n))
return 1
"""


class Lease:
    def __init__(self, client: Any, host: str, lease_s: float = LEASE_S,
                 clock: Any = time.monotonic) -> None:
        self.redis, self.host, self.lease_s, self.clock = client, host, lease_s, clock
        self.token: int | None = None
        self.valid_until = 0.0

    @property
    def value(self) -> str:
        return f"{self.host}:{self.token}"

    def acting(self) -> bool:
        """May this host act as fleet leader now (a local check: no Redis round trip)?"""
        return self.token is not None and self.clock() < self.valid_until

    async def step(self) -> bool:
        """Claim or renew once; True while we hold the lease. Redis errors propagate (acting() then lapses)."""
        sent = self.clock()
        px = str(int(self.lease_s * 1000))
        if self.token is not None:
            if await self.redis.eval(RENEW, 1, LEASE, self.value, px):
                self.valid_until = sent + self.lease_s / 2
                return True
            self.token = None  # taken over (or expired): never act again under this token
        token = int(await self.redis.eval(CLAIM, 2, LEASE, EPOCH, self.host, px))
        if token:
            self.token, self.valid_until = token, sent + self.lease_s / 2
        return self.token is not None

    async def release(self) -> None:
        if self.token is not None:
            await self.redis.eval(RELEASE, 1, LEASE, self.value)
        self.token = None

    async def fenced_trim(self, stream: str, min_id: str) -> int:
        """XTRIM MINID, only while Redis still holds our lease; -1 when refused."""
        return int(await self.redis.eval(FENCED_TRIM, 2, LEASE, stream, self.value, min_id))

    async def fenced_publish(self, stream: str, status_key: str, statuses: dict[str, str], item: dict[str, str],
                             min_id: str, ttl_s: int) -> bool:
        """Write `statuses` (hash) and append `item` to `stream`, only while Redis still holds our lease."""
        args = [self.value, min_id, str(ttl_s), str(len(statuses))]
        args += [v for pair in statuses.items() for v in pair] + [v for pair in item.items() for v in pair]
        return int(await self.redis.eval(FENCED_PUBLISH, 3, LEASE, stream, status_key, *args)) == 1


async def current_leader(client: Any) -> str | None:
    raw = await client.get(LEASE)
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text.rpartition(":")[0]
