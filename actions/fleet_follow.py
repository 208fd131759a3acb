"""Unbans follow bans in fleet mode (issue 21 item 4): an unban on this host of an address the fleet shared is
published as a fleet unban for every other host, with the person who asked, unless the request says local.

"Shared by the fleet": the jail is one of this host's shared jails (BANGUI_FLEET_SHARE_JAILS: its bans went
everywhere) or the jail that receives other hosts' shared bans (BANGUI_FLEET_JAIL), or this host's history says
the address's latest ban in that jail came from the fleet (a fleet ban, another host's shared ban). The unban
here has happened when this runs: a fleet that cannot be reached (Redis away) is said in the answer
(`fleet[].error`, `queued`), it does not undo or fail the local unban, and the fleet unban waits in the host's
outbox (fleet/outbox.py) until the agent publishes it, in order after the shared bans buffered before it. The
fleet's own unbans (actor via fleet) never follow: no loops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fleet
from actions.base import Act
from errors import AppError, Unavailable
from fleet.log import followed_unban, publish_followed_unban
from fleet.outbox import Outbox
from store.base import offload


async def follow_unbans(act: Act, per_jail: dict[str, list[str]], local: bool) -> list[dict[str, Any]] | None:
    """Publish the fleet unbans of `per_jail` (jail -> entries lifted here); what was published, per jail, or None
    when the unban applies here only (not fleet mode, `local`, nothing the fleet shared)."""
    settings = act.deps.settings
    if not settings.fleet_url or act.actor.via == "fleet" or not any(per_jail.values()):
        return None
    if local:
        act.details["local"] = True
        return None
    shared_jails = set(fleet.shared_jails(settings))
    out: list[dict[str, Any]] = []
    for jail, lifted in per_jail.items():
        if not lifted:
            continue
        if jail in shared_jails or jail == settings.fleet_jail:
            ips = list(lifted)
        else:
            origins = await offload(act.deps.store.history.ban_origins, jail, lifted)
            ips = [ip for ip in lifted if origins.get(ip) == "fleet"]
        if not ips:
            continue
        try:
            published = await offload(act.deps.store.fleet.call, publish_followed_unban, jail, ips,
                                      fleet.host_name(settings), settings.fleet_retention_hours, act.actor.name,
                                      jail in shared_jails)
        except Unavailable as exc:  # Redis away: the unban here stands, the fleet's waits in the outbox
            await offload(Outbox(Path(act.deps.store.path)).append,
                          followed_unban(jail, ips, fleet.host_name(settings), act.actor.name, jail in shared_jails))
            out.append({"jail": jail, "ips": ips, "id": None, "hosts": [], "queued": True,
                        "error": f"{exc.code}: {exc.message}; queued in this host's outbox: published for the "
                                 "other hosts when Redis answers again"})
            continue
        except AppError as exc:  # the unban here stands; the answer says the fleet's did not
            out.append({"jail": jail, "ips": ips, "id": None, "hosts": [], "error": f"{exc.code}: {exc.message}"})
            continue
        if published is not None:
            out.append({"jail": jail, "ips": ips, **published})
    if not out:
        return None
    act.details["fleet"] = [{k: v for k, v in o.items() if k != "ips"} for o in out]
    return out


def where(shared: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The answer's part that says where an unban applies: here only, or also through the fleet (ids, hosts)."""
    if not shared:
        return {"applies": "here", "fleet": None}
    return {"applies": "fleet", "fleet": shared}
