"""CrowdSec bouncer keys (issue 22): shown once, stored only as a SHA-256 digest, like API tokens.

Records: `bouncer:<digest>` -> {"name", "created", "last_pull", "last_address", "user_agent"} and
`bouncer-name:<name>` -> digest (listing and deletion by name). A lookup reads the store every time (no
per-process memo), so a deleted key is refused at once by every worker. The stream position of each bouncer
lives in store/decisions.py, keyed by name, and goes with the key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import diskcache

from errors import Conflict, InvalidInput, NotFound, Unavailable
from store.base import Clock

_KEY = "bouncer:"
_NAME = "bouncer-name:"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{0,63}")  # fullmatch: a label, as `cscli bouncers add` takes
FIELDS = ("name", "created", "last_pull", "last_address", "user_agent")


class BouncerExists(Conflict):
    code = "bouncer_exists"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Bouncers:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self.refresh_after = 5.0  # last-pull precision: at most one write per bouncer per this many seconds

    def create(self, name: str) -> tuple[str, dict[str, Any]]:
        """A new key for `name` (409 if the name has one): (key, record). The key is never stored."""
        if not NAME.fullmatch(name):
            raise InvalidInput("bouncer name: 1-64 letters, digits, '@', '.', '_' or '-'", code="invalid_bouncer_name")
        key = secrets.token_hex(32)
        record: dict[str, Any] = {"name": name, "created": self.clock(), "last_pull": None, "last_address": None,
                                  "user_agent": None}
        with self.cache.transact():
            if not self.cache.add(_NAME + name, digest(key)):
                raise BouncerExists(f"a bouncer named {name!r} exists already")
            self.cache.set(_KEY + digest(key), record)
        return key, record

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The bouncer whose key this is, or None."""
        if not key:
            return None
        record: dict[str, Any] | None = self.cache.get(_KEY + digest(key))
        return record

    def pulled(self, key: str, record: dict[str, Any], address: str, user_agent: str,
               host: str | None = None) -> bool:
        """Note a pull (time, address, user agent, and for a stream pull in fleet mode the host that answered, whose
        positions it moved): written when something changed or `refresh_after` passed. False when the store
        refused the write (fleet mode, Redis away: the replica takes no identity write): the poll is answered all
        the same (issue 21: reads go on during an outage), its record is older than the poll."""
        now = self.clock()
        if (record["last_pull"] is not None and now - record["last_pull"] < self.refresh_after
                and record["last_address"] == address and record["user_agent"] == user_agent
                and (host is None or record.get("last_host") == host)):
            return True
        try:
            with self.cache.transact():
                current = self.cache.get(_KEY + digest(key))
                if current is None:  # deleted meanwhile: never resurrect it
                    return True
                self.cache.set(_KEY + digest(key), dict(current, last_pull=now, last_address=address,
                                                        user_agent=user_agent[:200],
                                                        last_host=host or current.get("last_host")))
        except Unavailable:
            return False
        return True

    def oldest_pull(self) -> float | None:
        """The earliest last poll of any bouncer that has polled (None: none has)."""
        pulls = [r["last_pull"] for r in self.list() if r["last_pull"] is not None]
        return min(pulls) if pulls else None

    def list(self) -> list[dict[str, Any]]:
        out = []
        for name_key in list(self.cache.iterkeys()):
            if isinstance(name_key, str) and name_key.startswith(_NAME):
                record = self.cache.get(_KEY + str(self.cache.get(name_key)))
                if record is not None:
                    out.append({k: record[k] for k in FIELDS})
        return sorted(out, key=lambda r: r["created"])

    def delete(self, name: str) -> dict[str, Any]:
        with self.cache.transact():
            key = self.cache.get(_NAME + name)
            record = self.cache.get(_KEY + str(key)) if key else None
            if record is None:
                raise NotFound(f"no bouncer named {name!r}", code="bouncer_not_found")
            self.cache.delete(_KEY + str(key))
            self.cache.delete(_NAME + name)
        return {k: record[k] for k in FIELDS}
