"""The history jobs: copy fail2ban's bans into bangui's archive, and purge what is past retention.

Both run on the leader only, in a worker thread (SQLite), fenced: a process that lost leadership
meanwhile commits nothing (sync checks before each batch's commit; the purge checks first).

fail2ban's database not readable (the usual cause: a container without fail2ban's database directory mounted)
is one warning naming the mount to add, then one line only when that state changes (another reason, or
readable again), whichever worker leads: the last state is kept in the shared store. The run is recorded as
failed each time (GET /jobs, GET /health `history_sync`), without a traceback.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actions.base import record
from core.actor import job as job_actor
from jobs.errors import JobFailed
from store.base import offload
from store.fail2ban_copy import SyncError, sync_once

if TYPE_CHECKING:
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs.history")
STATE_KEY = "jobnote:history_sync:db"  # the last reported state: "ok" or the reason it cannot be read
HOW_TO_FIX = ("mount fail2ban's database directory read-only into the container (e.g. -v /var/lib/fail2ban:"
              "/var/lib/fail2ban:ro) and make the file readable by bangui's user, or set BANGUI_FAIL2BAN_DB to "
              "its path; until then history has only the bans and unbans made through bangui")


async def _note_state(ctx: JobContext, state: str, path: str) -> None:
    """Log a change of the database's state once (the first failure, a different failure, recovery)."""
    cache = ctx.deps.store.cache
    previous = cache.get(STATE_KEY)
    if previous == state:
        return
    if state == "ok":
        if previous is not None:
            log.warning("history sync: fail2ban's database %s is readable again", path)
    else:
        log.warning("history sync: %s; %s", state, HOW_TO_FIX)
    await offload(cache.set, STATE_KEY, state)


async def history_sync(ctx: JobContext) -> None:
    deps = ctx.deps
    path = deps.settings.fail2ban_db or await deps.fail2ban.dbfile()
    if not path or path == ":memory:":
        raise RuntimeError("fail2ban keeps no database file (dbfile is None or :memory:): its automatic bans "
                           "cannot be archived; give fail2ban a dbfile or set BANGUI_FAIL2BAN_DB")
    try:
        result = await offload(sync_once, deps.store.history, path,
                               lambda: deps.store.leader.is_current(ctx.epoch))
    except SyncError as exc:
        await _note_state(ctx, str(exc), path)
        raise JobFailed(f"{exc} (see the log: {HOW_TO_FIX.split(';')[0]})") from None
    await _note_state(ctx, "ok", path)
    if result.status != "ok":  # "locked": fail2ban held its DB all along
        raise RuntimeError(f"history sync stopped early ({result.status}); the next run resumes from the mark")
    if result.inserted:
        log.info("history sync: %d new bans (%d rows read)", result.inserted, result.rows_read)
    if result.restored or result.lifted:  # bans fail2ban restored or lifted without a row of its own
        log.info("history sync: %d bans open again (restored by fail2ban), %d closed (no longer banned by "
                 "fail2ban)", result.restored, result.lifted)


async def audit_retention(ctx: JobContext) -> None:
    if not await ctx.still_leader():
        return
    days = ctx.deps.settings.audit_retention_days
    purged = await offload(ctx.deps.store.audit.purge, days)
    if purged:
        log.info("audit retention: purged %d entries older than %d days (checkpoint left)", purged, days)
        await _housekeeping(ctx, "audit_retention", purged=purged, older_than_days=days)


async def history_retention(ctx: JobContext) -> None:
    if not await ctx.still_leader():
        return
    days = ctx.deps.settings.history_retention_days
    purged = await offload(ctx.deps.store.history.purge, days)
    if purged:
        log.info("history retention: purged %d events older than %d days", purged, days)
        await _housekeeping(ctx, "history_retention", purged=purged, older_than_days=days)


async def _housekeeping(ctx: JobContext, job: str, **details: int) -> None:
    """Retention deletes records: audited as its own kind, `housekeeping.<job>`, by the job (docs/architecture.md).
    The other housekeeping (store expiry, the history copy) adds records or drops expired ones: job records only."""
    await record(ctx.deps, job_actor(job), f"housekeeping.{job}", None, 200, details)
