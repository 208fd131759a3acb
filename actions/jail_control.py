"""Jail control (issue 10): stop, start, reload, idle and unban-all, each one state change of fail2ban.

Every function takes ``(deps, actor, ..., details)``: ``actor`` is the name history records, ``details``
collects what the audit entry should say. Bans that a stop or an unban-all lifts are recorded in history
as unbans by the actor (fail2ban deletes its own rows of an unban, so nothing else would remember them);
as in handlers/history_hooks.py a failed history write is logged, never an error for a done change.

fail2ban 1.0.2 facts this relies on (measured):
- `stop <jail>` deletes the jail from the server; a later `start <jail>` is then "unknown jail". Starting
  a jail therefore always goes through the configuration: `reload <jail> --if-exists <stream>` with the
  jail's command stream from fail2ban's own readers, exactly what `fail2ban-client reload` sends.
- `reload <jail> <stream>` keeps the jail's current bans; an empty stream would DELETE the jail (the
  stream is built with force_enable, so a jail disabled in the files is reloaded, never dropped).
- There is no per-jail "unban all" command on the socket: read the list, unban it in chunks (each chunk is
  one call; fail2ban runs the actions' unban for each address before it answers).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from errors import AppError, Conflict
from f2b.client import Fail2BanCommandError, JailNotFound
from f2b.engine_client import configured_jails, jail_stream
from store.base import offload

if TYPE_CHECKING:
    from handlers.deps import Deps  # core.deps once the action layer lands

log = logging.getLogger("bangui.jails")
UNBAN_CHUNK = 500  # addresses per unban call: ~1.5 s with a shell action at ~3 ms each (timeout 5 s)
UNBAN_ROUNDS = 3  # re-read the list: bans that arrive while we unban are lifted too


async def _record_unbans(deps: Deps, actor: str, jail: str, ips: list[str]) -> None:
    if not ips:
        return
    try:
        await offload(deps.store.history.record_unbans, jail, ips, actor)
    except Exception:
        log.exception("could not record %d unbans in %s in history", len(ips), jail)


async def _is_running(deps: Deps, jail: str) -> bool:
    return jail in await deps.fail2ban.jail_names()


async def stop_jail(deps: Deps, actor: str, jail: str, details: dict[str, Any]) -> dict[str, Any]:
    """Stop ``jail``; its bans are lifted (fail2ban's actions stop) and recorded as unbans."""
    try:
        # One round trip, run in order by fail2ban: the list is what the stop lifts.
        bans, _ = await deps.fail2ban.pipeline([("get", jail, "banip"), ("stop", jail)])
    except JailNotFound:
        if jail not in await configured_jails(deps.settings.fail2ban_config_dir):
            raise
        details["was_active"] = False
        return {"jail": jail, "active": False}
    ips = [str(ip) for ip in bans]
    details.update(was_active=True, unbanned=len(ips))
    await _record_unbans(deps, actor, jail, ips)
    return {"jail": jail, "active": False}


async def start_jail(deps: Deps, actor: str, jail: str, details: dict[str, Any]) -> dict[str, Any]:
    """Start a jail the configuration defines, enabled or not (a running one stays as it is)."""
    if await _is_running(deps, jail):
        details["was_active"] = True
        return {"jail": jail, "active": True}
    details["was_active"] = False
    stream = await jail_stream(deps.settings.fail2ban_config_dir, jail)  # 404 / 422 from fail2ban's readers
    try:
        await deps.fail2ban.reload_jail(jail, stream, if_exists=True)
    except Fail2BanCommandError as exc:
        # The stream adds the jail before it starts it: a failed start must not leave it half there.
        with contextlib.suppress(JailNotFound):
            await deps.fail2ban.stop_jail(jail)
        raise AppError(f"fail2ban could not start {jail}: {exc.message}", code="apply_failed", status=422,
                       details=exc.details) from None
    if not await _is_running(deps, jail):
        raise AppError(f"fail2ban did not start {jail}; its log says why", code="apply_failed", status=422)
    return {"jail": jail, "active": True}


async def reload_jail(deps: Deps, actor: str, jail: str, details: dict[str, Any]) -> dict[str, Any]:
    """Re-read ``jail``'s configuration into the running jail (its bans stay)."""
    stream = await jail_stream(deps.settings.fail2ban_config_dir, jail)
    try:
        await deps.fail2ban.reload_jail(jail, stream)
    except JailNotFound:
        raise Conflict(f"jail {jail} is not running: POST /api/v1/jails/{jail}/start starts it",
                       code="jail_not_active", details={"jail": jail}) from None
    return {"jail": jail, "active": True}


async def set_idle(deps: Deps, actor: str, jail: str, idle: bool, details: dict[str, Any]) -> dict[str, Any]:
    """Idle: the jail keeps reading its logs but bans nobody (fail2ban's `set <jail> idle on|off`)."""
    now = await deps.fail2ban.set_idle(jail, idle)
    details["idle"] = now
    return {"jail": jail, "idle": now}


async def unban_all(deps: Deps, actor: str, jail: str, details: dict[str, Any]) -> dict[str, Any]:
    """Unban every address banned in ``jail``; each is recorded in history as an unban by ``actor``."""
    client, total, lifted = deps.fail2ban, 0, []
    try:
        for _ in range(UNBAN_ROUNDS):
            ips = await client.banned_ips(jail)
            if not ips:
                break
            for start in range(0, len(ips), UNBAN_CHUNK):
                chunk = ips[start:start + UNBAN_CHUNK]
                total += await client.unban_many(jail, chunk)
                lifted += chunk
    finally:  # a failure half-way still records what was lifted
        details["unbanned"] = total
        await _record_unbans(deps, actor, jail, lifted)
    return {"jail": jail, "unbanned": total}
