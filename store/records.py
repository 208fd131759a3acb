"""Named records with an index of their names, and requests any worker files for the leader (a run now, a test):
what blocklists and notification targets have in common. Each kind keeps its own fields and rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diskcache

from errors import Conflict, NotFound
from store.base import Clock

REQUEST_TTL_S = 3600.0  # a request the leader has not taken within this is dropped


class NamedRecords:
    KIND = ""  # in messages: "a blocklist named ... exists"
    CODE = ""  # error codes: <CODE>_exists, <CODE>_not_found
    INDEX = ""  # the key of the sorted list of names
    record_key: Callable[[str], str]
    request_key: Callable[[str], str]

    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def get(self, name: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.cache.get(type(self).record_key(name))
        return record

    def names(self) -> list[str]:
        return list(self.cache.get(self.INDEX) or [])

    def all(self) -> list[dict[str, Any]]:
        return [r for r in (self.get(name) for name in self.names()) if r is not None]

    def _add(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a new record; 409 `<CODE>_exists` if the name is taken."""
        with self.cache.transact():
            if not self.cache.add(type(self).record_key(name), record):
                raise Conflict(f"a {self.KIND} named {name!r} exists", code=f"{self.CODE}_exists")
            self.cache.set(self.INDEX, sorted({*self.names(), name}))
        return record

    def _remove(self, name: str, *also: str) -> dict[str, Any]:
        """Delete a record, its pending request and the keys `also`; 404 `<CODE>_not_found`."""
        with self.cache.transact():
            record = self._existing(name)
            for key in (type(self).record_key(name), type(self).request_key(name), *also):
                self.cache.delete(key)
            self.cache.set(self.INDEX, [n for n in self.names() if n != name])
        return record

    def _request(self, name: str, by: str) -> dict[str, Any]:
        """File a request for the leader (kept REQUEST_TTL_S); 404 when there is no such record."""
        with self.cache.transact():
            self._existing(name)
            request = {"requested_at": self.clock(), "by": by}
            self.cache.set(type(self).request_key(name), request, expire=REQUEST_TTL_S)
        return request

    def _existing(self, name: str) -> dict[str, Any]:
        record = self.get(name)
        if record is None:
            raise NotFound(f"no {self.KIND} named {name!r}", code=f"{self.CODE}_not_found")
        return record
