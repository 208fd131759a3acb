"""Blocklists in fleet mode: the fleet's lists, fetched once by the fleet leader and banned on every host.

The lists live in the fleet store (Redis: `store.blocklists` on `store.shared`), so every host shows and edits the
same ones. Each host leader's `blocklists` job does nothing in fleet mode; the fleet leader's agent looks for due
lists every CHECK_S (a "run now" waits at most that long) and imports each with the single-host code
(jobs/blocklists.py: the SSRF-guarded fetch, the parse, the outcome record) except the ban: it appends ONE entry
to the fleet log, a fleet ban for every host (also hosts that join later) marked with the list's name, fenced by
the fleet lease (a deposed leader's publication is refused by Redis), and records the outcome only while it
still holds the lease. Each host's agent bans it through its own ban action (history origin `blocklist`, actor
`blocklist:<name>`, audited there; entries that host refuses are left out) and reports per host under the fleet
ban id, which the list's record keeps as `last_fleet_ban`. The record is the fleet's, but each host banned anew
its own share of the list: `GET /blocklists` shows as `last_added` the count of the host answering, from its
status of that fleet ban (`added_here`), so that `last_added` means in fleet mode what it means on a single host.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

import anyio

from fleet import HOSTS, LEASE, STREAM, ban_key
from fleet.log import entry, host_status, min_id
from jobs.blocklists import BlocklistError, import_list
from store.base import offload

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.fleet.agent import Agent

log = logging.getLogger("bangui.fleet")
CHECK_S = 2.0


async def import_due(agent: Agent) -> None:
    """Import every due list while this host acts as fleet leader (one after the other)."""
    store = agent.deps.store.blocklists
    for record, requested_at in await offload(store.due):
        if not agent.lease.acting():
            return
        publish = _Publisher(agent)
        outcome = await import_list(agent.deps, record, agent.deps.store.clock(), apply=publish)
        outcome["last_fleet_ban"] = publish.ban_id
        if not await offload(record_if_leading, agent, record, outcome, requested_at):
            return  # no longer the fleet leader: the next one imports the list again, its outcome is the one kept


def record_if_leading(agent: Agent, record: dict[str, Any], outcome: dict[str, Any],
                      requested_at: float | None) -> bool:
    """Write the import's outcome inside the fleet store's transaction, only while Redis still holds our lease
    (blocking: offload it); False, writing nothing, otherwise."""
    store = agent.deps.store.blocklists
    with store.cache.transact():  # record_run's own transaction nests in this one
        held = agent.sync.get(LEASE)
        if (held.decode() if isinstance(held, bytes) else held) != agent.lease.value:
            return False
        return bool(store.record_run(record["name"], record["created"], outcome, requested_at))


class _Publisher:
    """import_list's `apply` in fleet mode: one fenced log entry instead of a local ban; remembers its id."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.ban_id: str | None = None

    async def __call__(self, _deps: Deps, name: str, jail: str, ips: list[str]) -> None:
        agent = self.agent
        hosts = sorted(h.decode() if isinstance(h, bytes) else h for h in await agent.fast.smembers(HOSTS))
        ban_id = secrets.token_hex(8)
        item = entry("ban", jail, ips, agent.name, hosts, ban_id, everyone=True)
        item["list"] = name
        retention = agent.settings.fleet_retention_hours
        statuses = {h: host_status("pending") for h in hosts}
        if not await agent.lease.fenced_publish(STREAM, ban_key(ban_id), statuses, item, min_id(retention),
                                                retention * 3600):
            raise BlocklistError("this host stopped leading the fleet before publishing; the next leader "
                                 "imports the list")
        self.ban_id = ban_id
        log.info("fleet blocklist %s: %d entries published for every host as fleet ban %s", name, len(ips), ban_id)


def added_here(client: Any, host: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`records` with `last_added` as `host` knows it: how many entries of the last import it banned anew (its
    status of the fleet ban that carried the import); 0 where that failed there, as a single host's failed import
    reports; null while it is pending there (or once its status expired with the retention). Records without a
    fleet ban (never run, or the fetch failed) keep their own. One round trip (blocking: offload it)."""
    ids = [r["last_fleet_ban"] for r in records if r.get("last_fleet_ban")]
    if not ids:
        return records
    pipe = client.pipeline(transaction=False)
    for ban_id in ids:
        pipe.hget(ban_key(ban_id), host)
    statuses = dict(zip(ids, pipe.execute(), strict=True))
    out = []
    for record in records:
        if record.get("last_fleet_ban"):
            raw = statuses.get(record["last_fleet_ban"])
            status = json.loads(raw) if raw is not None else {"status": "pending"}
            added = status.get("added") if status["status"] == "applied" else 0 if status["status"] == "failed" \
                else None
            record = dict(record, last_added=added)
        out.append(record)
    return out


async def fleet_blocklists(agent: Agent) -> None:
    """The agent's loop for the fleet's blocklists (runs on every host, works only on the fleet leader)."""
    while True:
        if agent.lease.acting():
            await import_due(agent)
        await anyio.sleep(CHECK_S)
