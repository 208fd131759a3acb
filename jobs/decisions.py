"""The `decisions` job: the leader keeps the view of fail2ban's current bans (store/ban_view.py) that the API's ban
lists, address lookups and the CrowdSec decisions stream serve from (issues 22 and 25).

A run asks fail2ban for its counters only (`status <jail> short`, no ban list): while every jail's banned-now
and banned-in-total counters and fail2ban's socket are unchanged, the view is current and only its `as_of`
moves. Otherwise, and at least every FULL_EVERY_S (a re-ban that prolongs a ban moves no counter), it reads
every jail's `get <jail> banip --with-time`, and publishes the difference unless the lists are the ones last
published (their digest: a periodic read of 100,000 unchanged bans builds no rows; building them grew the
leader by ~40 MB). A worker whose view is older than one interval (no leader yet, or a leader that lags) runs
the same sync itself before it answers (`fresh_view`). A jail fail2ban does not answer for stops the run
(nothing is published), so a fail2ban that is down never reads as "every ban lifted".
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

import anyio

from store.ban_view import Ban, signature_of
from store.base import offload

if TYPE_CHECKING:
    from core.deps import Deps
    from f2b.client import Fail2Ban
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs")
FULL_EVERY_S = 30.0
_lock: anyio.Lock | None = None  # one on-demand sync at a time in this process


def _origin(archived: str) -> str:
    return "fail2ban" if archived == "auto" else archived  # the archive's `auto` is fail2ban's own ban


async def decisions(ctx: JobContext) -> None:
    await sync(ctx.deps)
    store = ctx.deps.store
    if not await offload(store.decisions.trim_due):
        return
    # fleet mode: a bouncer may come back through this host after polling others (store/decisions.py `trim`); the
    # fleet's bouncer records are read before the trim's transaction, never inside it
    fleet_pulled_since = await offload(store.bouncers.oldest_pull) if ctx.deps.settings.fleet_url else None
    await offload(store.decisions.trim, True, fleet_pulled_since)


async def sync(deps: Deps, full: bool = False) -> None:
    """Bring the view up to what fail2ban bans now (see the module docstring)."""
    view, client = deps.store.bans, deps.fail2ban
    read_at = deps.store.clock()
    summary = await client.server_summary()
    jails = [j.name for j in summary.jails]
    signature = signature_of(client.server_identity(),
                             [(j.name, j.currently_banned, j.total_banned) for j in summary.jails])
    if (not full and await offload(view.signature) == signature
            and read_at - await offload(view.full_at) < FULL_EVERY_S):
        await offload(view.touch, read_at)
        return
    lines = {jail: await client.ban_time_lines(jail) for jail in jails}
    digest = await offload(lists_digest, lines)
    if not full and await offload(view.meta, "lists") == digest:  # a periodic read that found nothing new
        await offload(view.touch, read_at, signature)
        return
    bans = await offload(parsed, client, lines)  # 100,000 lines: ~1 s of strptime, not on the event loop
    del lines
    bantimes = dict(zip(jails, [int(t) for t in await client.pipeline([("get", j, "bantime") for j in jails])],
                        strict=True)) if jails else {}
    history = deps.store.history

    def origins(jail: str, ips: list[str]) -> dict[str, str]:
        return {ip: _origin(origin) for ip, origin in history.ban_origins(jail, ips).items()}

    await offload(view.publish, bans, origins, read_at, signature, bantimes, digest)


def lists_digest(lines: dict[str, list[str]]) -> str:
    """A digest of fail2ban's ban lists as it sent them (addresses, starts and ends)."""
    digest = hashlib.blake2b(digest_size=16)
    for jail, jail_lines in sorted(lines.items()):
        digest.update(jail.encode() + b"\0" + "\n".join(sorted(jail_lines)).encode() + b"\0")
    return digest.hexdigest()


def parsed(client: Fail2Ban, lines: dict[str, list[str]]) -> list[Ban]:
    return [(jail, b.ip, b.banned_at, b.expires_at) for jail, jail_lines in lines.items()
            for b in client.parse_ban_times(jail_lines)]


async def fresh_view(deps: Deps) -> float:
    """The view's `as_of`, after syncing it here when it is older than one sync interval. A fail2ban that does
    not answer leaves an older view served (its age says so); with no view at all its error is the answer."""
    global _lock
    view, max_age = deps.store.bans, deps.settings.decisions_seconds
    as_of = view.as_of()
    if as_of is not None and deps.store.clock() - as_of <= max_age:
        return as_of
    if _lock is None:
        _lock = anyio.Lock()
    async with _lock:
        as_of = view.as_of()
        if as_of is not None and deps.store.clock() - as_of <= max_age:
            return as_of  # another request of this process just synced
        try:
            await sync(deps)
        except Exception as exc:
            if as_of is None:
                raise
            log.warning("serving bans as of %.1f s ago: the view could not be synced: %s",
                        deps.store.clock() - as_of, exc)
    return view.as_of() or deps.store.clock()
