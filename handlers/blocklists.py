"""Scheduled blocklist imports: list, create, delete, and "run now".

The imports themselves run only on the elected leader (jobs/blocklists.py, job `blocklists`, every minute
it looks for lists due). "Run now" is handed over through the store, like `POST /jobs/{name}/run`: a
per-list request flag the job consumes, plus a run request for the `blocklists` job so that the leader
starts it within a second. No import's fetch happens in the serving worker (a preview's does: an admin's dry run,
under the same rules, in a thread). The URL is checked for form at
creation (http/https, no credentials); where it points is checked at each fetch (the SSRF rules are in
jobs/blocklists.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from actions import blocklists as actions
from core.roles import Role
from handlers.api import Call, iso, route
from handlers.jobs import Requested, handed_over
from jobs.blocklists import fetch_and_parse
from store.base import offload
from store.blocklists import MAX_INTERVAL_S, MAX_URL_LENGTH, MIN_INTERVAL_S

JOB = "blocklists"


class NewBlocklist(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_LENGTH)]
    jail: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    interval_s: Annotated[int, msgspec.Meta(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)] = 86400
    enabled: bool = True


class BlocklistInfo(msgspec.Struct):
    name: str
    url: str
    jail: str
    interval_s: int
    enabled: bool
    created: str | None
    created_by: str | None
    runs: int  # imports recorded so far
    last_run: str | None
    last_status: str | None  # null: never run; ok | error
    last_error: str | None
    last_count: int | None  # valid distinct entries in the list at the last run
    last_added: int | None  # of those, newly banned (not banned in the jail before); fleet mode: on this host
    last_invalid: int | None  # lines that were neither an address nor a network
    last_invalid_examples: list[str]
    next_due: str | None  # null: never run, so due at the job's next look (within a minute)
    # fleet mode: the fleet ban that carried the last import to every host (GET /fleet/bans/{id}: per host)
    last_fleet_ban: str | None = None


class BlocklistPreview(msgspec.Struct):
    entries: int  # valid distinct entries an import would ban
    invalid: int  # lines that are neither an address nor a network
    refused: int  # addresses/networks the ban action refuses (loopback, too wide, bangui's own...)
    invalid_samples: list[str]
    refused_samples: list[str]


def blocklist_info(r: dict[str, Any]) -> BlocklistInfo:
    """A blocklist record as the API shows it (next_due derived)."""
    due = r["last_run"] + r["interval_s"] if r.get("last_run") is not None and r["enabled"] else None
    return BlocklistInfo(r["name"], r["url"], r["jail"], r["interval_s"], r["enabled"], iso(r["created"]),
                         r.get("created_by"), int(r.get("runs") or 0), iso(r.get("last_run")),
                         r.get("last_status"), r.get("last_error"), r.get("last_count"), r.get("last_added"),
                         r.get("last_invalid"), list(r.get("last_invalid_examples") or []), iso(due),
                         r.get("last_fleet_ban"))


async def list_blocklists(call: Call) -> dict[str, list[BlocklistInfo]]:
    records = await offload(call.deps.store.blocklists.all)
    settings = call.deps.settings
    if settings.fleet_url:  # the fleet's lists; `last_added`: what this host banned anew (jobs/fleet/blocklists.py)
        from fleet import host_name
        from jobs.fleet.blocklists import added_here
        from store.redis_backend import FleetUnavailable

        try:
            records = await offload(call.deps.store.fleet.call, added_here, host_name(settings), records)
        except FleetUnavailable:  # Redis away: the lists from this host's replica, this host's count unknown
            records = [dict(r, last_added=None) if r.get("last_fleet_ban") else r for r in records]
    return {"blocklists": [blocklist_info(r) for r in records]}


async def create_blocklist(call: Call) -> BlocklistInfo:
    body: NewBlocklist = call.body
    return blocklist_info(await actions.create_blocklist(call.deps, call.actor, body.name, body.url, body.jail,
                                                body.interval_s, body.enabled))


async def preview_blocklist(call: Call) -> BlocklistPreview:
    body: NewBlocklist = call.body
    result = await actions.preview_blocklist(call.deps, call.actor, body.name, body.url, body.jail, fetch_and_parse)
    return BlocklistPreview(**result)


async def delete_blocklist(call: Call) -> None:
    await actions.delete_blocklist(call.deps, call.actor, call.param("name"))


async def run_blocklist(call: Call) -> Requested:
    name = call.param("name")
    return Requested(name, *handed_over(call.deps.store, await actions.run_blocklist(call.deps, call.actor, name)))


routes = [
    route("GET", "/blocklists", list_blocklists, Role.viewer,
          "Scheduled blocklist imports with each one's last outcome."),
    route("POST", "/blocklists", create_blocklist, Role.admin,
          "Add a blocklist: an http(s) URL of addresses/networks imported into a jail every interval_s.",
          body=NewBlocklist, response=BlocklistInfo, status=201, action=actions.create_blocklist),
    route("POST", "/blocklists/preview", preview_blocklist, Role.admin,
          "Dry run of a blocklist (the body of POST /blocklists): fetched and parsed as an import would, with "
          "counts and samples of invalid and refused lines; nothing banned, nothing stored.",
          body=NewBlocklist, response=BlocklistPreview, action=actions.preview_blocklist),
    route("DELETE", "/blocklists/{name}", delete_blocklist, Role.admin,
          "Remove a blocklist (its bans stay until the jail's bantime ends).", status=204,
          action=actions.delete_blocklist),
    route("POST", "/blocklists/{name}/run", run_blocklist, Role.operator,
          "Ask the leader to import a blocklist now (202; also for a disabled list).",
          response=Requested, status=202, action=actions.run_blocklist),
]
