"""Record bans and unbans made through bangui in the archive right away (origin `manual`, the actor),
so an unban is in history even though fail2ban deletes the ban's row when it unbans."""

from __future__ import annotations

from handlers.api import Call
from store.base import offload


async def record_bans(call: Call, jail: str, ips: list[str], origin: str = "manual") -> None:
    await offload(call.deps.store.history.record_ban, jail, ips, origin, call.actor)


async def record_unban(call: Call, jail: str, ip: str) -> None:
    await offload(call.deps.store.history.record_unban, jail, ip, call.actor)
