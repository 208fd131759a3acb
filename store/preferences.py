"""Each user's display preferences (issue 23 item 6), kept server-side in the identity store (this host's cache, or
the fleet's Redis where users live in fleet mode), so they follow the user to every worker, browser and host.

`prefs:<folded user name>` -> {"time_zone", "date_format", "relative_times", "theme"}: only what the user set;
`get()` fills in the defaults. A user's record goes with the user (store/users.py `delete`).
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

import diskcache

from errors import InvalidInput

DEFAULTS: dict[str, Any] = {"time_zone": "UTC", "date_format": "iso", "relative_times": False, "theme": "auto"}
DATE_FORMATS = ("iso", "locale")
THEMES = ("auto", "light", "dark")
_ZONE_RE = re.compile(r"[A-Za-z0-9_+-]{1,32}(/[A-Za-z0-9_+-]{1,32}){0,2}")  # fullmatch: Area/Location[/Sub]


def preferences_key(user: str) -> str:
    return "prefs:" + user.casefold()


def check_time_zone(name: str) -> str:
    """An IANA time zone name this host's zoneinfo knows (Europe/Paris, UTC), else 400 invalid_time_zone."""
    if _ZONE_RE.fullmatch(name):
        try:
            zoneinfo.ZoneInfo(name)
            return name
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise InvalidInput(f"time_zone must be an IANA time zone name such as Europe/Paris or UTC, got {name[:64]!r}",
                       code="invalid_time_zone", details={"field": "time_zone"})


def check(changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` (any subset of the fields) validated; 400 naming the first bad field."""
    for name, value in changes.items():
        if name == "time_zone":
            check_time_zone(value)
        elif name == "date_format" and value not in DATE_FORMATS:
            raise InvalidInput(f"date_format must be one of {', '.join(DATE_FORMATS)}", details={"field": name})
        elif name == "theme" and value not in THEMES:
            raise InvalidInput(f"theme must be one of {', '.join(THEMES)}", details={"field": name})
        elif name == "relative_times" and not isinstance(value, bool):
            raise InvalidInput("relative_times must be true or false", details={"field": name})
        elif name not in DEFAULTS:
            raise InvalidInput(f"unknown preference {name!r}", details={"field": name})
    return changes


class Preferences:
    def __init__(self, cache: diskcache.Cache) -> None:
        self.cache = cache

    def get(self, user: str) -> dict[str, Any]:
        stored = self.cache.get(preferences_key(user)) or {}
        return {name: stored.get(name, default) for name, default in DEFAULTS.items()}

    def update(self, user: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set the given fields (validated), keep the others; the whole set after the change."""
        check(changes)
        key = preferences_key(user)
        with self.cache.transact():
            stored = dict(self.cache.get(key) or {}, **changes)
            self.cache.set(key, stored)
        return {name: stored.get(name, default) for name, default in DEFAULTS.items()}
