"""Complete the audit entries that a dead process left `pending` (issue 18: write-ahead).

An action appends its entry as `pending` before any side effect (actions/base.py) with an intent naming its
process (core/processes.py). The leader runs this at its start (every takeover) and then as the
`audit_reconcile` job: an intent whose process no longer runs is completed as `interrupted`. For a ban or
unban, fail2ban is asked what was applied: the planned addresses banned now (for an unban: not banned now) go
to history with the original actor and origin (claiming any copy the sync already made as `auto`), and the
entry records the counts. An intent whose process still runs is left alone (it is in flight, or that process
retries its own completion before its next action). With fail2ban unreachable, a ban's intent waits.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from core.processes import is_running
from errors import AppError
from store.base import offload

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs.reconcile")


async def reconcile_pending(deps: Deps) -> int:
    """Complete every intent of a dead process; returns how many were completed."""
    done = 0
    for intent in await offload(deps.store.audit.intents):
        if is_running(intent["owner"]):
            continue
        try:
            details = await _applied(deps, intent)
        except AppError as exc:  # fail2ban unreachable, the jail gone
            log.warning("audit entry %d stays pending: fail2ban cannot say what was applied (%s)", intent["id"], exc)
            continue
        completion = {f: intent[f] for f in ("actor", "role", "via", "source_ip", "action", "target")}
        completion.update(outcome="interrupted", status=500, details=details, of=intent["id"])
        try:
            await offload(deps.store.audit.append, completion)
        except sqlite3.IntegrityError:  # completed meanwhile
            continue
        log.warning("audit entry %d (%s by %s) was left pending by a dead process: completed as interrupted %s",
                    intent["id"], intent["action"], intent["actor"], {k: details.get(k) for k in ("applied",)})
        done += 1
    return done


async def _applied(deps: Deps, intent: dict[str, Any]) -> dict[str, Any]:
    """The entry's details with what fail2ban says was applied; history records exactly that."""
    details = dict(intent["details"], error="interrupted")
    plan = intent["plan"]
    if not plan or plan.get("kind") not in ("ban", "unban"):
        return details
    # one jail (a ban, an unban), or several (an unban everywhere: {"jails": {jail: entries}})
    per_jail = plan.get("jails") or {plan["jail"]: plan["ips"]}
    applied = requested = 0
    for jail, ips in per_jail.items():
        applied += await _reconcile_jail(deps, intent, plan, jail, ips)
        requested += len(ips)
    return dict(details, applied=applied, requested=requested)


async def _reconcile_jail(deps: Deps, intent: dict[str, Any], plan: dict[str, Any], jail: str, ips: list[str]) -> int:
    """Record in history what fail2ban says was applied of `ips` in `jail`; how many were."""
    history = deps.store.history
    banned = set(await deps.fail2ban.banned_ips(jail))
    # The dead process may have recorded some chunks already (with its actor): those are not recorded twice.
    recorded = await offload(history.recorded_since, jail, plan["kind"], intent["actor"], intent["at"])
    if plan["kind"] == "ban":
        applied = [ip for ip in ips if ip in banned]
        missing = [ip for ip in applied if ip not in recorded]
        if missing:
            await offload(lambda: history.record_ban(jail, missing, plan["origin"], intent["actor"],
                                                     since=intent["at"], source_host=plan.get("source_host")))
    else:
        applied = [ip for ip in ips if ip not in banned]
        missing = [ip for ip in applied if ip not in recorded]
        if missing:
            await offload(lambda: history.record_unbans(jail, missing, intent["actor"], origin=plan["origin"],
                                                        source_host=plan.get("source_host")))
    return len(applied)


async def audit_reconcile(ctx: JobContext) -> None:
    await reconcile_pending(ctx.deps)
