"""Blocklists: create, delete, and "run now" (the import itself runs on the leader: jobs/blocklists.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from actions.base import Act, action
from actions.jobs import hand_to_leader
from core.addresses import jail_name
from core.roles import Role
from errors import InvalidInput, UpstreamFailed
from store.base import offload
from store.blocklists import check_name, check_url

JOB = "blocklists"


@action("blocklist.create", Role.admin, target="name")
async def create_blocklist(act: Act, name: str, url: str, jail: str, interval_s: int, enabled: bool,
                           ) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details.update(jail=jail, url=url[:300], interval_s=interval_s, enabled=enabled)
    # A typo in the jail would otherwise only show up as a failed import a day later.
    if jail not in await act.deps.fail2ban.jail_names():
        raise InvalidInput(f"fail2ban has no jail named {jail!r}", code="jail_not_found", details={"jail": jail})
    act.status = 201
    return await offload(act.deps.store.blocklists.create, name, url, jail, interval_s, enabled, act.actor.name)


@action("blocklist.preview", Role.admin, target="name")
async def preview_blocklist(act: Act, name: str, url: str, jail: str, fetch_and_parse: Callable[..., Any],
                            ) -> dict[str, Any]:
    """A dry run of an import (issue 23 item 8): fetched under the job's SSRF rules, parsed and screened by the
    ban action's refusal rules; nothing banned, nothing stored. Audited: it makes the server fetch a URL.
    `fetch_and_parse(url, settings)` is the job's own (jobs/blocklists.py; jobs import actions, not the reverse)."""
    check_name(name)
    check_url(url)
    jail = jail_name(jail)
    act.details.update(jail=jail, url=url[:300])
    if jail not in await act.deps.fail2ban.jail_names():
        raise InvalidInput(f"fail2ban has no jail named {jail!r}", code="jail_not_found", details={"jail": jail})
    try:
        parsed = await anyio.to_thread.run_sync(fetch_and_parse, url, act.deps.settings)
    except InvalidInput:
        raise
    except Exception as exc:  # BlocklistError: refused by the SSRF rules, unreachable, too big, too many entries
        raise UpstreamFailed(f"blocklist {name}: {exc}", code="blocklist_fetch_failed") from None
    result = {"entries": len(parsed.entries), "invalid": parsed.invalid - parsed.refused, "refused": parsed.refused,
              "invalid_samples": list(parsed.malformed_examples), "refused_samples": list(parsed.refused_examples)}
    act.details.update({k: result[k] for k in ("entries", "invalid", "refused")})
    return result


@action("blocklist.delete", Role.admin, target="name")
async def delete_blocklist(act: Act, name: str) -> None:
    act.status = 204
    await offload(act.deps.store.blocklists.delete, name)


@action("blocklist.run", Role.operator, target="name")
async def run_blocklist(act: Act, name: str) -> dict[str, Any]:
    """Ask the leader to import the list now; the request record."""
    return await hand_to_leader(act, JOB, functools.partial(act.deps.store.blocklists.request, name))
