"""The `snapshot` job: fail2ban's state (reachable, version, jails with counters) published in the
store, so every worker answers from the same runtime state (the seed kept it per process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from errors import AppError
from store.base import Clock

if TYPE_CHECKING:
    from f2b.client import Fail2Ban
    from jobs.definitions import JobContext

_COUNTERS = ("currently_failed", "total_failed", "currently_banned", "total_banned")
_CONFIG = ("bantime", "findtime", "maxretry")  # the exporter's f2b_config_jail_* series


_CONNECT_REASONS = {"missing", "permission", "refused", "error"}  # Fail2BanUnavailable's details.reason


async def snapshot(ctx: JobContext) -> None:
    snap = await fail2ban_snapshot(ctx.deps.fail2ban, ctx.clock)
    # Errors since the data dir's first snapshot, by the fail2ban exporter's kinds (its `f2b_errors{type}`).
    previous = ctx.deps.store.runtime.current() or {}
    errors = {"socket_conn": 0, "socket_req": 0, **(previous.get("errors") or {})}
    if snap.pop("error_kind", None) is not None:
        kind = "socket_conn" if snap.get("error_reason") in _CONNECT_REASONS else "socket_req"
        errors[kind] += 1
    snap.pop("error_reason", None)
    snap["errors"] = errors
    await ctx.fenced(ctx.deps.store.runtime.publish, snap)


async def fail2ban_snapshot(client: Fail2Ban, clock: Clock) -> dict[str, Any]:
    """`{reachable, version, jails: [{name, counters..., bantime, findtime, maxretry}], error, at}`; errors
    become `reachable: false`."""
    snap: dict[str, Any] = {"reachable": False, "version": None, "jails": [], "error": None, "at": clock()}
    try:
        summary = await client.server_summary()
    except AppError as exc:
        snap.update(error=exc.message, error_kind=exc.code, error_reason=exc.details.get("reason"))
        return snap
    jails = [{"name": j.name, **{k: getattr(j, k) for k in _COUNTERS}} for j in summary.jails]
    snap.update(reachable=True, version=summary.version, jails=jails)
    await _add_jail_config(client, jails)
    return snap


async def _add_jail_config(client: Fail2Ban, jails: list[dict[str, Any]]) -> None:
    """Each jail's bantime/findtime/maxretry, in one pipelined round trip; left out when fail2ban refuses
    (a jail removed since its status was read): the counters stay good."""
    if not jails:
        return
    try:
        values = await client.pipeline([("get", jail["name"], key) for jail in jails for key in _CONFIG])
    except AppError:
        return
    for i, jail in enumerate(jails):
        jail.update(zip(_CONFIG, (int(v) for v in values[i * len(_CONFIG):(i + 1) * len(_CONFIG)]), strict=True))
