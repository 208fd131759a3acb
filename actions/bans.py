"""Ban and unban: in one jail, everywhere, or everything in a jail. Each records history (origin and
actor) before it returns, so a script that bans and then reads history sees its ban (read-your-writes;
deferring the write past the response lost that for 40% of immediate reads, measured). A failed history
write is logged, never an error for a ban that fail2ban carried out: the ban still reaches history
through the leader's sync of fail2ban's database.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from actions.base import Act, action
from actions.fleet_follow import follow_unbans, where
from core import refusals
from core.actor import Actor
from core.addresses import ip_list, jail_name, one_ip
from core.refusals import refusal_reason
from core.roles import Role
from core.unbans import lifted_by, unban_refusal
from errors import Forbidden, InvalidInput, NotFound
from settings import Settings
from store.base import offload
from store.inline import write

if TYPE_CHECKING:
    from f2b.client import Fail2Ban

log = logging.getLogger("bangui.history")
AUDITED_IPS = 100  # the audit entry lists this many addresses and counts the rest
BULK_CHUNK = 10_000  # a larger ban goes to fail2ban in chunks of this many (see _bulk_ban)
# A ban of more than OVERLAP_FROM (up to BULK_CHUNK) addresses goes in OVERLAP_CHUNKS chunks, so that each chunk's
# history is written while fail2ban bans the next: a fleet ban of 10,000 spent ~0.3 s of its ~2.4 s per host
# writing history after fail2ban was done (bench/fleet.py).
OVERLAP_FROM = 2_000
OVERLAP_CHUNKS = 4
INLINE_CHECKS = 1000  # more addresses than this are checked in a worker thread
INLINE_EVENTS = 16  # history records of up to this many events may be written on the event loop (store/inline.py)


async def _history(act: Act, record: Callable[..., Any], *args: Any, events: int = 1) -> None:
    try:
        if events <= INLINE_EVENTS:
            await write(act.deps.store.history.nowait, record, *args)
        else:
            await offload(record, *args)
    except Exception:
        # Retried with the original actor and origin before the audit entry completes (actions/base.py): left
        # to the sync, fail2ban's row would reach history as `auto` with no actor (issue 18).
        log.exception("could not record %r in history (retried later)", args[:2])
        act.deferred.append(functools.partial(record, *args))


async def _view(act: Act, change: Callable[..., Any], *args: Any, entries: int) -> None:
    """Show bangui's ban or unban in the view of current bans at once (store/ban_view.py). A failure is logged,
    never an error for what fail2ban carried out: the next sync of the view (within a second) shows it anyway."""
    try:
        if entries <= INLINE_EVENTS:
            await write(act.deps.store.bans.nowait, change, *args)
        else:
            await offload(change, *args)
    except Exception:
        log.exception("could not show %r in the view of current bans (the next sync will)", args[:1])


def _plan(kind: str, jail: str, ips: list[str], origin: str, source_host: str | None) -> dict[str, Any]:
    """What the leader needs to reconcile this ban/unban if its process dies midway (jobs/reconcile.py)."""
    return {"kind": kind, "jail": jail, "ips": ips, "origin": origin, "source_host": source_host}


def _audit_ips(act: Act, ips: list[str]) -> None:
    act.details.update(ips=ips[:AUDITED_IPS], count=len(ips))


@functools.lru_cache(maxsize=4)
def protected_addresses(settings: Settings) -> frozenset[str]:
    """bangui's own addresses and its proxies (core/refusals.py); a few /proc reads, once per process."""
    return frozenset(refusals.protected_addresses(settings))


def _protected_for(settings: Settings, actor: Actor) -> frozenset[str]:
    return protected_addresses(settings) | ({actor.source_ip} if actor.source_ip else frozenset())


def check_refusals(settings: Settings, actor: Actor, raw: list[str], force: bool) -> None:
    """400 `refused_address` naming every entry that must not be banned (core/refusals.py). `force` (admins
    only, audited) lifts only the self-lockout part: the caller's own address and bangui's own."""
    protected = _protected_for(settings, actor)
    refused = {}
    for entry in raw:
        reason = refusal_reason(entry, protected)
        if reason and force and refusal_reason(entry) is None:
            continue  # only self-lockout protection refused it, and an admin insists
        if reason:
            refused[entry[:100]] = reason
    if refused:
        first, why = next(iter(refused.items()))
        raise InvalidInput(f"refusing to ban {first}: {why}", code="refused_address",
                           details={"refused": refused})


def _checked(settings: Settings, actor: Actor, raw: list[str], force: bool) -> list[str]:
    if isinstance(raw, refusals.Screened) and raw.protected >= _protected_for(settings, actor):
        return list(raw)  # each entry was checked against (at least) these addresses by its maker
    check_refusals(settings, actor, raw, force)
    return ip_list(raw)


@action("jail.ban", Role.operator, target="jail", plans=True)
async def ban(act: Act, jail: str, ips: list[str], *, origin: str = "manual", force: bool = False,
              client: Fail2Ban | None = None, source_host: str | None = None) -> dict[str, list[str]]:
    """Ban every address/network (all valid or none); `{"banned": fresh, "already_banned": [...]}`.
    `force`: an admin overrides self-lockout protection (see check_refusals). `client`: a fail2ban
    client with a longer timeout for large imports (blocklists). `source_host`: with origin fleet, the host
    the ban came from (history and audit name it)."""
    jail = jail_name(jail)
    if force:
        act.details["force"] = True
        if act.actor.role is not Role.admin:
            raise Forbidden('"force" needs the admin role')
    if len(ips) > INLINE_CHECKS and not isinstance(ips, refusals.Screened):  # 100,000 would hold the loop
        ips = await offload(_checked, act.deps.settings, act.actor, ips, force)
    else:
        ips = _checked(act.deps.settings, act.actor, ips, force)
    _audit_ips(act, ips)
    if source_host:
        act.details["source_host"] = source_host
    await act.begin(_plan("ban", jail, ips, origin, source_host))
    client = client or act.deps.fail2ban
    record = functools.partial(act.deps.store.history.record_ban, source_host=source_host)
    if len(ips) > min(OVERLAP_FROM, BULK_CHUNK):
        size = BULK_CHUNK if len(ips) > BULK_CHUNK else -(-len(ips) // OVERLAP_CHUNKS)
        already = await _bulk_ban(act, client, jail, ips, origin, record, size)
        fresh = [ip for ip in ips if ip not in already]
        act.details["banned"] = len(fresh)
        await _view(act, act.deps.store.bans.added, jail, fresh, origin, entries=len(fresh))
        return {"banned": fresh, "already_banned": [ip for ip in ips if ip in already]}
    started = act.deps.store.clock()  # a bulk ban lasts seconds: history matches fail2ban's rows in its span
    already = set(await client.ban_new(jail, ips))  # one round trip for the set
    fresh = [ip for ip in ips if ip not in already]
    act.details["banned"] = len(fresh)
    if fresh:
        await _view(act, act.deps.store.bans.added, jail, fresh, origin, entries=len(fresh))
        await _history(act, functools.partial(record, since=started), jail, fresh, origin, act.actor.name,
                       events=len(fresh))
    return {"banned": fresh, "already_banned": [ip for ip in ips if ip in already]}


async def _bulk_ban(act: Act, client: Fail2Ban, jail: str, ips: list[str], origin: str,
                    record: Callable[..., Any], size: int) -> set[str]:
    """Ban a large list in chunks of `size`; return the entries banned before. Each chunk's new bans go to
    history (in a worker thread, one chunk after the other) while fail2ban bans the next chunk: a blocklist of
    100,000 takes fail2ban seconds, and writing its history afterwards took nearly as long again. A chunk's
    history is written only once fail2ban banned it, with that chunk's own span, and all of it before return."""
    in_order = anyio.Lock()  # FIFO: history writes queue here, never on SQLite's busy timeout

    async def remember(new: list[str], since: float) -> None:
        # shielded: when a later chunk fails, the chunks fail2ban did ban still reach history
        with anyio.CancelScope(shield=True):
            async with in_order:
                await _history(act, functools.partial(record, since=since), jail, new, origin,
                               act.actor.name, events=len(new))

    already: set[str] = set()
    async with anyio.create_task_group() as tg:
        for start in range(0, len(ips), size):
            chunk, since = ips[start:start + size], act.deps.store.clock()
            if start == 0:  # the ban list as it was, read in the same round trip as the first chunk's ban
                already = await client.ban_listing(jail, chunk)
            else:
                await client.ban(jail, chunk)
            act.details["applied"] = start + len(chunk)  # a failure after this is `partial`
            new = [ip for ip in chunk if ip not in already]
            if new:
                tg.start_soon(remember, new, since)
    return already


def check_unban_refusals(ips: list[str]) -> None:
    """400 `refused_address` naming every network too wide to unban (core/unbans.py): fail2ban would lift every
    ban inside it."""
    refused = {ip[:100]: why for ip in ips if (why := unban_refusal(ip)) is not None}
    if refused:
        first, why = next(iter(refused.items()))
        raise InvalidInput(f"refusing to unban {first}: {why}", code="refused_address",
                           details={"refused": refused})


async def _targets(client: Fail2Ban, jail: str, ips: list[str]) -> dict[str, list[str]]:
    """Each of `ips` (canonical, checked) -> the ban entries its unban would lift in `jail`. A network is never
    sent to fail2ban (it would lift everything inside, unrecorded): the ban list is read and core/unbans.py names
    the entries inside it. These entries are the write-ahead plan (a crash midway is reconciled on them)."""
    if not any("/" in ip for ip in ips):
        return {ip: [ip] for ip in ips}
    listing = await client.banned_ips(jail)
    return await offload(lifted_by, ips, listing) if len(listing) > INLINE_CHECKS else lifted_by(ips, listing)


async def _lift(client: Fail2Ban, jail: str, targets: dict[str, list[str]]) -> dict[str, list[str]]:
    """Unban the planned entries in one call, with the list just before it read in the same round trip, so only
    entries fail2ban still held count as lifted."""
    before = await client.unban_listing(jail, [e for entries in targets.values() for e in entries])
    return {ip: [e for e in entries if e in before] for ip, entries in targets.items()}


async def _lift_planned(act: Act, client: Fail2Ban, jail: str, ips: list[str], origin: str,
                        source_host: str | None) -> dict[str, list[str]]:
    """The entries each of `ips` lifts, written ahead as the action's plan, then lifted."""
    targets = await _targets(client, jail, ips)
    await act.begin(_plan("unban", jail, [e for entries in targets.values() for e in entries], origin, source_host))
    return await _lift(client, jail, targets)


def _audit_lifted(act: Act, lifted: list[str]) -> None:
    act.details.update(unbanned=len(lifted), lifted=lifted[:AUDITED_IPS])


@action("jail.unban", Role.operator, target="jail", plans=True)
async def unban(act: Act, jail: str, ip: str, *, origin: str = "manual",
                source_host: str | None = None, local: bool = False) -> dict[str, Any]:
    """Unban one address, or every ban inside a network (core/unbans.py); origin fleet with `source_host` when
    the fleet asked (jobs/fleet/agent.py). `{"unbanned": ip, "jail", "count": bans lifted, "lifted": [...],
    "applies": "here" | "fleet", "fleet": {"id", "hosts"} | None}`: in fleet mode an unban of an address the
    fleet shared is shared too (a fleet unban, actions/fleet_follow.py) unless `local`."""
    jail, ip = jail_name(jail), one_ip(ip)
    act.details["ip"] = ip
    if source_host:
        act.details["source_host"] = source_host
    check_unban_refusals([ip])
    lifted = (await _lift_planned(act, act.deps.fail2ban, jail, [ip], origin, source_host))[ip]
    _audit_lifted(act, lifted)
    if not lifted:
        raise NotFound(f"{ip} is not banned in {jail}", code="not_banned")
    await _view(act, act.deps.store.bans.lifted, jail, lifted, entries=len(lifted))
    await _history(act, act.deps.store.history.record_unbans, jail, lifted, act.actor.name, None, origin,
                   source_host, events=len(lifted))
    shared = await follow_unbans(act, {jail: lifted}, local)
    return {"unbanned": ip, "jail": jail, "count": len(lifted), "lifted": lifted, **where(shared)}


@action("jail.unban_many", Role.operator, target="jail", plans=True)
async def unban_many(act: Act, jail: str, ips: list[str], *, origin: str = "manual",
                     source_host: str | None = None, client: Fail2Ban | None = None,
                     requested_by: str | None = None) -> dict[str, Any]:
    """Unban many addresses/networks in one fail2ban call (a fleet unban: one call and one audit entry, not one
    per address); `{"unbanned": [entries lifted], "not_banned": [requested, lifting nothing], "count"}`. A
    network lifts the bans inside it (core/unbans.py); history records an unban for each entry lifted."""
    jail = jail_name(jail)
    ips = await offload(ip_list, ips) if len(ips) > INLINE_CHECKS else ip_list(ips)
    _audit_ips(act, ips)
    if source_host:
        act.details["source_host"] = source_host
    if requested_by:  # a fleet unban that followed this person's unban on `source_host`
        act.details["requested_by"] = requested_by
    check_unban_refusals(ips)
    plan = await _lift_planned(act, client or act.deps.fail2ban, jail, ips, origin, source_host)
    lifted = [e for entries in plan.values() for e in entries]
    act.details["unbanned"] = len(lifted)
    if lifted:
        await _view(act, act.deps.store.bans.lifted, jail, lifted, entries=len(lifted))
        await _history(act, act.deps.store.history.record_unbans, jail, lifted, act.actor.name, None, origin,
                       source_host, events=len(lifted))
    return {"unbanned": lifted, "not_banned": [ip for ip in ips if not plan[ip]], "count": len(lifted)}


@action("ban.unban_everywhere", Role.operator, target="ip", plans=True)
async def unban_everywhere(act: Act, ip: str, *, local: bool = False) -> dict[str, Any]:
    """Unban an address in every jail holding it, or every ban inside a network in every jail;
    `{"unbanned_from": [jails], "count": bans lifted, "applies", "fleet"}` (fleet mode: as `unban`). Written
    ahead with every jail's entries as the plan, so a crash midway is reconciled in each jail."""
    ip = one_ip(ip)
    check_unban_refusals([ip])
    client = act.deps.fail2ban
    if "/" in ip:
        targets = {}
        for jail in await client.jail_names():
            entries = (await _targets(client, jail, [ip]))[ip]
            if entries:
                targets[jail] = entries
    else:
        targets = {jail: [ip] for jail in await client.jails_banning(ip)}
    if targets:
        await act.begin({"kind": "unban", "jails": targets, "origin": "manual", "source_host": None})
    if "/" in ip:
        per_jail = {}
        for jail, entries in targets.items():
            lifted = (await _lift(client, jail, {ip: entries}))[ip]
            if lifted:
                per_jail[jail] = lifted
    else:
        per_jail = {jail: [ip] for jail in await client.unban_everywhere(ip)} if targets else {}
    jails = list(per_jail)
    count = sum(len(lifted) for lifted in per_jail.values())
    act.details.update(jails=jails, unbanned=count)
    if not jails:
        raise NotFound(f"{ip} is not banned in any jail", code="not_banned")
    for jail, lifted in per_jail.items():
        await _view(act, act.deps.store.bans.lifted, jail, lifted, entries=len(lifted))
        await _history(act, act.deps.store.history.record_unbans, jail, lifted, act.actor.name,
                       events=len(lifted))
    shared = await follow_unbans(act, per_jail, local)
    return {"unbanned_from": jails, "count": count, **where(shared)}
