"""Host names are unique among the fleet's running servers: checked when a server starts.

A running server's agent keeps `bangui:fleet:alive:<name>` = its instance id (a random id kept in its data dir,
fleet.instance_id) alive with a short TTL. A server that starts under a name another running server holds stops
with a message (exit 2); the same data dir restarting (a crash, a new hostname) is the same instance and takes its
name back at once, and the CLI never claims a name, so a
`bangui user ...` beside its own server works on the fleet store.
"""

from __future__ import annotations

import logging
from typing import Any

import fleet
from settings import ConfigError, Settings
from store.base import offload
from store.redis_backend import FleetUnavailable

log = logging.getLogger("bangui.fleet")


def _claim(client: Any, name: str, instance: str) -> str | None:
    """Claim the name; the other instance's id when another running server holds it."""
    key = fleet.alive_key(name)
    if client.set(key, instance, nx=True, px=int(fleet.ALIVE_TTL_S * 1000)):
        return None
    holder = client.get(key)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    return None if holder in (None, instance) else str(holder)


async def claim_host_name(settings: Settings, store: Any) -> None:
    """In each worker's lifespan (`bangui serve` checked once before): ConfigError when the name is taken."""
    await offload(check_host_name, settings, store)


def check_host_name(settings: Settings, store: Any) -> None:
    name = fleet.host_name(settings)
    try:
        other = store.fleet.call(_claim, name, fleet.instance_id(settings))
    except FleetUnavailable as exc:
        log.warning("fleet: %s; serving anyway (fail2ban does not depend on bangui), retrying in the background",
                    exc.message)
        return
    if other is not None:
        raise ConfigError(f"host name {name!r} is already used by another running bangui of the fleet "
                          f"(instance {other}): set a unique BANGUI_HOST_NAME on each host")
