"""The host's fleet agent: run by the host leader (the `fleet` job, jobs/definitions.py) while it leads.

Loops in one task group:
- heartbeat: every HEARTBEAT_S, refresh the host's name claim and record (fail2ban, jails, version) and publish
  the outbox (shared bans buffered while Redis was unreachable);
- consume: a new host first applies the fleet's bans still in effect in bulk (jobs/fleet/join.py); then it reads the
  fleet log through its consumer group (pending entries first, then new ones, blocking, so an entry is applied
  milliseconds after it was added; up to 50 at a time, consecutive shared bans of one host merged into one call
  when catching up) and applies each through the ban and unban actions as jobs/fleet/applying.py says (actor
  `fleet:<source host>`, via "fleet", history origin `fleet` with `source_host`), then XACKs it and records the
  per-host status;
- watch (shared jails only, fleet/watch.py): poll fail2ban's ban lists every WATCH_S and publish the bans
  fail2ban made itself, also those it made while no agent watched. A ban this agent applied from the fleet is
  marked first and never published again: no loops;
- lease: stand for fleet leader (fleet/lease.py) and, while acting, run the fleet's jobs: log retention, and
  (a loop of its own: a fetch never delays a lease renewal) the fleet's blocklist imports (jobs/fleet/blocklists.py);
- answer: other hosts' history requests (fleet/rpc.py).
Redis errors never end the agent: each loop logs once per outage and retries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import fleet
from actions import bans as ban_actions
from core.actor import Actor
from errors import AppError
from fleet import HEARTBEAT_S, HOSTS, STREAM, alive_key, ban_key, group, host_key, rpc
from fleet.lease import RENEW_S, Lease
from fleet.log import SET_STATUS, decode, host_status, min_id
from fleet.outbox import Outbox
from fleet.watch import Watcher
from jobs.fleet.applying import acceptable, batched, bulk_client, failure, for_host, who
from jobs.fleet.blocklists import fleet_blocklists
from jobs.fleet.join import join
from store.base import offload
from store.redis_backend import import_redis

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.fleet")
BLOCK_MS = 1000
RETENTION_EVERY_S = 60.0
RETRY_S = 0.5
BULK_CLIENT_FROM = 1000  # a (un)ban of more addresses gets a client that waits as long as fail2ban needs
try:
    VERSION = version("bangui")
except PackageNotFoundError:
    VERSION = "unknown"


async def fleet_job(ctx: JobContext) -> None:
    """The `fleet` job: runs until the host leader steps down or stops (then it is cancelled)."""
    await Agent(ctx.deps).run()


class Agent:
    def __init__(self, deps: Deps) -> None:
        redis = import_redis()
        settings = deps.settings
        self.deps, self.settings = deps, settings
        self.name = fleet.host_name(settings)
        self.instance = fleet.instance_id(settings)
        self.sync = deps.store.fleet.redis
        self.fast = redis.asyncio.Redis.from_url(settings.fleet_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.blocking = redis.asyncio.Redis.from_url(settings.fleet_url, socket_timeout=BLOCK_MS / 1000 + 2,
                                                     socket_connect_timeout=0.5)
        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.retried = (*self.errors, AppError)
        self.outbox = Outbox(Path(deps.store.path))
        self.lease = Lease(self.fast, self.name)
        self.down_logged: set[str] = set()
        self.beats = 0
        self.was_leading = False
        self.watcher = Watcher(deps, self.share)

    async def run(self) -> None:
        log.info("fleet agent of host %s started (shared jails: %s)", self.name,
                 ", ".join(fleet.shared_jails(self.settings)) or "none")
        try:
            async with anyio.create_task_group() as tg:
                for loop in (self._heartbeat, self._consume, self.watcher.watch, self._lead, self._answer,
                             self._blocklists):
                    tg.start_soon(self._forever, loop)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), contextlib.suppress(*self.errors):
                await self.lease.release()
            await self.fast.aclose()
            await self.blocking.aclose()

    async def _forever(self, loop: Any) -> None:
        """Run one loop; on a Redis (or fail2ban) error log once per outage and start it again."""
        while True:
            try:
                await loop()
            except self.retried as exc:
                if loop.__name__ not in self.down_logged:
                    log.warning("fleet %s: %s: %s; retrying", loop.__name__.strip("_"), type(exc).__name__, exc)
                    self.down_logged.add(loop.__name__)
                await anyio.sleep(RETRY_S)

    def _recovered(self, loop: str) -> None:
        if loop in self.down_logged:
            self.down_logged.discard(loop)
            log.info("fleet %s: Redis reachable again", loop.strip("_"))

    # -- heartbeat and outbox ----------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        while True:
            if await offload(self.beat):
                for jail, ips in [(j, sorted(v)) for j, v in self.watcher.own.items() if v]:  # copied on the loop
                    await offload(self.share, jail, ips)
            self._recovered("_heartbeat")
            if self.outbox.pending():
                sent = await offload(self.outbox.flush, self._publish_now)
                log.info("fleet: published %d shared ban(s) buffered while Redis was unreachable", sent)
            await anyio.sleep(HEARTBEAT_S)

    def beat(self) -> bool:
        """Publish the host's record; True when Redis had forgotten this host (restarted empty)."""
        snap = self.deps.store.runtime.current() or {}
        record = {"name": self.name, "last_seen": time.time(), "version": VERSION,
                  "fail2ban": {"reachable": bool(snap.get("reachable")), "version": snap.get("version")},
                  "jails": [{k: j.get(k) for k in ("name", "currently_banned", "currently_failed")}
                            for j in snap.get("jails", [])]}
        pipe = self.sync.pipeline(transaction=False)
        pipe.set(alive_key(self.name), self.instance, px=int(fleet.ALIVE_TTL_S * 1000))
        pipe.set(host_key(self.name), json.dumps(record), ex=self.settings.fleet_retention_hours * 3600)
        pipe.sadd(HOSTS, self.name)
        joined = pipe.execute()[2]
        if joined and self.beats:
            log.warning("fleet: host %s was missing from Redis (restarted empty?): publishing it and its own shared "
                        "bans again; users and tokens are gone unless Redis persists them (AOF)", self.name)
        self.beats += 1
        return bool(joined and self.beats > 1)

    def _publish_now(self, item: dict[str, str]) -> None:
        self.sync.xadd(STREAM, item, minid=min_id(self.settings.fleet_retention_hours), approximate=True)

    # -- consume -----------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        grp = group(self.name)
        if not await self._joined(grp):  # a new host: the bans in effect in bulk (jobs/fleet/join.py), then the log
            try:
                await self.fast.xgroup_create(STREAM, grp, id=await join(self), mkstream=True)
            except self.errors as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        cursor = "0"  # first what was delivered to us but not acknowledged (a crash mid-apply), then new ones
        self._recovered("_consume")
        while True:
            try:
                reply = await self.blocking.xreadgroup(grp, self.name, {STREAM: cursor}, count=50, block=BLOCK_MS)
            except self.errors as exc:
                if "NOGROUP" in str(exc):  # Redis restarted empty: join again from the start
                    log.warning("fleet: consumer group %s is gone (Redis restarted empty?); joining again", grp)
                    return
                raise
            entries = reply[0][1] if reply else []
            if cursor == "0" and not entries:
                cursor = ">"
            for ids, item in batched([(entry_id, decode(fields) if fields else None) for entry_id, fields in entries]):
                if item is not None:
                    await self.apply(item)
                await self.fast.xack(STREAM, grp, *ids)

    async def _joined(self, grp: str) -> bool:
        try:
            groups = await self.fast.xinfo_groups(STREAM)
        except self.errors as exc:
            if "no such key" in str(exc).lower():
                return False
            raise
        return any((g["name"].decode() if isinstance(g["name"], bytes) else g["name"]) == grp for g in groups)

    async def apply(self, item: dict[str, Any]) -> None:
        kind, source = item.get("kind"), item.get("source", "?")
        if (kind == "auto" and source == self.name) or not for_host(item, self.name):
            return
        jail = (self.settings.fleet_jail or item["jail"]) if kind == "auto" else item["jail"]
        actor, recorded = who(source, item.get("list") or "")
        status, error, added, unbanned, started = "applied", None, None, None, time.monotonic()
        try:
            if kind == "unban":  # one call and one audit entry; those not banned here have reached the goal
                # the unban action refuses too wide a network, also in an entry written into the log by hand
                unbanned = await self._unban(actor, recorded, jail, item["ips"])
            elif item.get("list") or kind == "auto":
                added = await self._apply_filtered(actor, recorded, jail, item)
            else:  # a fleet ban someone asked for: all or nothing here, and its status says why
                await self.watcher.mark_applied(jail, item["ips"])  # the fleet's ban, not this host's own
                added = len((await ban_actions.ban(self.deps, actor, jail, item["ips"], **recorded))["banned"])
        except AppError as exc:
            status, error, added, unbanned = "failed", failure(exc), None, None
            log.warning("fleet %s from %s in %s failed here: %s", kind, source, jail, error)
        log.info("fleet %s of %d address(es) in %s from %s: %s in %.3f s", kind, len(item["ips"]), jail, source,
                 status, time.monotonic() - started)
        if item.get("id"):
            await self.record_statuses({item["id"]: host_status(status, error, added, unbanned)})

    async def record_statuses(self, statuses: dict[str, str]) -> None:
        """This host's status of fleet bans (id -> fleet.log.host_status), in one round trip."""
        if not statuses:
            return
        pipe = self.fast.pipeline(transaction=False)
        for ban_id, status in statuses.items():
            pipe.eval(SET_STATUS, 1, ban_key(ban_id), self.name, status)
        await pipe.execute()

    async def _unban(self, actor: Actor, recorded: dict[str, Any], jail: str, ips: list[str]) -> int:
        """Unban `ips` here (a network: every ban inside it); how many bans were lifted."""
        client = bulk_client(self.settings) if len(ips) > BULK_CLIENT_FROM else None
        try:
            return int((await ban_actions.unban_many(self.deps, actor, jail, ips, client=client,
                                                     **recorded))["count"])
        finally:
            if client is not None:
                await client.aclose()

    async def _apply_filtered(self, actor: Actor, recorded: dict[str, Any], jail: str,
                              item: dict[str, Any]) -> int:
        """Another host's shared bans, or a blocklist the fleet leader fetched (jobs/fleet/blocklists.py): what this
        host may ban of them (one address it refuses must not cost it the other 49 of a catch-up batch, or a
        whole list), in one call; a large list with a client that waits as long as fail2ban needs. The number
        of addresses banned anew."""
        # ~7-20 us an address: a list of 100,000 would hold the event loop for a second or more
        if len(item["ips"]) > BULK_CLIENT_FROM:
            ips, refused = await offload(acceptable, self.settings, item["ips"])
        else:
            ips, refused = acceptable(self.settings, item["ips"])
        if refused:
            log.warning("fleet %s from %s: %d address(es) refused here (protected or not an address), e.g. %s",
                        f"blocklist {item['list']}" if item.get("list") else "shared ban", item.get("source"),
                        len(refused), refused[0])
        if not ips:
            return 0
        await self.watcher.mark_applied(jail, ips)  # the fleet's bans, not this host's own
        client = bulk_client(self.settings) if len(ips) > BULK_CLIENT_FROM else None
        try:
            return len((await ban_actions.ban(self.deps, actor, jail, ips, client=client, **recorded))["banned"])
        finally:
            if client is not None:
                await client.aclose()

    # -- share (fleet/watch.py calls it) ---------------------------------------------------------------
    def share(self, jail: str, ips: list[str]) -> None:
        """Publish fail2ban's own bans; buffered in the data dir while Redis is unreachable (or behind)."""
        from fleet.log import entry

        item = entry("auto", jail, ips, self.name)
        if not self.outbox.pending():
            try:
                self._publish_now(item)
                return
            except self.errors as exc:
                log.warning("fleet: Redis unreachable (%s): buffering shared bans in %s", exc, self.outbox.path)
        self.outbox.append(item)

    # -- history for other hosts (fleet/rpc.py) ---------------------------------------------------------
    async def _answer(self) -> None:
        while True:
            popped = await self.blocking.blpop([rpc.inbox(self.name)], timeout=BLOCK_MS / 1000)
            self._recovered("_answer")
            if popped is not None:
                await offload(rpc.answer, self.sync, json.loads(popped[1]), self.deps.store.history)

    # -- fleet leader ------------------------------------------------------------------------------------
    async def _lead(self) -> None:
        last_retention = 0.0
        while True:
            try:
                held = await self.lease.step()
            except self.errors:
                if not self.lease.acting():
                    self._leading(False)
                raise
            self._leading(held and self.lease.acting())
            if self.lease.acting() and time.monotonic() - last_retention >= RETENTION_EVERY_S:
                trimmed = await self.lease.fenced_trim(STREAM, min_id(self.settings.fleet_retention_hours))
                last_retention = time.monotonic()
                if trimmed > 0:
                    log.info("fleet retention: trimmed %d log entries", trimmed)
            await anyio.sleep(RENEW_S)

    async def _blocklists(self) -> None:
        await fleet_blocklists(self)

    def _leading(self, now: bool) -> None:
        """Log the changes of fleet leadership (the state survives a restart of the loop after an error)."""
        if now and not self.was_leading:
            log.info("host %s leads the fleet with token %s", self.name, self.lease.token)
        elif self.was_leading and not now:
            log.warning("host %s no longer leads the fleet", self.name)
        self.was_leading = now
