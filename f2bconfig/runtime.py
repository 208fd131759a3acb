"""What fail2ban runs vs what its configuration says, for the settings a change touched (issue 18 §4).

fail2ban's reload does not reset an option the configuration no longer names (measured: remove
`bantime.increment = true` from a file, reload, and `get sshd bantime.increment` still says True; only a
restart of the jail resets it). So after every change, revert and rollback the engine reads back each
touched setting (`get <jail> <option>`), compares it with the value fail2ban's readers produce from the
configuration (`values` of the `check`), and converges: `set` commands where the configuration names a
value, a restart of the jail (bans restored) where it names none. Pure functions here; the engine talks.
"""

from __future__ import annotations

import configparser
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

CHECKED = ("bantime", "findtime", "maxretry", "ignoreip", "bantime.increment", "bantime.factor", "bantime.formula",
           "bantime.multipliers", "bantime.maxtime", "bantime.rndtime", "bantime.overalljails")
_BOOLS = ("bantime.increment", "bantime.overalljails")
_TIMES = ("bantime", "findtime", "bantime.maxtime", "bantime.rndtime")
_UNITS = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "mi": 60, "min": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400,
          "w": 604800, "week": 604800, "weeks": 604800, "mo": 2592000, "month": 2592000, "months": 2592000,
          "y": 31536000, "year": 31536000, "years": 31536000}  # fail2ban's MyTime.str2seconds
_TIME_PART = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)


def _is_jail_file(rel: str) -> bool:
    return rel in ("jail.conf", "jail.local") or rel.startswith("jail.d/")


def touched(files: Mapping[str, tuple[bytes | None, bytes | None]], commands: Iterable[list[str]],
            jails: Iterable[str]) -> dict[str, set[str]]:
    """jail -> checked options a change names: in a jail file's sections (before or after; [DEFAULT] means
    every jail) or in its runtime `set` commands. Only ``jails`` (those that run) are checked."""
    running = set(jails)
    out: dict[str, set[str]] = {}
    for rel, texts in files.items():
        if not _is_jail_file(rel):
            continue
        for text in texts:
            parser = configparser.RawConfigParser(interpolation=None, strict=False, default_section="\x00none")
            try:
                parser.read_string((text or b"").decode(errors="replace"))
            except configparser.Error:
                continue
            for section in parser.sections():
                keys = {k.lower() for k in parser.options(section)} & set(CHECKED)
                for jail in (running if section == "DEFAULT" else {section} & running):
                    out.setdefault(jail, set()).update(keys)
    for cmd in commands:
        if len(cmd) >= 3 and cmd[0] == "set" and cmd[1] in running:
            key = "ignoreip" if cmd[2] in ("addignoreip", "delignoreip") else cmd[2]
            if key in CHECKED:
                out.setdefault(cmd[1], set()).add(key)
    return {jail: keys for jail, keys in out.items() if keys}


def seconds(text: str) -> float | None:
    pos, total, found = 0, 0.0, False
    while pos < len(text.rstrip()):
        match = _TIME_PART.match(text, pos)
        if not match or match.group(2).lower() not in _UNITS:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos, found = match.end(), True
    return total if found else None


def _ignore_entry(text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=False)
        return str(net) if net.prefixlen != net.max_prefixlen else str(net.network_address)
    except ValueError:
        return text


def normal(key: str, value: Any) -> Any:
    """A value of ``key`` in one comparable form, from the configuration (str) or fail2ban's reply."""
    if key == "ignoreip":
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value or [])
        return frozenset(_ignore_entry(str(v)) for v in items)
    if key in _BOOLS:
        return str(value).lower() in ("true", "yes", "on", "1")  # absent (None) is disabled
    if value is None:
        return None
    text = str(value).strip()
    if key in _TIMES:
        parsed = seconds(text)
        return parsed if parsed is not None else text
    try:
        return float(text)
    except ValueError:
        return " ".join(text.split())


def mismatches(wanted: Mapping[str, Mapping[str, str]], touched_keys: Mapping[str, set[str]],
               runtime: Mapping[tuple[str, str], Any]) -> list[tuple[str, str, str | None, Any]]:
    """(jail, option, configured, running) for each touched option whose running value differs."""
    out = []
    for jail, keys in sorted(touched_keys.items()):
        for key in sorted(keys):
            want = wanted.get(jail, {}).get(key)
            got = runtime[(jail, key)]
            if normal(key, want) != normal(key, got):
                out.append((jail, key, want, got))
    return out


def commands(jail: str, key: str, want: str | None, got: Any) -> list[list[str]] | None:
    """The `set` commands that make ``got`` the configured ``want``; None when only a restart can (the
    configuration names no value: fail2ban's default is what a fresh jail has)."""
    if key == "ignoreip":
        have, need = normal(key, got), normal(key, want)
        return ([["set", jail, "addignoreip", e] for e in sorted(need - have)]
                + [["set", jail, "delignoreip", e] for e in sorted(have - need)])
    if key in _BOOLS:
        return [["set", jail, key, "true" if normal(key, want) else "false"]]
    if want is None:
        return None
    return [["set", jail, key, want]]
