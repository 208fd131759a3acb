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
import secrets
import time
from typing import Any

import fleet
from errors import InvalidInput, NotFound
from fleet import HOSTS, STREAM, ban_key

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


def decode(fields: dict[Any, Any]) -> dict[str, Any]:
    text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}
    text["ips"] = json.loads(text.get("ips", "[]"))
    hosts = text.get("hosts", "*")
    text["hosts"] = None if hosts == "*" else json.loads(hosts)
    return text


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
    for _name, raw in zip(names, records, strict=True):
        if raw is None:
            continue
        record = json.loads(raw)
        record["status"] = fleet.status_of(now - float(record["last_seen"]))
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
