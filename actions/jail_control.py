"""Jail control (issue 10): stop, start, reload, idle and unban-all, each one state change of fail2ban.

Callers: `await stop_jail(deps, actor, "sshd")` (see actions/base.py: role check and one audit entry).
Bans that a stop or an unban-all lifts are recorded in history as unbans by the actor (fail2ban deletes
its own rows of an unban, so nothing else would remember them); as in actions/bans.py a failed history
write is logged, never an error for a change fail2ban carried out.

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
from collections.abc import AsyncIterator
from typing import Any

from actions.base import Act, action
from core.addresses import jail_name
from core.roles import Role
from errors import Conflict, Rejected
from f2b.client import Fail2Ban, Fail2BanCommandError, JailNotFound
from f2b.engine_client import ConfigInvalid, configured_jails, jail_stream
from f2bconfig import formula
from store.base import offload

log = logging.getLogger("bangui.jails")
UNBAN_CHUNK = 500  # addresses per unban call (~1.5 s with a shell action at ~3 ms each): others' calls wait
UNBAN_ROUNDS = 3  # re-read the list: bans that arrive while we unban are lifted too
SLOW_TIMEOUT = 120.0  # seconds for one stop/start/reload/unban call (see _slow_client)


@contextlib.asynccontextmanager
async def _slow_client(act: Act) -> AsyncIterator[Fail2Ban]:
    """A client with a long timeout for calls whose duration is fail2ban's actions' (a stop runs every
    unban/flush command; a start runs actionstart): a short timeout would report a failure for work that
    fail2ban still completes, and lose the history of it."""
    client = Fail2Ban(act.deps.fail2ban.socket_path, timeout=max(SLOW_TIMEOUT, act.deps.fail2ban.timeout),
                      max_calls=1, max_idle=1)
    try:
        yield client
    finally:
        await client.aclose()


async def _record_unbans(act: Act, jail: str, ips: list[str]) -> None:
    """History, and the view of current bans at once (as actions/bans.py does for an unban): without it `GET
    /jails/{jail}` and `/bans` listed the lifted bans until the next sync, beside counters saying 0."""
    if not ips:
        return
    try:
        await offload(act.deps.store.history.record_unbans, jail, ips, act.actor.name)
    except Exception:
        log.exception("could not record %d unbans in %s in history", len(ips), jail)
    try:
        await offload(act.deps.store.bans.lifted, jail, ips)
    except Exception:
        log.exception("could not show %d unbans in %s in the view of current bans (the next sync will)", len(ips), jail)


async def _is_running(act: Act, jail: str) -> bool:
    return jail in await act.deps.fail2ban.jail_names()


@action("jail.stop", Role.admin, target="jail")
async def stop_jail(act: Act, jail: str) -> dict[str, Any]:
    """Stop ``jail``; its bans are lifted (fail2ban's actions stop) and recorded as unbans. fail2ban keeps
    them in its database: a later start restores the unexpired ones, which the history sync records as
    open again (store/history_reconcile.py). Stopping a stopped jail that the configuration defines is
    fine; an unknown one is 404 jail_not_found."""
    jail = jail_name(jail)
    try:
        # One round trip, run in order by fail2ban: the list is what the stop lifts.
        async with _slow_client(act) as client:
            bans, _ = await client.pipeline([("get", jail, "banip"), ("stop", jail)])
    except JailNotFound:
        try:
            configured = await configured_jails(act.deps.settings.fail2ban_config_dir)
        except ConfigInvalid:  # no readable configuration: the jail is simply unknown
            configured = []
        if jail not in configured:
            raise
        act.details["was_active"] = False
        return {"jail": jail, "active": False}
    act.deps.store.runtime.forget_idle(jail)  # a stopped jail is deleted from fail2ban, its flags with it
    ips = [str(ip) for ip in bans]
    act.details.update(was_active=True, unbanned=len(ips))
    await _record_unbans(act, jail, ips)
    return {"jail": jail, "active": False}


async def _checked_stream(act: Act, jail: str) -> list[Any]:
    """The command stream fail2ban's readers make of ``jail``'s configuration (404 / 422 from them), refused (422)
    when an option fail2ban eval()s as root holds more than arithmetic (a hand edit: f2bconfig/formula.py)."""
    stream = await jail_stream(act.deps.settings.fail2ban_config_dir, jail)
    problem = formula.evaluated_problem(formula.stream_values(stream))
    if problem is not None:
        _, key, why = problem
        raise ConfigInvalid(f"fail2ban would eval() {why}", details={"errors": [why], "jail": jail, "option": key})
    return stream


@action("jail.start", Role.admin, target="jail")
async def start_jail(act: Act, jail: str) -> dict[str, Any]:
    """Start a jail the configuration defines, enabled or not (a running one stays as it is)."""
    jail = jail_name(jail)
    if await _is_running(act, jail):
        act.details["was_active"] = True
        return {"jail": jail, "active": True}
    act.details["was_active"] = False
    stream = await _checked_stream(act, jail)
    async with _slow_client(act) as client:
        try:
            await client.reload_jail(jail, stream, if_exists=True)
        except Fail2BanCommandError as exc:
            # The stream adds the jail before it starts it: a failed start must not leave it half there.
            with contextlib.suppress(JailNotFound):
                await client.stop_jail(jail)
            raise Rejected(f"fail2ban could not start {jail}: {exc.message}", code="apply_failed",
                           details=exc.details) from None
    act.deps.store.runtime.forget_idle(jail)
    if not await _is_running(act, jail):
        raise Rejected(f"fail2ban did not start {jail}; its log says why", code="apply_failed")
    return {"jail": jail, "active": True}


@action("jail.reload", Role.admin, target="jail")
async def reload_jail(act: Act, jail: str) -> dict[str, Any]:
    """Re-read ``jail``'s configuration into the running jail (its bans stay)."""
    jail = jail_name(jail)
    stream = await _checked_stream(act, jail)
    act.deps.store.runtime.forget_idle(jail)  # whether a reload keeps the flag is not documented: unknown now
    try:
        async with _slow_client(act) as client:
            await client.reload_jail(jail, stream)
    except JailNotFound:
        raise Conflict(f"jail {jail} is not running: POST /api/v1/jails/{jail}/start starts it",
                       code="jail_not_active", details={"jail": jail}) from None
    return {"jail": jail, "active": True}


@action("jail.idle", Role.admin, target="jail")
async def set_idle(act: Act, jail: str, idle: bool) -> dict[str, Any]:
    """Idle: the jail keeps reading its logs but bans nobody (fail2ban's `set <jail> idle on|off`)."""
    jail = jail_name(jail)
    now = await act.deps.fail2ban.set_idle(jail, idle)
    act.details["idle"] = now
    act.deps.store.runtime.remember_idle(jail, now, act.deps.fail2ban.server_identity())
    return {"jail": jail, "idle": now}


@action("jail.unban_all", Role.admin, target="jail")
async def unban_all(act: Act, jail: str) -> dict[str, Any]:
    """Unban every address banned in ``jail``; each is recorded in history as an unban by the actor."""
    jail = jail_name(jail)
    total, lifted = 0, []
    try:
        async with _slow_client(act) as client:
            for _ in range(UNBAN_ROUNDS):
                ips = await client.banned_ips(jail)
                if not ips:
                    break
                for start in range(0, len(ips), UNBAN_CHUNK):
                    chunk = ips[start:start + UNBAN_CHUNK]
                    total += await client.unban_many(jail, chunk)
                    lifted += chunk
    finally:  # a failure half-way still records what was lifted
        act.details["unbanned"] = total
        await _record_unbans(act, jail, lifted)
    return {"jail": jail, "unbanned": total}
