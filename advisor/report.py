"""One advisor run: gather the context, run every check, cache the answer.

    await advise(deps, requester)  ->  {"checked_at", "host", "findings", "context"}

fail2ban's running state is read over its socket (async); everything else runs in a worker thread. The
answer without check 3 (which depends on the requester's address) is cached per process, keyed by every
input: the configuration tree's files (path, mtime, size), the host facts' fingerprint, the (size, mtime) of
every enabled jail's log, fail2ban's running jails and server settings, and the repeat offenders' count. So
it is recomputed exactly when the configuration, the logs or the detected services change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from typing import Any

from advisor import banactions, facts, filters, lockout, logsources, retention, server, services
from advisor.context import Context
from advisor.finding import SEVERITIES, Finding
from advisor.host import HostView
from f2bconfig import catalogue
from f2bconfig.paths import ConfigTree
from store.base import offload

SERVER_KEYS = ("loglevel", "logtarget", "dbfile", "dbpurgeage")
_cache: dict[str, tuple[str, list[Finding]]] = {}  # config dir -> (key, findings): one entry per config dir
_lock = threading.Lock()


async def _fail2ban_state(client: Any) -> tuple[set[str] | None, dict[str, Any] | None]:
    try:
        names = await client.jail_names()
        values = await client.pipeline([("get", key) for key in SERVER_KEYS])
    except Exception:  # fail2ban down or refusing: what it runs is unknown, the files can still be checked
        return None, None
    return set(names), dict(zip(SERVER_KEYS, values, strict=True))


def _bangui_addresses(bind: str) -> list[str]:
    host = bind.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return []
    return [] if address.is_unspecified else [str(address)]


def _log_marks(ctx: Context) -> str:
    marks = []
    for jail in ctx.enabled():
        for pattern in jail["logpath"]:
            for path in ctx.host.matches(pattern):
                st = ctx.host.stat(path)
                marks.append(f"{path}:{st.st_size}:{st.st_mtime_ns}" if st else path)
    return "|".join(marks)


def context(settings: Any, store: Any, running: set[str] | None, server_values: dict[str, Any] | None) -> Context:
    host = HostView(settings.host_root)
    try:
        repeat: int | None = store.history.repeat_offender_count()
    except Exception:  # the archive is optional evidence, never a reason to fail the run
        repeat = None
    return Context(host, facts.gather(host), settings.fail2ban_config_dir,
                   catalogue.jails(settings.fail2ban_config_dir), running, server_values, repeat,
                   _bangui_addresses(settings.bind), tuple(settings.trusted_proxies), settings.filter_test_seconds)


def _key(ctx: Context) -> str:
    parts = [repr(ConfigTree(ctx.config_dir, "/nonexistent").signature()), ctx.facts.fingerprint, _log_marks(ctx),
             repr(sorted(ctx.running or ()) if ctx.running is not None else None), repr(ctx.server),
             repr(ctx.repeat_offenders), ctx.host.root, repr(ctx.bangui_addresses), repr(ctx.trusted_proxies),
             str(filters.generation())]  # filter tests that finished after a run returned (advisor/filters.py)
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def run_checks(ctx: Context) -> list[Finding]:
    """Every check but the requester's lock-out (check 3), in the issue's order."""
    return (logsources.check(ctx) + services.check(ctx) + lockout.too_wide(ctx) + banactions.check(ctx)
            + retention.check(ctx) + filters.check(ctx) + server.check(ctx))


def findings(ctx: Context, requester: str | None) -> list[Finding]:
    key = _key(ctx)
    with _lock:
        hit = _cache.get(ctx.config_dir)
    if hit is not None and hit[0] == key:
        base = hit[1]
    else:
        base = run_checks(ctx)
        with _lock:
            _cache[ctx.config_dir] = (key, base)
    found = base + lockout.lockout(ctx, requester)
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.id))


def _requester(address: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(address or ""))
    except ValueError:
        return None  # e.g. a Unix socket or a test client: no address to protect


async def gather(deps: Any, requester: str | None) -> tuple[Context, list[Finding]]:
    running, server_values = await _fail2ban_state(deps.fail2ban)

    def blocking() -> tuple[Context, list[Finding]]:
        ctx = context(deps.settings, deps.store, running, server_values)
        return ctx, findings(ctx, _requester(requester))

    return await offload(blocking)


async def advise(deps: Any, requester: str | None, with_fixes: bool) -> dict[str, Any]:
    ctx, found = await gather(deps, requester)
    host = ctx.facts.as_json() | {
        "root": ctx.host.root, "logs_visible": ctx.host.logs_visible(),
        "fail2ban": "unknown" if ctx.running is None else {"running_jails": sorted(ctx.running)},
        "enabled_jails": [j["name"] for j in ctx.enabled()]}
    counts = {s: sum(1 for f in found if f.severity == s) for s in SEVERITIES}
    return {"checked_at": time.time(), "host": host, "counts": counts,
            "findings": [f.as_json(with_fixes) for f in found]}
