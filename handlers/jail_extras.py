"""What GET /jails/{jail} adds from the configuration side: bantime increment (from the running jail),
filter and backend (from fail2ban's own reading of the config dir, cached), active and idle."""

from __future__ import annotations

from typing import Any

import msgspec

from core.deps import Deps
from f2bconfig import catalogue
from store.base import offload

INCREMENT_OPTIONS = ("increment", "factor", "formula", "multipliers", "maxtime", "rndtime", "overalljails")


class BantimeIncrement(msgspec.Struct):
    enabled: bool
    factor: float | None
    formula: str | None
    multipliers: str | None
    maxtime: int | str | None
    rndtime: int | str | None
    overalljails: bool


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _number(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return str(value)  # e.g. "1w": fail2ban's own time abbreviations, shown as configured


def _factor(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


async def bantime_increment(deps: Deps, jail: str) -> BantimeIncrement:
    values = await deps.fail2ban.pipeline([("get", jail, f"bantime.{o}") for o in INCREMENT_OPTIONS])
    v = dict(zip(INCREMENT_OPTIONS, values, strict=True))
    return BantimeIncrement(enabled=_flag(v["increment"]), factor=_factor(v["factor"]),
                            formula=str(v["formula"]) if v["formula"] else None,
                            multipliers=str(v["multipliers"]) if v["multipliers"] else None,
                            maxtime=_number(v["maxtime"]), rndtime=_number(v["rndtime"]),
                            overalljails=_flag(v["overalljails"]))


async def configured(deps: Deps, jail: str) -> dict[str, Any] | None:
    """The jail as the config dir defines it (None when it cannot be read: no error for a GET)."""
    try:
        return await offload(catalogue.jail, deps.settings.fail2ban_config_dir, jail)
    except Exception:  # a missing/unreadable config dir or fail2ban tools: the runtime view still answers
        return None


async def jail_extras(deps: Deps, jail: str) -> dict[str, Any]:
    """active, idle, bantime_increment, filter, backend for a RUNNING jail.

    fail2ban 1.0.2 has no `get <jail> idle`: idle is what bangui last set (None when unknown, store/runtime.py).
    """
    idle = deps.store.runtime.idle(jail, deps.fail2ban.server_identity())
    try:
        conf = await offload(catalogue.brief, deps.settings.fail2ban_config_dir, jail)
    except Exception:  # a missing/unreadable config dir or fail2ban tools: the runtime view still answers
        conf = None
    return {"active": True, "idle": idle, "bantime_increment": await bantime_increment(deps, jail),
            "filter": conf["filter"] if conf else None, "backend": conf["backend"] if conf else None}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


async def inactive_jail(deps: Deps, jail: str) -> dict[str, Any] | None:
    """A jail the configuration defines but fail2ban is not running (stopped or not enabled): its
    configured values, no counters, ``active`` false. None when no configuration defines it."""
    conf = await configured(deps, jail)
    if conf is None:
        return None
    s = conf["settings"]
    return {"name": jail, "currently_banned": 0, "total_banned": 0, "currently_failed": 0, "total_failed": 0,
            "bantime": _int(s.get("bantime"), 600), "findtime": _int(s.get("findtime"), 600),
            "maxretry": _int(s.get("maxretry"), 5), "ignoreip": str(s.get("ignoreip") or "").split(),
            "logpaths": conf["logpath"], "actions": [], "banned": [], "active": False, "idle": None,
            "bantime_increment": None, "filter": conf["filter"], "backend": conf["backend"]}
