"""A host joining the fleet gets the fleet's bans still in effect in bulk, not the log replayed entry by entry.

A host without a consumer group (new, or after Redis restarted empty) used to create its group at the start of
the log and apply every entry of the retention window one by one: thousands of single fail2ban calls, history
records and audit entries, and bans long over or cancelled since. Instead it folds the log, oldest first, into
the bans meant to be in effect now, for this host:
- `auto` (another host's own ban in a shared jail): banned in its jail (or BANGUI_FLEET_JAIL); this host's own:
  skipped (its fail2ban made them).
- `ban` / `unban` naming this host, or meant for every host (`scope: all`: `hosts` omitted; a host that joins
  later is one of "every host"): banned / not banned any more. An unban cancels every earlier ban of the address
  in that jail, whoever made it.
- A ban older than the jail's bantime here (`get <jail> bantime`) has ended: skipped (-1, permanent, never ends).
  Jails this host does not have are skipped (logged).
What is left is applied through the ban action, one call per (jail, source host, blocklist) (the action chunks
large lists), as fleet/applying.py says (origin fleet with the source host, or a fleet blocklist's): a few
fail2ban calls, history records and audit entries instead of thousands. Entries this host refuses (its own
protected addresses, not an address) are left out and logged, not allowed to fail the rest. Then the group is
created at the last entry read, so whatever arrived meanwhile comes through the group as usual; a crash before
that repeats the join (bans are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from actions import bans as ban_actions
from errors import AppError
from fleet import STREAM
from fleet.applying import acceptable, bulk_client, for_host, who
from fleet.log import decode

if TYPE_CHECKING:
    from fleet.agent import Agent

log = logging.getLogger("bangui.fleet")
PAGE = 1000
# (jail, ip) -> (source host, when it was published, the blocklist it came from or "")
Bans = dict[tuple[str, str], tuple[str, float, str]]
Groups = dict[tuple[str, str, str], list[str]]  # (jail, source, blocklist) -> addresses


def fold(entries: Iterable[dict[str, Any]], me: str, fleet_jail: str = "") -> Bans:
    """The bans the log, read oldest first, leaves in effect for host `me` (before bantimes)."""
    state: Bans = {}
    for item in entries:
        kind, source = item.get("kind"), str(item.get("source", "?"))
        if kind == "auto":
            if source == me:
                continue
            jail = fleet_jail or item["jail"]
        elif kind in ("ban", "unban") and for_host(item, me):
            jail = item["jail"]
        else:
            continue
        at = float(item.get("at") or time.time())
        for ip in item["ips"]:
            if kind == "unban":
                state.pop((jail, ip), None)
            else:
                state[(jail, ip)] = (source, at, str(item.get("list") or ""))
    return state


def plan(state: Bans, bantimes: dict[str, int], now: float) -> Groups:
    """(jail, source, blocklist) -> addresses still banned by now; jails missing from `bantimes` are not on
    this host."""
    groups: Groups = {}
    for (jail, ip), (source, at, blocklist) in state.items():
        bantime = bantimes.get(jail)
        if bantime is None or (bantime >= 0 and at + bantime < now):
            continue
        groups.setdefault((jail, source, blocklist), []).append(ip)
    return groups


async def read_log(agent: Agent) -> tuple[list[dict[str, Any]], str]:
    """Every entry of the log, oldest first, and the id of the last ("0" for none)."""
    entries: list[dict[str, Any]] = []
    last, start = "0", "-"
    while True:
        page = await agent.fast.xrange(STREAM, min=start, max="+", count=PAGE)
        entries += [decode(fields) for _, fields in page if fields]
        if page:
            raw = page[-1][0]
            last = raw.decode() if isinstance(raw, bytes) else str(raw)
            start = "(" + last
        if len(page) < PAGE:
            return entries, last


async def join(agent: Agent) -> str:
    """Apply the bans still in effect (see the module docstring); the log id to create the group at."""
    started = time.monotonic()
    entries, last = await read_log(agent)
    state = fold(entries, agent.name, agent.settings.fleet_jail)
    jails = sorted({jail for jail, _ in state})
    present = set(await agent.deps.fail2ban.jail_names())
    here = [j for j in jails if j in present]
    if missing := [j for j in jails if j not in present]:
        log.warning("fleet: joining: no jail %s on this host; its fleet bans are skipped", ", ".join(missing))
    bantimes = dict(zip(here, [int(b) for b in await agent.deps.fail2ban.pipeline(
        [["get", j, "bantime"] for j in here])], strict=True)) if here else {}
    groups = plan(state, bantimes, time.time())
    client = bulk_client(agent.settings)
    banned = 0
    try:
        for (jail, source, blocklist), wanted in sorted(groups.items()):
            ips, refused = acceptable(agent.settings, wanted)
            if refused:
                log.warning("fleet: joining: refusing %d fleet ban(s) from %s in %s here (protected or not an "
                            "address), e.g. %s", len(refused), source, jail, refused[0])
            if not ips:
                continue
            actor, recorded = who(source, blocklist)
            await agent.watcher.mark_applied(jail, ips)  # the fleet's bans, not this host's own
            try:
                await ban_actions.ban(agent.deps, actor, jail, ips, client=client, **recorded)
                banned += len(ips)
            except AppError as exc:
                log.warning("fleet: joining: %d ban(s) from %s in %s failed here: %s: %s", len(ips), source, jail,
                            exc.code, exc.message)
    finally:
        await client.aclose()
    log.info("fleet: host %s joined: %d log entries, %d ban(s) still in effect applied in %d call(s) in %.2f s",
             agent.name, len(entries), banned, len(groups), time.monotonic() - started)
    return last
