"""The fleet's ban log (a Redis Stream) and the per-host status of fleet bans: what handlers and hosts write.

An entry: {"kind": ban|unban|auto, "id": fleet ban id ("" for auto), "jail", "ips": JSON list, "hosts": JSON
list or "*", "source": publishing host, "at": epoch seconds, and "scope": "all" when a fleet ban or unban was
for every host (its `hosts` lists those known then; a host joining later applies it too)}. `auto` is a ban
fail2ban made itself on `source` in a shared jail. XADD trims by MINID (retention), so the log is bounded by
time, never by a count that a burst could exceed. Blocking calls (sync client): async callers use store.base.offload.

A fleet ban's (or unban's) record `bangui:fleet:ban:<id>` maps each host to its status there (`host_status`):
pending when published, then applied or failed as the host applied the entry (through its group, or when it
joined later: jobs/fleet/join.py).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import fleet
from core.addresses import JAIL_RE
from errors import InvalidInput, NotFound
from fleet import HOSTS, STREAM, ban_key

log = logging.getLogger("bangui.fleet")
KINDS = ("ban", "unban", "auto")
# The largest `ips` of an entry: a fleet blocklist publishes a whole list in one entry (BANGUI_BLOCKLIST_MAX_BYTES,
# 5 MiB by default, is at most ~1.4 times that as JSON); callers pass twice the setting.
MAX_IPS_BYTES = 2 * 5_242_880
MAX_FIELD = 256

# One host's status, written only while the fleet ban's record exists: a log entry can outlive its record a little
# (XADD trims by MINID approximately; the record expires at the retention) and HSET on a missing key would make a
# record that never expires. KEYS: the record; ARGV: host, status.
SET_STATUS = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
return redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
"""


def host_status(status: str, error: str | None = None, added: int | None = None,
                unbanned: int | None = None) -> str:
    """One host's status of a fleet ban as its record keeps it (JSON): `status` pending | applied | failed, `error`
    why it failed, for a ban applied there `added`: how many of its addresses that host banned anew, and for an
    unban applied there `unbanned`: how many bans it lifted (a network lifts every ban inside it)."""
    value: dict[str, Any] = {"status": status, "error": error}
    if added is not None:
        value["added"] = added
    if unbanned is not None:
        value["unbanned"] = unbanned
    return json.dumps(value)


def min_id(retention_hours: int, now: float | None = None) -> str:
    return f"{int(((now or time.time()) - retention_hours * 3600) * 1000)}-0"


def entry(kind: str, jail: str, ips: list[str], source: str, hosts: list[str] | None = None,
          ban_id: str = "", everyone: bool = False) -> dict[str, str]:
    item = {"kind": kind, "id": ban_id, "jail": jail, "ips": json.dumps(ips),
            "hosts": "*" if hosts is None else json.dumps(hosts), "source": source, "at": repr(time.time())}
    if everyone:  # `hosts` omitted: every host, also one that joins later (jobs/fleet/join.py)
        item["scope"] = "all"
    return item


class MalformedEntry(ValueError):
    """A log entry that bangui did not write (anyone with Redis' password can XADD): skipped, never applied."""


def decode(fields: dict[Any, Any], max_ips_bytes: int = MAX_IPS_BYTES) -> dict[str, Any]:
    """An entry's fields, checked: its kind, a jail name, `ips` a JSON list of strings (each address is screened
    where it is applied), `hosts` "*" or a list of names, `at` a time. MalformedEntry otherwise."""
    try:
        text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in fields.items()}
    except UnicodeDecodeError:
        raise MalformedEntry("not UTF-8") from None
    for name, value in text.items():  # source, id, list, by...: short single lines (they reach logs and audit)
        if name not in ("ips", "hosts") and (len(value) > MAX_FIELD or not value.isprintable()):
            raise MalformedEntry(f"field {name[:20]!r} is longer than {MAX_FIELD} or not one printable line")
    if text.get("kind") not in KINDS:
        raise MalformedEntry(f"kind {str(text.get('kind'))[:20]!r} is none of {', '.join(KINDS)}")
    if not JAIL_RE.fullmatch(str(text.get("jail", ""))):
        raise MalformedEntry("no jail name")
    raw_ips = text.get("ips", "[]")
    if len(raw_ips) > max_ips_bytes:
        raise MalformedEntry(f"its addresses take {len(raw_ips)} bytes (at most {max_ips_bytes})")
    try:
        text["ips"] = json.loads(raw_ips)
        hosts = text.get("hosts", "*")
        text["hosts"] = None if hosts == "*" else json.loads(hosts)
        float(text.get("at") or 0.0)
    except ValueError as exc:
        raise MalformedEntry(f"{type(exc).__name__}: {str(exc)[:80]}") from None
    for name in ("ips", "hosts"):
        value = text[name]
        if not (value is None and name == "hosts") and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise MalformedEntry(f"{name} is not a list of strings")
    return text


def parse(entry_id: Any, fields: dict[Any, Any], max_ips_bytes: int = MAX_IPS_BYTES) -> dict[str, Any] | None:
    """`decode`, or None (with a warning) for a malformed entry: the agent skips it and goes on. Raising would
    end the agent, and the entry, still pending, would end the next agent too: no fleet ban would apply again."""
    try:
        return decode(fields, max_ips_bytes)
    except MalformedEntry as exc:
        log.warning("fleet: skipped a malformed fleet log entry %s: %s", _text(entry_id)[:40], exc)
        return None


def known_hosts(client: Any) -> list[str]:
    return sorted(h.decode() if isinstance(h, bytes) else h for h in client.smembers(HOSTS))


def publish_fleet_ban(client: Any, kind: str, jail: str, ips: list[str], hosts: list[str] | None,
                      source: str, retention_hours: int) -> dict[str, Any]:
    """Record a pending status for each target host and append the entry: `{"id", "hosts"}`."""
    known = known_hosts(client)
    if hosts is None:
        targets = known
    else:
        unknown = sorted(set(hosts) - set(known))
        if unknown:
            raise InvalidInput(f"unknown host {unknown[0]!r}: see GET /api/v1/fleet/hosts",
                               code="unknown_host", details={"unknown": unknown})
        targets = sorted(set(hosts))
    if not targets:
        raise InvalidInput("no host in the fleet yet", code="unknown_host")
    return _append(client, entry(kind, jail, ips, source, targets, "", everyone=hosts is None), targets,
                   retention_hours)


def _append(client: Any, item: dict[str, str], targets: list[str], retention_hours: int) -> dict[str, Any]:
    """Append a fleet ban/unban with a pending status for each target host (one transaction)."""
    ban_id = item["id"] = secrets.token_hex(8)
    pipe = client.pipeline(transaction=True)
    pipe.hset(ban_key(ban_id), mapping={h: host_status("pending") for h in targets})
    pipe.expire(ban_key(ban_id), retention_hours * 3600)
    pipe.xadd(STREAM, item, minid=min_id(retention_hours), approximate=True)
    pipe.execute()
    return {"id": ban_id, "hosts": targets}


def followed_unban(jail: str, ips: list[str], source: str, by: str, shared_jail: bool) -> dict[str, str]:
    """A fleet unban that follows an unban on `source`, waiting in the outbox while Redis is away (its hosts are
    the other hosts known when it is published: `publish_queued_unban`)."""
    return {"follow": "1", "jail": jail, "ips": json.dumps(ips), "source": source, "by": by,
            "shared": "1" if shared_jail else ""}


def publish_queued_unban(client: Any, item: dict[str, str], retention_hours: int) -> dict[str, Any] | None:
    return publish_followed_unban(client, item["jail"], json.loads(item["ips"]), item["source"], retention_hours,
                                  item["by"], item["shared"] == "1")


def publish_followed_unban(client: Any, jail: str, ips: list[str], source: str, retention_hours: int, by: str,
                           shared_jail: bool) -> dict[str, Any] | None:
    """The fleet unban that follows an unban on `source` (actions/fleet_follow.py): for every other host, with
    the person who asked (`by`); `shared` when `jail` is a shared jail there, so that hosts that receive shared
    bans in their BANGUI_FLEET_JAIL lift them there. None: no other host."""
    targets = [h for h in known_hosts(client) if h != source]
    if not targets:
        return None
    item = entry("unban", jail, ips, source, targets)
    item["by"] = by
    if shared_jail:
        item["shared"] = "1"
    return _append(client, item, targets, retention_hours)


def ban_status(client: Any, ban_id: str) -> dict[str, Any]:
    raw = client.hgetall(ban_key(ban_id))
    if not raw:
        raise NotFound(f"no fleet ban with id {ban_id!r} (or older than the retention)", code="fleet_ban_not_found")
    hosts = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
    return {"id": ban_id, "hosts": dict(sorted(hosts.items()))}


def hosts_view(client: Any, now: float | None = None) -> list[dict[str, Any]]:
    """Every host that ever joined (within retention), with its status from the age of its heartbeat."""
    names = known_hosts(client)
    records = client.mget([fleet.host_key(n) for n in names]) if names else []
    now = now or time.time()
    out = []
    for name, raw in zip(names, records, strict=True):
        if raw is None:
            continue
        try:  # a record bangui did not write (anyone with Redis' password can) is left out, not a 500
            record = json.loads(raw)
            record["status"] = fleet.status_of(now - float(record["last_seen"]))
            if record.get("name") != _text(name):
                raise ValueError("its name is not the host's")
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("fleet: left out the malformed record of host %.64r: %s", _text(name), exc)
            continue
        out.append(record)
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def lag_seconds(client: Any, host: str, now: float | None = None) -> float | None:
    """Age of the oldest log entry this host has not applied yet (0.0: caught up; None: not joined yet)."""
    try:
        groups = client.xinfo_groups(STREAM)
    except Exception as exc:  # no stream yet
        if "no such key" in str(exc).lower():
            return None
        raise
    mine = next((g for g in groups if _text(g.get("name")) == fleet.group(host)), None)
    if mine is None:
        return None
    oldest: str | None = None
    if int(mine.get("pending") or 0):
        summary = client.xpending(STREAM, fleet.group(host))
        oldest = _text(summary["min"]) if summary.get("min") else None
    if oldest is None:
        after = client.xrange(STREAM, min="(" + _text(mine.get("last-delivered-id")), count=1)
        oldest = _text(after[0][0]) if after else None
    if oldest is None:
        return 0.0
    return max(0.0, round((now or time.time()) - int(oldest.split("-")[0]) / 1000, 3))


def health_summary(client: Any, host: str) -> dict[str, Any]:
    raw = client.get(fleet.LEASE)
    leader = _text(raw).rpartition(":")[0] if raw is not None else None
    return {"connected": True, "leader": leader, "lag_s": lag_seconds(client, host)}
