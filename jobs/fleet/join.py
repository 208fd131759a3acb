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
large lists), as jobs/fleet/applying.py says (origin fleet with the source host, or a fleet blocklist's): a few
fail2ban calls, history records and audit entries instead of thousands. Entries this host refuses (its own
protected addresses, not an address) are left out and logged, not allowed to fail the rest; but a fleet ban
someone asked for by hand is all or nothing on every host, so one with an entry refused here is left out whole.
Then the host records its status of each fleet ban and unban of the log meant for it (`statuses`), as a host
that was there when it was published would have: `GET /fleet/bans/{id}` lists it too. Then the group is created
at the last entry read, so whatever arrived meanwhile comes through the group as usual; a crash before that
repeats the join (bans are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from actions import bans as ban_actions
from core.addresses import canonical_ip, ip_list
from core.refusals import Screened
from core.unbans import lifted_by
from errors import AppError
from f2b.client import Fail2Ban, JailNotFound
from fleet import STREAM
from fleet.log import host_status, parse
from jobs.fleet.applying import acceptable, bulk_client, failure, for_host, refusal, unban_refused, who
from store.base import offload

if TYPE_CHECKING:
    from jobs.fleet.agent import Agent

log = logging.getLogger("bangui.fleet")
PAGE = 1000


class Ban(NamedTuple):
    """An address banned in a jail by the log: who published it, when, the blocklist it came from ("" for none) and
    the fleet ban it belongs to ("" for another host's automatic ban, which has no per-host status)."""

    source: str
    at: float
    blocklist: str = ""
    ban_id: str = ""


Bans = dict[tuple[str, str], Ban]  # (jail, ip) -> why it is banned
Groups = dict[tuple[str, str, str], list[str]]  # (jail, source, blocklist) -> addresses
Outcomes = dict[str, tuple[str, str | None, int | None]]  # fleet ban id -> (status, error, added) here


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
        if kind == "unban":
            _unban(state, jail, item["ips"])
            continue
        for ip in item["ips"]:
            state[(jail, ip)] = Ban(source, at, str(item.get("list") or ""), str(item.get("id") or ""))
    return state


def _unban(state: Bans, jail: str, ips: list[str]) -> None:
    """What an unban entry lifts, as the unban action lifts it on a host that was there (core/unbans.py): nothing
    when it is refused (too wide a network, written into the log by hand), every ban inside a network."""
    if not any("/" in ip for ip in ips):
        for ip in ips:
            state.pop((jail, ip), None)
        return
    if unban_refused(ips) is not None:
        return
    banned = [ip for j, ip in state if j == jail]
    for lifted in lifted_by(ip_list(ips), banned).values():
        for ip in lifted:
            state.pop((jail, ip), None)


def plan(state: Bans, bantimes: dict[str, int], now: float) -> Groups:
    """(jail, source, blocklist) -> addresses still banned by now; jails missing from `bantimes` are not on
    this host."""
    groups: Groups = {}
    for (jail, ip), ban in state.items():
        bantime = bantimes.get(jail)
        if bantime is None or (bantime >= 0 and ban.at + bantime < now):
            continue
        groups.setdefault((jail, ban.source, ban.blocklist), []).append(ip)
    return groups


def statuses(entries: Iterable[dict[str, Any]], me: str, jails: set[str], outcomes: Outcomes) -> dict[str, str]:
    """Host `me`'s status (fleet.log.host_status) of each fleet ban and unban of the log meant for it, as a host
    there when it was published would have recorded it: a ban applied here is applied with how many addresses
    it banned anew (`outcomes`), one it could not apply failed with the reason its ban action would give (the
    jail is not among `jails`, or a refused entry); a ban already over (cancelled by a later unban, past the
    bantime) and every unban (the fold applied it) are applied with nothing added. Bans naming other hosts
    only: none."""
    out: dict[str, str] = {}
    for item in entries:
        ban_id, kind = str(item.get("id") or ""), item.get("kind")
        if not ban_id or kind not in ("ban", "unban") or not for_host(item, me):
            continue
        if item["jail"] not in jails:  # the words of the client's error for fail2ban's UnknownJail
            out[ban_id] = host_status("failed", failure(JailNotFound(f"fail2ban has no jail named {item['jail']!r}")))
        elif ban_id in outcomes:
            out[ban_id] = host_status(*outcomes[ban_id])
        elif kind == "unban" and (error := unban_refused(item["ips"])) is not None:
            out[ban_id] = host_status("failed", error)
        else:
            out[ban_id] = host_status("applied", None, 0 if kind == "ban" else None)
    return out


def screen(agent: Agent, state: Bans, group: tuple[str, str, str], wanted: list[str],
           ) -> tuple[Screened, dict[str, str], dict[str, str | None]]:
    """(what of one group this host bans, the fleet ban of each canonical address, fleet bans failed here and why).
    Refused entries are left out (logged); a fleet ban by hand with one is left out whole, with the reason its ban
    action gives on a host there when it was published. Blocking: 100,000 addresses take a while (offload it)."""
    jail, source, blocklist = group
    ips, refused = acceptable(agent.settings, wanted)
    owner = {canonical_ip(ip) or ip: state[(jail, ip)].ban_id for ip in wanted}
    if refused:
        log.warning("fleet: joining: refusing %d fleet ban(s) from %s in %s here (protected or not an address), "
                    "e.g. %.64r", len(refused), source, jail, refused[0])
    whole = set() if blocklist else {state[(jail, ip)].ban_id for ip in refused} - {""}
    theirs: dict[str, list[str]] = {}
    for ip in wanted if whole else ():
        theirs.setdefault(state[(jail, ip)].ban_id, []).append(ip)
    actor = who(source)[0]
    failed = {ban_id: refusal(agent.settings, actor, theirs[ban_id]) for ban_id in whole}
    if failed:
        ips = Screened([ip for ip in ips if owner[ip] not in failed], ips.protected)
    return ips, owner, failed


async def apply_group(agent: Agent, client: Fail2Ban, state: Bans, group: tuple[str, str, str], wanted: list[str],
                      outcomes: Outcomes) -> int:
    """Ban one (jail, source, blocklist) group in one ban action; note each fleet ban's outcome in `outcomes`.
    The number of addresses banned anew."""
    jail, source, blocklist = group
    ips, owner, failed = await offload(screen, agent, state, group, wanted)
    outcomes.update((ban_id, ("failed", error, None)) for ban_id, error in failed.items())
    ids = {owner[ip] for ip in ips} - {""}
    if not ips:
        return 0
    actor, recorded = who(source, blocklist)
    await agent.watcher.mark_applied(jail, ips)  # the fleet's bans, not this host's own
    try:
        fresh = (await ban_actions.ban(agent.deps, actor, jail, ips, client=client, **recorded))["banned"]
    except AppError as exc:
        log.warning("fleet: joining: %d ban(s) from %s in %s failed here: %s: %s", len(ips), source, jail,
                    exc.code, exc.message)
        outcomes.update((ban_id, ("failed", failure(exc), None)) for ban_id in ids)
        return 0
    added = Counter(owner[ip] for ip in fresh)
    outcomes.update((ban_id, ("applied", None, added[ban_id])) for ban_id in ids)
    return len(fresh)


async def read_log(agent: Agent) -> tuple[list[dict[str, Any]], str]:
    """Every entry of the log, oldest first, and the id of the last ("0" for none)."""
    entries: list[dict[str, Any]] = []
    last, start = "0", "-"
    while True:
        page = await agent.fast.xrange(STREAM, min=start, max="+", count=PAGE)
        limit = 2 * agent.settings.blocklist_max_bytes
        entries += [item for entry_id, fields in page if fields and (item := parse(entry_id, fields, limit))]
        if page:
            raw = page[-1][0]
            last = raw.decode() if isinstance(raw, bytes) else str(raw)
            start = "(" + last
        if len(page) < PAGE:
            return entries, last


async def join(agent: Agent) -> str:
    """Apply the bans still in effect and record this host's status of the log's fleet bans (see the module
    docstring); the log id to create the group at."""
    started = time.monotonic()
    entries, last = await read_log(agent)
    # fold, plan and statuses each pass over the whole log or its bans (up to the retention's worth, ~100,000
    # entries): off the event loop, which serves requests meanwhile.
    state = await offload(fold, entries, agent.name, agent.settings.fleet_jail)
    jails = sorted({jail for jail, _ in state})
    present = set(await agent.deps.fail2ban.jail_names())
    here = [j for j in jails if j in present]
    if missing := [j for j in jails if j not in present]:
        log.warning("fleet: joining: no jail %s on this host; its fleet bans are skipped", ", ".join(missing))
    bantimes = dict(zip(here, [int(b) for b in await agent.deps.fail2ban.pipeline(
        [["get", j, "bantime"] for j in here])], strict=True)) if here else {}
    groups = await offload(plan, state, bantimes, time.time())
    client = bulk_client(agent.settings)
    outcomes: Outcomes = {}
    banned = 0
    try:
        for group, wanted in sorted(groups.items()):
            banned += await apply_group(agent, client, state, group, wanted, outcomes)
    finally:
        await client.aclose()
    await agent.record_statuses(await offload(statuses, entries, agent.name, present, outcomes))
    log.info("fleet: host %s joined: %d log entries, %d ban(s) still in effect applied in %d call(s) in %.2f s",
             agent.name, len(entries), banned, len(groups), time.monotonic() - started)
    return last
