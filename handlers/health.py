"""Liveness, readiness and the health summary (which worker answered, who leads, fail2ban's state)."""

from __future__ import annotations

import os
from typing import Any

import msgspec

from core.roles import Role
from errors import Unavailable
from handlers.api import Call, iso, json_response, route
from handlers.fleet import fleet_degradation, fleet_health
from handlers.jobs import heartbeat_is_stale, leader_summary
from store.base import offload


class Fail2BanHealth(msgspec.Struct):
    reachable: bool
    version: str | None
    socket: str
    error: str | None = None


class Health(msgspec.Struct):
    status: str
    fail2ban: Fail2BanHealth
    worker_pid: int
    leader: dict[str, Any] | None
    store: bool
    snapshot: dict[str, Any] | None  # the leader's latest fail2ban snapshot, the same for every worker
    store_error: str | None = None  # why the store cannot serve (deleted/replaced file, disk full, no answer)
    # {status: ok | failing | running | pending, error, last_finished}: e.g. fail2ban's DB is not mounted
    history_sync: dict[str, Any] | None = None
    # fleet mode: {"connected", "leader", "lag_s", "status": ok|degraded, "since", "replica_refreshed",
    # "replica_age_s"} (handlers/fleet.py)
    fleet: dict[str, Any] | None = None


async def live(call: Call) -> dict[str, str]:
    return {"status": "ok"}


async def _fail2ban_health(call: Call) -> Fail2BanHealth:
    """Ask fail2ban directly (a ping costs ~0.1 ms), so health is never staler than the request."""
    socket = call.deps.settings.fail2ban_socket
    try:
        version = await call.deps.fail2ban.version()
    except Unavailable as exc:
        return Fail2BanHealth(False, None, socket, exc.message)
    return Fail2BanHealth(True, version, socket)


async def ready(call: Call) -> Any:
    problem = call.deps.store.problem()  # a stat, a statvfs and a one-key read: inline
    store_ok = problem is None
    f2b = await _fail2ban_health(call)
    body = {"ready": store_ok, "store": store_ok, "fail2ban": msgspec.to_builtins(f2b)}
    if problem is not None:
        body["store_error"] = problem
    if call.deps.settings.fleet_url:  # public, so that Redis being away shows without credentials (which need it)
        connected = await offload(call.deps.store.fleet.reachable)  # degraded: still ready (the host serves)
        body["fleet"] = {"connected": connected, **await fleet_degradation(call.deps, connected)}
    return json_response(body, 200 if store_ok else 503)


async def health(call: Call) -> Health:
    store, settings = call.deps.store, call.deps.settings
    f2b = await _fail2ban_health(call)
    problem = store.problem()
    store_ok = problem is None
    degraded = not (f2b.reachable and store_ok) or heartbeat_is_stale(store, settings)
    snap = store.runtime.current()
    if snap is not None:
        snap = {"at": iso(snap["at"]), "age_s": round(store.clock() - snap["at"], 3),
                "reachable": snap["reachable"], "jails": [j["name"] for j in snap["jails"]]}
    fleet = await fleet_health(call.deps) if settings.fleet_url else None
    degraded = degraded or (fleet is not None and not fleet["connected"])
    return Health("degraded" if degraded else "ok", f2b, os.getpid(), leader_summary(store), store_ok, snap,
                  problem, _history_sync(store) if store_ok else None, fleet)


def _history_sync(store: Any) -> dict[str, Any]:
    record = store.jobs.get("history_sync") or {}
    status = record.get("last_status")
    shown = {"error": "failing", "timeout": "failing", "ok": "ok", None: "pending"}.get(status, status)
    return {"status": shown, "error": record.get("last_error"), "last_finished": iso(record.get("last_finished"))}


routes = [
    route("GET", "/health/live", live, None, "Liveness: 200 while the process serves."),
    route("GET", "/health/ready", ready, None, "Readiness: 200 when the store can read and write, else 503."),
    route("GET", "/health", health, Role.viewer, "Health: fail2ban, store, this worker and the leader.",
          response=Health),
]
