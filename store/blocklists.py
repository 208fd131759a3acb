"""Scheduled blocklist imports: which lists exist, their schedule, and each one's last outcome.

Keys:
- `blocklist:<name>`  {name, url, jail, interval_s, enabled, created, created_by, runs, last_run, last_status,
                      last_error, last_count, last_added, last_invalid, last_invalid_examples,
                      last_fleet_ban (fleet mode: the fleet ban id of the last import, per-host status)};
                      never evicted (no expiry). Only the leader's `blocklists` job writes the `last_*`
                      fields, through `record_run` inside its fenced transaction.
- `blocklist-index`   the sorted names, so listing never scans the whole store (sessions, counters...).
- `blocklistreq:<name>` {requested_at, by}: a "run now" request from any worker, consumed by the run that
                      records its outcome; expires after `store.records.REQUEST_TTL_S` like job run requests.

Guarantees:
- `create` is atomic: two workers creating the same name concurrently get one 201 and one 409.
- A run never resurrects a list deleted (or deleted and re-created) while it ran: `record_run` writes
  only to the record with the same `created` time.
- The target policy lives here: `check_url` (http/https only, a host, no credentials: every viewer sees
  the URL) at creation and at each fetch and redirect; `forbidden_reason` for each address the host resolves
  to, at each fetch (DNS answers change): jobs/blocklists.py applies both.
Failure modes: a busy store raises `diskcache.Timeout`; callers offload these calls to a thread.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any

from errors import InvalidInput
from store.records import NamedRecords

MIN_INTERVAL_S = 300
MAX_INTERVAL_S = 30 * 86400
MAX_URL_LENGTH = 2048
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # appears in URLs and in history's actor
SCHEMES = ("http", "https")
_INDEX = "blocklist-index"
OUTCOME_FIELDS = ("last_run", "last_status", "last_error", "last_count", "last_added", "last_invalid",
                  "last_invalid_examples", "last_fleet_ban")


def record_key(name: str) -> str:
    return f"blocklist:{name}"


def request_key(name: str) -> str:
    return f"blocklistreq:{name}"


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput("blocklist names have 1-64 letters, digits or _.- (starting with a letter or digit)",
                           code="invalid_blocklist_name", details={"name": name[:100]})
    return name


def check_url(url: str) -> urllib.parse.SplitResult:
    """The parsed URL if it is an http(s) URL with a host and no credentials; else InvalidInput `invalid_url`."""
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"blocklist URL {url[:200]!r}: {why}", code="invalid_url", details={"reason": why})

    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise bad(f"at most {MAX_URL_LENGTH} characters, no spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise bad("only http:// and https:// URLs are fetched")
    if not parts.hostname:
        raise bad("no host")
    if parts.username is not None or parts.password is not None:
        raise bad("credentials in the URL are not supported (every viewer can read it)")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise bad("invalid port") from None
    return parts


def forbidden_reason(address: str) -> str | None:
    """Why a blocklist may not be fetched from `address` unless BANGUI_BLOCKLIST_ALLOW_PRIVATE=1 (the kind:
    loopback, private, link-local...), or None for a global address. IPv4-mapped and 6to4 IPv6 addresses
    reach an IPv4 host: that one is judged."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private", "site_local"):
        if getattr(ip, "is_" + kind, False):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"  # e.g. 100.64.0.0/10 (carrier-grade NAT)


class Blocklists(NamedRecords):
    KIND, CODE, INDEX = "blocklist", "blocklist", _INDEX
    record_key = staticmethod(record_key)
    request_key = staticmethod(request_key)

    def create(self, name: str, url: str, jail: str, interval_s: int = 86400, enabled: bool = True,
               by: str | None = None) -> dict[str, Any]:
        """Add a list (first run as soon as the leader's job next looks: it was never run). 409 if the name exists."""
        check_name(name)
        check_url(url)
        if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
            raise InvalidInput(f"interval_s must be between {MIN_INTERVAL_S} and {MAX_INTERVAL_S}",
                               code="invalid_interval")
        record: dict[str, Any] = {"name": name, "url": url, "jail": jail, "interval_s": interval_s,
                                  "enabled": enabled, "created": self.clock(), "created_by": by, "runs": 0,
                                  **dict.fromkeys(OUTCOME_FIELDS), "last_invalid_examples": []}
        return self._add(name, record)

    def delete(self, name: str) -> dict[str, Any]:
        """Remove a list and its pending run request (bans it made stay until the jail's bantime ends)."""
        return self._remove(name)

    def request(self, name: str, by: str) -> dict[str, Any]:
        """Ask for a run at the next job run, even if the list is disabled (to try it before enabling it)."""
        return self._request(name, by)

    def due(self) -> list[tuple[dict[str, Any], float | None]]:
        """(record, requested_at) of the lists to run now: requested ones, and enabled ones never run or
        whose `last_run + interval_s` has passed (failed runs included: a broken list is retried at its
        interval, not hammered every minute)."""
        now, out = self.clock(), []
        for record in self.all():
            req = self.cache.get(request_key(record["name"]))
            last = record.get("last_run")
            if req is not None or (record["enabled"] and (last is None or last + record["interval_s"] <= now)):
                out.append((record, req["requested_at"] if req else None))
        return out

    def record_run(self, name: str, created: float, outcome: dict[str, Any], requested_at: float | None) -> bool:
        """Write a run's outcome (call inside the leader's fenced transaction) and consume the request it
        served (a newer request stays pending). False, writing nothing, if the list is gone or replaced."""
        with self.cache.transact():
            record = self.get(name)
            if record is None or record["created"] != created:
                return False
            record.update({k: outcome[k] for k in OUTCOME_FIELDS if k in outcome})
            record["runs"] = int(record.get("runs") or 0) + 1
            self.cache.set(record_key(name), record)
            req = self.cache.get(request_key(name))
            if req is not None and requested_at is not None and req["requested_at"] <= requested_at:
                self.cache.delete(request_key(name))
        return True
