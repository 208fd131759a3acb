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
- answer: other hosts' history requests (fleet/rpc.py);
- replicate: mirror the fleet's identity into this host's replica (store/replica.py) and, after Redis restarted
  empty, write the newest host's replica back.
Redis errors never end the agent: each loop logs once per outage and retries.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import fleet
from actions import bans as ban_actions
from actions import fleet as fleet_actions
from core.actor import Actor
from core.roles import Role
from errors import AppError
from fleet import HEARTBEAT_S, HOSTS, STREAM, alive_key, ban_key, group, host_key, rpc
from fleet.lease import CLAIM_POLL_S, RENEW_S, Lease
from fleet.log import SET_STATUS, host_status, min_id, parse, publish_queued_unban
from fleet.outbox import Outbox
from fleet.watch import Watcher
from jobs.fleet.applying import acceptable, batched, bulk_client, failure, for_host, who
from jobs.fleet.blocklists import fleet_blocklists
from jobs.fleet.join import join
from store.base import offload
from store.redis_backend import connect, import_redis

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.fleet")
BLOCK_MS = 1000
RETENTION_EVERY_S = 60.0
RETRY_S = 0.5
REPLICA_WAIT_MS = 100  # a replica on the same network acknowledges in well under a millisecond
NO_REPLICA_PAUSE_S = 10.0
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
        self.fast = connect(settings, 0.5, asyncio=True)
        self.blocking = connect(settings, BLOCK_MS / 1000 + 2, asyncio=True)
        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.retried = (*self.errors, AppError)
        self.outbox = Outbox(Path(deps.store.path))
        self.lease = Lease(self.fast, self.name)
        self.down_logged: set[str] = set()
        self.beats = 0
        self.was_leading = False
        self.no_replica_until = 0.0  # Sentinel mode: publish without WAIT until then (no replica answered)
        self.watcher = Watcher(deps, self.share)

    async def run(self) -> None:
        log.info("fleet agent of host %s started (shared jails: %s)", self.name,
                 ", ".join(fleet.shared_jails(self.settings)) or "none")
        try:
            async with anyio.create_task_group() as tg:
                for loop in (self._heartbeat, self._consume, self.watcher.watch, self._lead, self._answer,
                             self._blocklists, self._replicate):
                    tg.start_soon(self._forever, loop)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), contextlib.suppress(*self.errors):
                if self.lease.token is not None:  # a graceful stop hands the lease over at once
                    await self.lease.release()
                    log.info("host %s handed the fleet lease over (stopping)", self.name)
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
            forgotten = await offload(self.beat)
            own = [(j, set(v)) for j, v in self.watcher.own.items() if v]  # copied on the loop
            self._recovered("_heartbeat")
            published: dict[str, set[str]] = {}
            if self.outbox.pending():
                sent = await offload(self.outbox.flush, functools.partial(self._publish_now, published=published))
                log.info("fleet: published %d entr(ies) buffered while Redis was unreachable (shared bans, unbans)",
                         sent)
            if forgotten:  # this host's own shared bans again, but not those the outbox has just published
                for jail, ips in own:
                    if ips - published.get(jail, set()):
                        await offload(self.share, jail, sorted(ips - published.get(jail, set())))
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
                        "bans again; the fleet's users and tokens come back from the newest host's replica "
                        "(store/replica.py)", self.name)
        self.beats += 1
        return bool(joined and self.beats > 1)

    def _publish_now(self, item: dict[str, str], published: dict[str, set[str]] | None = None) -> None:
        """Append `item` to the fleet log; `published`: collects jail -> addresses (the outbox's flush)."""
        if item.get("follow") == "1":  # an unban made here while Redis was away (actions/fleet_follow.py)
            publish_queued_unban(self.sync, item, self.settings.fleet_retention_hours)
            return
        if not self.settings.fleet_sentinels:
            self.sync.xadd(STREAM, item, minid=min_id(self.settings.fleet_retention_hours), approximate=True)
        else:
            self._publish_replicated(item)
        if published is not None:
            published.setdefault(item["jail"], set()).update(json.loads(item["ips"]))

    def _publish_replicated(self, item: dict[str, str]) -> None:
        # Replicated Redis: the primary acknowledges before its replica has the entry; one SIGKILLed in between
        # would lose it while the outbox believed it published. WAIT until a replica has it too (a bounded wait: a
        # fleet whose replica is away still publishes, as a single Redis would).
        pipe = self.sync.pipeline(transaction=False)
        pipe.xadd(STREAM, item, minid=min_id(self.settings.fleet_retention_hours), approximate=True)
        waiting = time.monotonic() >= self.no_replica_until
        if waiting:
            pipe.wait(1, REPLICA_WAIT_MS)
        replies = pipe.execute()
        if waiting and not replies[1]:  # no replica (yet) after a failover: publish without waiting for a while
            self.no_replica_until = time.monotonic() + NO_REPLICA_PAUSE_S
            log.warning("fleet: no Redis replica acknowledged a shared ban within %d ms (replica away?); "
                        "publishing without waiting for %.0f s", REPLICA_WAIT_MS, NO_REPLICA_PAUSE_S)

    # -- the replica of the fleet's identity (store/replica.py) --------------------------------------------
    async def _replicate(self) -> None:
        """Mirror the fleet's identity into this host's replica while Redis answers; after Redis restarted empty,
        offer the replica and, when this host's is the newest, write it back (audited: fleet.identity_reseed)."""
        replica = self.deps.store.replica
        assert replica is not None  # fleet mode
        while True:
            try:
                outcome = await offload(replica.refresh, self.sync)
            except self.errors:
                await offload(replica.mark_down, time.time())
                raise
            if outcome == "empty":
                await self._reseed(replica)
                await anyio.sleep(RETRY_S)
                continue
            self._recovered("_replicate")
            await anyio.sleep(HEARTBEAT_S)

    async def _reseed(self, replica: Any) -> None:
        if "_reseed" not in self.down_logged:
            self.down_logged.add("_reseed")
            log.warning("fleet: Redis answers without the fleet's identity (it restarted empty: no persistence); "
                        "offering this host's replica (refreshed %.1f s ago) to write it back",
                        time.time() - float(replica.meta().get("refreshed") or 0.0))
        if not await offload(replica.reseed_claim, self.sync, self.name):
            return
        actor = Actor(f"fleet:{self.name}", Role.admin, "fleet", None, user=f"fleet:{self.name}")
        summary = await fleet_actions.identity_reseed(self.deps, actor)
        self.down_logged.discard("_reseed")
        log.warning("fleet: wrote this host's replica of the fleet's identity back to Redis (it restarted empty): "
                    "%d user(s), %d key(s), epoch %s, replica %.1f s old", summary["users"], summary["keys"],
                    summary["epoch"], summary["replica_age_s"])

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
            limit = 2 * self.settings.blocklist_max_bytes
            for ids, item in batched([(entry_id, parse(entry_id, fields, limit) if fields else None)
                                      for entry_id, fields in entries]):
                if item is not None:
                    await self._apply_one(ids, item)
                await self.fast.xack(STREAM, grp, *ids)

    async def _apply_one(self, ids: list[Any], item: dict[str, Any]) -> None:
        """`apply`; an error other than Redis' or fail2ban's (retried: the entry stays pending) skips this entry
        with its traceback: left pending, it would end every next agent at the same place."""
        try:
            await self.apply(item)
        except self.retried:
            raise
        except Exception:
            log.exception("fleet: skipped fleet log entry %s (%s from %s): applying it failed", ids[0],
                          item.get("kind"), str(item.get("source"))[:64])

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
        # shared bans (and the unbans that follow them, actions/fleet_follow.py) land in this host's fleet jail, if any
        mapped = kind == "auto" or item.get("shared") == "1"
        jail = (self.settings.fleet_jail or item["jail"]) if mapped else item["jail"]
        actor, recorded = who(source, item.get("list") or "")
        if item.get("by"):  # the person behind a fleet unban that followed their unban on `source`
            recorded["requested_by"] = item["by"]
        status, error, added, unbanned, refused = "applied", None, None, None, 0
        started = time.monotonic()
        try:
            if kind == "unban":  # one call and one audit entry
                # the unban action refuses too wide a network, also in an entry written into the log by hand
                unbanned = await self._unban(actor, recorded, jail, item["ips"])
                status = "applied" if unbanned else "not_banned"  # nothing to lift here: say so, not "applied"
            elif item.get("list") or kind == "auto":
                added, refused = await self._apply_filtered(actor, recorded, jail, item)
            else:  # a fleet ban someone asked for: all or nothing here, and its status says why
                await self.watcher.mark_applied(jail, item["ips"])  # the fleet's ban, not this host's own
                added = len((await ban_actions.ban(self.deps, actor, jail, item["ips"], **recorded))["banned"])
        except AppError as exc:
            status, error, added, unbanned = "failed", failure(exc), None, None
            log.warning("fleet %s from %s in %s failed here: %s", kind, source, jail, error)
        log.info("fleet %s of %d address(es) in %s from %s: %s%s in %.3f s", kind, len(item["ips"]), jail, source,
                 status, _what_happened(len(item["ips"]), added, unbanned, refused), time.monotonic() - started)
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
                              item: dict[str, Any]) -> tuple[int, int]:
        """Another host's shared bans, or a blocklist the fleet leader fetched (jobs/fleet/blocklists.py): what this
        host may ban of them (one address it refuses must not cost it the other 49 of a catch-up batch, or a
        whole list), in one call; a large list with a client that waits as long as fail2ban needs. (How many
        addresses it banned anew, how many it refused.)"""
        # ~7-20 us an address: a list of 100,000 would hold the event loop for a second or more
        if len(item["ips"]) > BULK_CLIENT_FROM:
            ips, refused = await offload(acceptable, self.settings, item["ips"])
        else:
            ips, refused = acceptable(self.settings, item["ips"])
        if refused:
            log.warning("fleet %s from %s: %d address(es) refused here (protected or not an address), e.g. %.64r",
                        f"blocklist {item['list']}" if item.get("list") else "shared ban", item.get("source"),
                        len(refused), refused[0])
        if not ips:
            return 0, len(refused)
        await self.watcher.mark_applied(jail, ips)  # the fleet's bans, not this host's own
        client = bulk_client(self.settings) if len(ips) > BULK_CLIENT_FROM else None
        try:
            banned = (await ban_actions.ban(self.deps, actor, jail, ips, client=client, **recorded))["banned"]
            return len(banned), len(refused)
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
                try:
                    await offload(rpc.answer, self.sync, json.loads(popped[1]), self.deps.store.history)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:  # not what an asker pushes
                    log.warning("fleet: dropped a malformed history request: %s: %.80s", type(exc).__name__, exc)

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
            await anyio.sleep(RENEW_S if self.lease.token is not None else CLAIM_POLL_S)

    async def _blocklists(self) -> None:
        await fleet_blocklists(self)

    def _leading(self, now: bool) -> None:
        """Log the changes of fleet leadership (the state survives a restart of the loop after an error)."""
        if now and not self.was_leading:
            log.info("host %s leads the fleet with token %s", self.name, self.lease.token)
        elif self.was_leading and not now:
            log.warning("host %s no longer leads the fleet", self.name)
        self.was_leading = now


def _what_happened(asked: int, added: int | None, unbanned: int | None, refused: int) -> str:
    """What this host really did with an entry, for its log line: banned anew, already banned, refused, lifted."""
    if unbanned is not None:
        return f" ({unbanned} ban(s) lifted)"
    if added is None:
        return ""
    already = asked - added - refused
    return f" ({added} banned anew, {max(already, 0)} already banned, {refused} refused)"
