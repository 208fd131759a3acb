"""Configuration changes as audited actions: jail settings and ignore lists, server settings and reload,
jail activation, file writes/deletes and reverts. Each runs `f2bconfig.operations` in a worker thread
(validated with fail2ban's own tools, applied, verified, rolled back on failure; see f2bconfig/engine.py)
and audits the change id and the diff; a refused change audits fail2ban's message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actions.base import Act, action
from core.addresses import jail_name
from core.roles import Role
from errors import AppError
from f2bconfig import formula
from f2bconfig import operations as ops
from f2bconfig.engine import engine_for
from f2bconfig.errors import ConfigBusy
from store.base import offload

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.config")
MAX_AUDITED_DIFF = 20_000  # characters of diff kept in the audit entry (the change log keeps all of it)
# Action files can hold credentials (e.g. an API token for a cloud firewall): their values stay out of the audit.
_SECRET_LINE = re.compile(r"^([+\- ]\s*[\w.\-]*(?:pass|secret|token|key|auth)[\w.\-]*\s*[=:]).*$",
                          re.IGNORECASE | re.MULTILINE)


def audited_diff(diff: str) -> str:
    return _SECRET_LINE.sub(r"\1 <redacted>", diff)[:MAX_AUDITED_DIFF]


async def _run(act: Act, func: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    engine = engine_for(act.deps)
    # the change id is known before the change starts: a change interrupted by a crash is recorded
    # under the same id in config/changes as in this action's audit entry
    engine.change_id = act.details["change"] = engine.changes.new_id()
    try:
        result = await offload(func, engine, act.actor.name, *args)
    except AppError as exc:
        act.details.pop("change")  # not applied: no record carries this id
        for key in ("errors", "failed", "path", "entry", "rolled_back", "recovered"):
            if key in exc.details:
                act.details[key] = exc.details[key]
        raise
    if "change" in result:
        act.details["change"] = result["change"]
    if "diff" in result:
        act.details["diff"] = audited_diff(result["diff"])
    return result


@action("jail.update", Role.admin, target="jail")
async def update_jail(act: Act, jail: str, changes: dict[str, Any]) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details["changes"] = {k: v for k, v in changes.items() if v is not None}
    increment = changes.get("bantime_increment") or {}
    if increment.get("formula") is not None:  # fail2ban eval()s it as root: checked here, whoever calls
        formula.check(str(increment["formula"]))
    if increment.get("factor") is not None:  # eval()ed too
        formula.check_factor(str(increment["factor"]))
    return await _run(act, ops.patch_jail, jail, changes)


@action("jail.ignoreip_add", Role.operator, target="jail")
async def add_ignoreip(act: Act, jail: str, entries: list[str]) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details["entries"] = entries[:100]
    return await _run(act, ops.ignoreip_add, jail, entries)


@action("jail.ignoreip_remove", Role.operator, target="jail")
async def remove_ignoreip(act: Act, jail: str, entry: str) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details["entry"] = entry[:100]
    return await _run(act, ops.ignoreip_remove, jail, entry)


@action("server.settings_update", Role.admin)
async def update_server_settings(act: Act, changes: dict[str, Any]) -> dict[str, Any]:
    act.details["changes"] = {k: v for k, v in changes.items() if v is not None}
    return await _run(act, ops.update_server_settings, changes)


@action("server.reload", Role.admin)
async def reload_server(act: Act) -> dict[str, Any]:
    result = await _run(act, ops.reload_server)
    act.details["jails"] = result["jails"]
    return result


@action("server.restart", Role.admin)
async def restart_server(act: Act) -> dict[str, Any]:
    result = await _run(act, ops.restart_server)
    act.details.update(jails=result["jails"], banned_again=result["banned_again"])
    return result


@action("config.jail_activate", Role.admin, target="jail")
async def activate_jail(act: Act, jail: str, overrides: dict[str, Any]) -> dict[str, Any]:
    jail = jail_name(jail)
    act.details["overrides"] = {k: v for k, v in overrides.items() if v is not None}
    return await _run(act, ops.activate, jail, overrides)


@action("config.jail_deactivate", Role.admin, target="jail")
async def deactivate_jail(act: Act, jail: str) -> dict[str, Any]:
    return await _run(act, ops.deactivate, jail_name(jail))


@action("config.jail_options", Role.admin, target="jail")
async def set_jail_options(act: Act, jail: str, values: dict[str, str | None],
                           activate: bool = False) -> dict[str, Any]:
    """The guided jail form (issue 24): ``values`` set in the jail's section of bangui's override (None: bangui's
    value goes and the inherited one applies again); with ``activate`` the jail is enabled and must run."""
    jail = jail_name(jail)
    act.details.update(set=values, activate=activate)
    return await _run(act, ops.set_jail_options, "config.jail_options", jail, values, activate)


@action("config.file_write", Role.admin, target="path")
async def write_file(act: Act, path: str, content: bytes, if_match: str | None) -> dict[str, Any]:
    result = await _run(act, ops.write_file, path, content, if_match)
    act.details["created"] = result["created"]
    if result["created"]:
        act.status = 201
    return result


@action("config.file_delete", Role.admin, target="path")
async def delete_file(act: Act, path: str, if_match: str | None) -> dict[str, Any]:
    return await _run(act, ops.delete_file, path, if_match)


@action("config.revert", Role.admin, target="change_id")
async def revert_change(act: Act, change_id: str) -> dict[str, Any]:
    return await _run(act, ops.revert, change_id)


async def recover_unfinished(deps: Deps) -> None:
    """At server start: roll back a configuration change a killed process left half done (f2bconfig/engine.py
    `recover`). Every worker tries; the first takes the config lock, the others get ConfigBusy and leave it
    (a change, too, recovers first under the lock). Never raises: it runs in the lifespan's task group."""
    try:
        entry = await offload(engine_for(deps).recover)
    except ConfigBusy:
        return
    except Exception:
        log.exception("could not recover the interrupted configuration change")
        return
    if entry is not None:
        log.warning("configuration change %s (%s) was interrupted: rolled back to its before state%s", entry["id"],
                    entry["action"], "" if entry["fail2ban_verified"] else f"; fail2ban: {entry['problem']}")
