"""Fleet mode: many `bangui serve`, one per host, sharing one Redis (see README "Fleet mode").

Layout of the fleet's keys in Redis (identity and limits live under `bangui:kv:`, store/redis_backend.py):
- `bangui:fleet:hosts` set of host names; `bangui:fleet:host:<name>` the host's published record (JSON);
- `bangui:fleet:alive:<name>` the running server's instance id, with a short TTL (host names are unique);
- `bangui:fleet:log` the stream of fleet bans/unbans and shared automatic bans, bounded by retention (MINID);
  each host reads it through its own consumer group `host:<name>` (a host that was down resumes there);
- `bangui:fleet:ban:<id>` hash host -> {"status": pending|applied|failed, "error", "added" (a ban applied there:
  the addresses it banned anew)} of one fleet ban or unban (fleet.log.host_status);
- `bangui:fleet:leader` the fleet leader's lease `<host>:<token>`; `bangui:fleet:epoch` the fencing counter.
Nothing here imports `redis` at module level: without BANGUI_FLEET_URL nothing of this runs.
"""

from __future__ import annotations

import hashlib
import os
import socket

from settings import Settings

HOSTS = "bangui:fleet:hosts"
STREAM = "bangui:fleet:log"
LEASE = "bangui:fleet:leader"
EPOCH = "bangui:fleet:epoch"
HEARTBEAT_S = 2.0  # hosts publish their record this often
STALE_AFTER_S = 3 * HEARTBEAT_S  # 3 missed heartbeats
DOWN_AFTER_S = 30.0
ALIVE_TTL_S = 10.0  # the name stays claimed this long after a server's last heartbeat


def host_key(name: str) -> str:
    return f"bangui:fleet:host:{name}"


def alive_key(name: str) -> str:
    return f"bangui:fleet:alive:{name}"


def ban_key(ban_id: str) -> str:
    return f"bangui:fleet:ban:{ban_id}"


def group(name: str) -> str:
    return f"host:{name}"


def host_name(settings: Settings) -> str:
    return settings.host_name or socket.gethostname()


def instance_id(settings: Settings) -> str:
    """Who runs under this host name: the machine and the data dir (a restart of the same server is the same)."""
    where = f"{socket.gethostname()}\0{os.path.realpath(settings.data_dir)}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def shared_jails(settings: Settings) -> list[str]:
    return [j.strip() for j in settings.fleet_share_jails.split(",") if j.strip()]


def status_of(age: float) -> str:
    return "up" if age <= STALE_AFTER_S else "stale" if age <= DOWN_AFTER_S else "down"
