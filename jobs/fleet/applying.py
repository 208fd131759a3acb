"""How a host applies an entry of the fleet log: who acts, with which history origin, and what it may ban.

- A fleet ban/unban or another host's shared ban: actor `fleet:<source>` (via fleet), history origin `fleet` with
  the source host.
- A blocklist the fleet leader imported for the fleet (`origin: blocklist`, jobs/fleet/blocklists.py): actor
  `blocklist:<list>` (via fleet), history origin `blocklist`, as a single host's own import records it.
Other hosts' shared bans, blocklists and a joining host's bulk catch-up leave out the entries this host refuses
(its own protected addresses; fail2ban's lists may hold anything) instead of failing the whole batch; a fleet ban
someone asked for by hand fails visibly on the host that refuses it (its status says why), whether the host was
there when it was published or joined later.
"""

from __future__ import annotations

from typing import Any

from actions import bans as ban_actions
from core.actor import Actor
from core.addresses import canonical_ip, ip_list
from core.refusals import Screened, refusal_reason
from core.roles import Role
from errors import AppError
from f2b.client import Fail2Ban
from settings import Settings

BULK_TIMEOUT_S = 480.0  # fail2ban runs every action of every ban inside one call: large lists take a while


def for_host(item: dict[str, Any], me: str) -> bool:
    """Is this log entry meant for host `me`? (`hosts` None: an automatic ban, for every host.)"""
    hosts = item.get("hosts")
    return item.get("scope") == "all" or hosts is None or me in hosts


def batched(entries: list[tuple[Any, dict[str, Any] | None]]) -> list[tuple[list[Any], dict[str, Any] | None]]:
    """(ids, item) with consecutive automatic bans of one source and jail merged into one item: a host catching up
    on the log (it was down, or Redis was) applies hundreds of them in one ban call, not one call each. Order is
    kept; fleet bans and unbans (which have a per-host status) stay as they are."""
    out: list[tuple[list[Any], dict[str, Any] | None]] = []
    for entry_id, item in entries:
        last = out[-1][1] if out else None
        if item is not None and last is not None and item.get("kind") == last.get("kind") == "auto" \
                and item.get("source") == last.get("source") and item.get("jail") == last.get("jail"):
            out[-1][0].append(entry_id)
            last["ips"] = list(dict.fromkeys([*last["ips"], *item["ips"]]))
        else:
            out.append(([entry_id], item))
    return out


def who(source: str, blocklist: str = "") -> tuple[Actor, dict[str, Any]]:
    """The actor and the ban action's history arguments for an entry from `source` (a blocklist's, if named)."""
    if blocklist:
        name = f"blocklist:{blocklist}"
        return Actor(name, Role.operator, "fleet", None, user=name), {"origin": "blocklist"}
    name = f"fleet:{source}"
    return Actor(name, Role.operator, "fleet", None, user=name), {"origin": "fleet", "source_host": source}


def acceptable(settings: Settings, ips: list[str]) -> tuple[Screened, list[str]]:
    """(what this host may ban, what it refuses). The first is Screened: the ban action does not check it again."""
    protected = ban_actions.protected_addresses(settings)
    ok: dict[str, None] = {}
    refused: list[str] = []
    for ip in ips:
        value = canonical_ip(ip)
        if value is None or refusal_reason(ip, protected):
            refused.append(ip)
        else:
            ok[value] = None
    return Screened(ok, protected), refused


def failure(exc: AppError) -> str:
    """The `error` of a host's failed status of a fleet ban."""
    return f"{exc.code}: {exc.message}"


def refusal(settings: Settings, actor: Actor, ips: list[str]) -> str | None:
    """The `error` the ban action's checks give a fleet ban by hand of `ips` here (None: they pass): what a host
    that refuses it records, without calling the action (jobs/fleet/join.py leaves such a ban out of its bulk calls)."""
    try:
        ban_actions.check_refusals(settings, actor, ips, False)
        ip_list(ips)
    except AppError as exc:
        return failure(exc)
    return None


def unban_refused(ips: list[str]) -> str | None:
    """The `error` the unban action gives a fleet unban of `ips` here (None: it may run): a network wider than the
    ban limits, or not an address (an entry written into the log by hand). Every host refuses it alike."""
    try:
        ban_actions.check_unban_refusals(ip_list(ips))
    except AppError as exc:
        return failure(exc)
    return None


def bulk_client(settings: Settings) -> Fail2Ban:
    """A fail2ban client for one large ban (close it after)."""
    return Fail2Ban(settings.fail2ban_socket, max(settings.fail2ban_timeout, BULK_TIMEOUT_S), max_calls=1,
                    max_idle=0)
