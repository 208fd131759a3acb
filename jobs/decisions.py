"""The `decisions` job: the leader publishes fail2ban's current bans as CrowdSec decisions (issue 22).

One `get <jail> banip --with-time` per jail per run, on the leader only: a bouncer's poll reads the published
record (store/decisions.py) and never asks fail2ban. A jail fail2ban does not answer for stops the run (nothing is
published), so a fail2ban that is down never reads as "every ban lifted".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.base import offload
from store.decisions import Ban

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.definitions import JobContext


def _origin(archived: str) -> str:
    return "fail2ban" if archived == "auto" else archived  # the archive's `auto` is fail2ban's own ban


async def decisions(ctx: JobContext) -> None:
    bans = await fail2ban_bans(ctx.deps)
    if await offload(ctx.deps.store.decisions.unchanged, bans):
        return
    origins = await new_origins(ctx.deps, bans)
    await ctx.fenced(ctx.deps.store.decisions.publish, bans, origins)


async def current_bans(deps: Deps) -> tuple[list[Ban], dict[tuple[str, str], str]]:
    """fail2ban's current bans of the decisions' jails, and the origin of those not yet published."""
    bans = await fail2ban_bans(deps)
    return bans, await new_origins(deps, bans)


async def fail2ban_bans(deps: Deps) -> list[Ban]:
    """fail2ban's current bans of the decisions' jails (BANGUI_DECISIONS_JAILS, default all)."""
    wanted = [j.strip() for j in deps.settings.decisions_jails.split(",") if j.strip()]
    running = await deps.fail2ban.jail_names()
    jails = [j for j in running if j in wanted] if wanted else running
    bans: list[Ban] = []
    for jail in jails:
        bans += [(jail, b.ip, b.expires_at) for b in await deps.fail2ban.banned_with_times(jail)]
    return bans


async def new_origins(deps: Deps, bans: list[Ban]) -> dict[tuple[str, str], str]:
    """Who made each ban not yet published: the archive knows bangui's own (manual, blocklist, fleet)."""
    known = {(row[1], row[2]) for row in await offload(deps.store.decisions.rows)}
    fresh: dict[str, list[str]] = {}
    for jail, ip, _ in bans:
        if (jail, ip) not in known:
            fresh.setdefault(jail, []).append(ip)
    origins: dict[tuple[str, str], str] = {}
    for jail, ips in fresh.items():
        found = await offload(deps.store.history.ban_origins, jail, ips)
        origins.update({(jail, ip): _origin(origin) for ip, origin in found.items()})
    return origins
