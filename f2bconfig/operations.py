"""Every configuration change bangui makes, as blocking functions of an `Engine` and an actor name.

Each returns a plain dict for the caller (an action of `actions/config.py` wraps them: role check and
audit). Settings and ignore lists are applied to the running jail over the socket AND persisted in
`jail.d/zz-bangui.local` / `fail2ban.d/zz-bangui.local`, so they survive a reload and a restart.
"""

from __future__ import annotations

import configparser
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from errors import Conflict, InvalidInput, NotFound
from f2bconfig import override
from f2bconfig.engine import Change, Engine, Plan
from f2bconfig.errors import BodyTooLarge, PreconditionFailed
from f2bconfig.paths import MAX_FILE_BYTES, etag_of

INCREMENT_KEYS = ("enabled", "factor", "formula", "multipliers", "maxtime", "rndtime", "overalljails")
LOGLEVELS = ("CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG", "TRACEDEBUG", "HEAVYDEBUG")
ONE_DAY = 86400


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _jail_running(engine: Engine, jail: str) -> None:
    if jail not in engine.active_jails():
        raise NotFound(f"fail2ban has no running jail named {jail!r}", code="jail_not_found",
                       details={"jail": jail})


def _set_override(engine: Engine, rel: str, section: str, values: Mapping[str, str | None]) -> Plan:
    current = engine.tree.read(rel)
    text = override.update(current.decode() if current else None, section, values)
    return Plan(edits={rel: text.encode()})


# ---- jails: settings and ignore lists (runtime + persisted, no reload) ---------------------------------
def patch_jail(engine: Engine, actor: str, jail: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes``: bantime/findtime/maxretry ints and/or bantime_increment {enabled, factor, ...}."""
    keys: dict[str, str] = {}
    for key in ("bantime", "findtime", "maxretry"):
        if changes.get(key) is not None:
            keys[key] = _conf_value(changes[key])
    for key, value in (changes.get("bantime_increment") or {}).items():
        if value is not None:
            keys["bantime.increment" if key == "enabled" else f"bantime.{key}"] = _conf_value(value)
    if not keys:
        raise InvalidInput("nothing to change: give bantime, findtime, maxretry or bantime_increment",
                           code="invalid_body")

    def plan(eng: Engine) -> Plan:
        _jail_running(eng, jail)
        p = _set_override(eng, override.JAIL_OVERRIDE, jail, keys)
        for key, value in keys.items():
            old = eng.call("get", jail, key)
            p.runtime.append(["set", jail, key, value])
            if old is not None:
                p.undo.append(["set", jail, key, _conf_value(old)])
            p.details.setdefault("before", {})[key] = old
        p.details["after"] = dict(keys)
        p.expect = {jail: {k: v.lower() if v in ("true", "false") else v for k, v in keys.items()}}
        return p

    entry = engine.run(Change("jail.update", actor, jail, plan, reload=False))
    return {"jail": jail, "change": entry["id"], "diff": entry["diff"], "changed": keys}


def canonical_entry(raw: str) -> str:
    """An ignoreip entry as fail2ban stores it: an address or a network (CIDR), canonical form."""
    text = raw.strip()
    try:
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return str(net) if net.prefixlen != net.max_prefixlen else str(net.network_address)
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput(f"{raw!r} is not an IP address or network", code="invalid_ip",
                           details={"entry": raw}) from None


def _ignore_change(engine: Engine, actor: str, jail: str, action: str, add: list[str], remove: list[str]
                   ) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def plan(eng: Engine) -> Plan:
        _jail_running(eng, jail)
        current = [str(e) for e in eng.call("get", jail, "ignoreip")]
        # an entry fail2ban lists verbatim (e.g. a host name from the config) may be removed as it is
        remove[:] = [e.strip() if e.strip() in current else canonical_entry(e) for e in remove]
        for entry in remove:
            if entry not in current:
                raise NotFound(f"{entry} is not in the ignore list of {jail}", code="not_ignored",
                               details={"jail": jail, "entry": entry})
        fresh = [e for e in dict.fromkeys(add) if e not in current]
        after = [e for e in current if e not in remove] + fresh
        p = _set_override(eng, override.JAIL_OVERRIDE, jail, {"ignoreip": " ".join(after)})
        p.runtime = [["set", jail, "addignoreip", e] for e in fresh] + [["set", jail, "delignoreip", e] for e in remove]
        p.undo = [["set", jail, "delignoreip", e] for e in fresh] + [["set", jail, "addignoreip", e] for e in remove]
        p.details.update({"added": fresh, "removed": remove, "ignoreip": after})
        p.expect = {jail: {"ignoreip": " ".join(after)}}
        result["ignoreip"] = after
        return p

    entry = engine.run(Change(action, actor, jail, plan, reload=False))
    return {"jail": jail, "ignoreip": result["ignoreip"], "change": entry["id"], "diff": entry["diff"]}


def ignoreip_add(engine: Engine, actor: str, jail: str, entries: list[str]) -> dict[str, Any]:
    return _ignore_change(engine, actor, jail, "jail.ignoreip_add", [canonical_entry(e) for e in entries], [])


def ignoreip_remove(engine: Engine, actor: str, jail: str, entry: str) -> dict[str, Any]:
    return _ignore_change(engine, actor, jail, "jail.ignoreip_remove", [], [entry])


# ---- server settings -------------------------------------------------------------------------------------
def server_settings(engine: Engine) -> dict[str, Any]:
    keys = ("loglevel", "logtarget", "dbfile", "dbpurgeage", "dbmaxmatches")
    return {key: engine.call("get", key) for key in keys}


def update_server_settings(engine: Engine, actor: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, str] = {}
    warnings: list[str] = []
    if changes.get("loglevel") is not None:
        level = str(changes["loglevel"]).upper()
        if level not in LOGLEVELS:
            raise InvalidInput(f"loglevel must be one of {', '.join(LOGLEVELS)}", code="invalid_body")
        values["loglevel"] = level
    for key in ("dbpurgeage", "dbmaxmatches"):
        if changes.get(key) is not None:
            values[key] = str(int(changes[key]))
    if not values:
        raise InvalidInput("nothing to change: give loglevel, dbpurgeage or dbmaxmatches", code="invalid_body")
    if "dbpurgeage" in values and int(values["dbpurgeage"]) < ONE_DAY:
        warnings.append("dbpurgeage under one day: fail2ban forgets bans sooner (bangui's history keeps them)")
    if "loglevel" in values and values["loglevel"] in ("TRACEDEBUG", "HEAVYDEBUG"):
        warnings.append(f"loglevel {values['loglevel']} writes a lot: switch back when done")

    def plan(eng: Engine) -> Plan:
        p = _set_override(eng, override.SERVER_OVERRIDE, "Definition", values)
        for key, value in values.items():
            old = eng.call("get", key)
            p.runtime.append(["set", key, value])
            if old is not None:
                p.undo.append(["set", key, str(old)])
        p.details["after"] = dict(values)
        return p

    entry = engine.run(Change("server.settings_update", actor, None, plan, reload=False))
    return server_settings(engine) | {"warnings": warnings, "change": entry["id"]}


def reload_server(engine: Engine, actor: str) -> dict[str, Any]:
    engine.run(Change("server.reload", actor, None, lambda eng: Plan(), reload=True))
    return {"jails": sorted(engine.active_jails())}


def restart_server(engine: Engine, actor: str) -> dict[str, Any]:
    """Restart fail2ban's jails, all of them, afresh: `fail2ban-client reload --restart` (fail2ban 1.0.2 stops every
    jail, runs their actions' actionstop, re-reads the whole configuration, server settings included, and starts
    them again; bans come back from its database and what it did not restore is banned again). fail2ban's own
    `restart` stops the server process and starts a new one from the client, which bangui must not do: the host's
    service manager owns that process (and runs it as root). Validated first; verified like a reload."""
    engine.banned_again = 0
    engine.run(Change("server.restart", actor, None, lambda eng: Plan(), reload=True, restart=True))
    return {"jails": sorted(engine.active_jails()), "banned_again": engine.banned_again}


# ---- catalogue and activation ---------------------------------------------------------------------------
def defined_jails(root: Path) -> set[str]:
    """Jail sections of jail.conf, jail.d/*.conf, jail.local, jail.d/*.local (plain INI read, no interpolation)."""
    names: set[str] = set()
    paths = [root / "jail.conf", *sorted((root / "jail.d").glob("*.conf")), root / "jail.local",
             *sorted((root / "jail.d").glob("*.local"))]
    for path in paths:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        names |= set(parser.sections()) - {"INCLUDES", "DEFAULT", "Definition"}
    return names


def activate(engine: Engine, actor: str, jail: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, str | None] = {"enabled": "true"}
    for key in ("maxretry", "findtime", "bantime", "port", "action", "backend"):
        if overrides.get(key) is not None:
            values[key] = _conf_value(overrides[key])
    if overrides.get("logpath") is not None:
        values["logpath"] = "\n".join(str(p) for p in overrides["logpath"])

    def plan(eng: Engine) -> Plan:
        if jail not in defined_jails(eng.tree.root):
            raise NotFound(f"no configuration defines a jail named {jail!r}", code="jail_not_found",
                           details={"jail": jail})
        p = _set_override(eng, override.JAIL_OVERRIDE, jail, values)
        p.details["overrides"] = {k: v for k, v in values.items() if k != "enabled"}
        return p

    engine.run(Change("config.jail_activate", actor, jail, plan, reload=True, activate=[jail]))
    return {"jail": jail, "active": True}


def deactivate(engine: Engine, actor: str, jail: str) -> dict[str, Any]:
    def plan(eng: Engine) -> Plan:
        if jail not in defined_jails(eng.tree.root):
            raise NotFound(f"no configuration defines a jail named {jail!r}", code="jail_not_found",
                           details={"jail": jail})
        return _set_override(eng, override.JAIL_OVERRIDE, jail, {"enabled": "false"})

    engine.run(Change("config.jail_deactivate", actor, jail, plan, reload=True, deactivate=[jail]))
    return {"jail": jail, "active": False}


# ---- files -----------------------------------------------------------------------------------------------
def _check_etag(engine: Engine, rel: str, if_match: str | None) -> bytes | None:
    current = engine.tree.read(rel)
    if current is not None:
        if not if_match:
            raise PreconditionFailed(f"{rel} exists: send If-Match with the ETag from GET to replace it",
                                     details={"etag": etag_of(current)})
        if if_match.strip() not in ("*", etag_of(current)):
            raise PreconditionFailed(f"{rel} changed since you read it (stale ETag)",
                                     details={"etag": etag_of(current)})
    return current


def write_file(engine: Engine, actor: str, rel: str, content: bytes, if_match: str | None) -> dict[str, Any]:
    if len(content) > MAX_FILE_BYTES:
        raise BodyTooLarge(f"a config file may hold at most {MAX_FILE_BYTES} bytes",
                           details={"limit_bytes": MAX_FILE_BYTES})
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("config files must be UTF-8 text", code="invalid_body") from None
    engine.tree.require_editable(rel)
    created: dict[str, bool] = {}

    def plan(eng: Engine) -> Plan:
        created["new"] = _check_etag(eng, rel, if_match) is None
        return Plan(edits={rel: content})

    entry = engine.run(Change("config.file_write", actor, rel, plan, reload=True))
    return {"path": rel, "etag": etag_of(content), "created": created["new"], "change": entry["id"],
            "diff": entry["diff"]}


def delete_file(engine: Engine, actor: str, rel: str, if_match: str | None) -> dict[str, Any]:
    engine.tree.require_editable(rel)

    def plan(eng: Engine) -> Plan:
        if eng.tree.read(rel) is None:
            raise NotFound(f"{rel} does not exist", code="file_not_found", details={"path": rel})
        if if_match is not None:
            _check_etag(eng, rel, if_match)
        return Plan(edits={rel: None})

    entry = engine.run(Change("config.file_delete", actor, rel, plan, reload=True))
    return {"path": rel, "deleted": True, "change": entry["id"], "diff": entry["diff"]}


def revert(engine: Engine, actor: str, change_id: str) -> dict[str, Any]:
    def plan(eng: Engine) -> Plan:
        record = eng.changes.get(change_id)
        if record.get("outcome", "applied") != "applied":
            raise Conflict(f"change {change_id} was {record['outcome']} and rolled back: nothing to revert",
                           code="revert_conflict", details={"outcome": record["outcome"]})
        states = eng.changes.file_states(record)
        for rel, (_, after) in states.items():
            if eng.tree.read(rel) != after:
                raise Conflict(f"{rel} changed after change {change_id}: revert the later changes first",
                               code="revert_conflict", details={"path": rel})
        return Plan(edits={rel: before for rel, (before, _) in states.items()}, details={"reverted": change_id})

    entry = engine.run(Change("config.revert", actor, change_id, plan, reload=True))
    return {"reverted": change_id, "change": entry["id"], "diff": entry["diff"],
            "files": sorted(f["path"] for f in entry["files"])}


# ---- the advisor's fixes (issue 24) ----------------------------------------------------------------------
EXPECTABLE = ("maxretry", "ignoreip")
# options the configuration check reads back per jail (engine `values`)
ACTION_KEYS = {"banaction", "banaction_allports", "action"}


def set_jail_options(engine: Engine, actor: str, action: str, section: str, values: Mapping[str, str | None],
                     activate: bool = False) -> dict[str, Any]:
    """Set ``values`` in ``section`` (a jail, or DEFAULT) of jail.d/zz-bangui.local and reload (None removes
    bangui's value of a key: the inherited one applies again); with ``activate`` the jail is enabled too and must
    then run."""
    wanted: dict[str, str | None] = {**values, **({"enabled": "true"} if activate else {})}

    def plan(eng: Engine) -> Plan:
        if section != "DEFAULT" and section not in defined_jails(eng.tree.root):
            raise NotFound(f"no configuration defines a jail named {section!r}", code="jail_not_found",
                           details={"jail": section})
        p = _set_override(eng, override.JAIL_OVERRIDE, section, wanted)
        p.details["set"] = dict(values)
        if section != "DEFAULT":
            p.expect = {section: {k: v for k, v in values.items() if k in EXPECTABLE and v and v.strip()}}
        return p

    # a new action name is dropped by fail2ban's reload of a running jail: restart that jail
    # (engine.Change.restart_jails)
    restart = [section] if section != "DEFAULT" and not activate and set(values) & ACTION_KEYS else []
    entry = engine.run(Change(action, actor, section, plan, reload=True, activate=[section] if activate else [],
                              restart_jails=restart))
    return {"section": section, "change": entry["id"], "diff": entry["diff"], "set": dict(values)}
