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

import functools
import os
import secrets
import socket
import time

from settings import Settings

HOSTS = "bangui:fleet:hosts"
STREAM = "bangui:fleet:log"
LEASE = "bangui:fleet:leader"
EPOCH = "bangui:fleet:epoch"
HEARTBEAT_S = 0.5  # hosts publish their record this often (a few small writes: cheap)
STALE_AFTER_S = 2.0  # 4 missed heartbeats: a dead host is `stale` within 2.5 s (issue 21: within 3 s)
DOWN_AFTER_S = 30.0
ALIVE_TTL_S = 10.0  # the name stays claimed this long after a server's last heartbeat
INSTANCE_FILE = "fleet-instance-id"


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
    """Who runs under this host name: the data dir, by a random id kept in it (created once, 0600). A server
    restarted on the same data dir is the same host and takes its name back at once, even where the machine's
    name or the dir's path changed (a container gets a new hostname, a volume another mount point); a server on
    another data dir under the same name is another instance (refused while the first one's claim lives)."""
    return _instance_id(os.path.realpath(settings.data_dir))


@functools.lru_cache(maxsize=4)
def _instance_id(data_dir: str) -> str:
    path = os.path.join(data_dir, INSTANCE_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="ascii") as existing:
            if value := existing.read().strip():
                return value
        # an empty file: its maker crashed between create and write (or is writing now): wait for it, once
        time.sleep(0.05)
        with open(path, encoding="ascii") as existing:
            return existing.read().strip() or "unknown"
    value = secrets.token_hex(8)
    with os.fdopen(fd, "w", encoding="ascii") as new:
        new.write(value)
        new.flush()
        os.fsync(new.fileno())
    return value


def shared_jails(settings: Settings) -> list[str]:
    return [j.strip() for j in settings.fleet_share_jails.split(",") if j.strip()]


def status_of(age: float) -> str:
    return "up" if age <= STALE_AFTER_S else "stale" if age <= DOWN_AFTER_S else "down"
