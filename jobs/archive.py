"""The history jobs: copy fail2ban's bans into bangui's archive, and purge what is past retention.

Both run on the leader only, in a worker thread (SQLite), fenced: a process that lost leadership
meanwhile commits nothing (sync checks before each batch's commit; the purge checks first).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from store.base import offload
from store.fail2ban_copy import sync_once

if TYPE_CHECKING:
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs.history")


async def history_sync(ctx: JobContext) -> None:
    deps = ctx.deps
    path = deps.settings.fail2ban_db or await deps.fail2ban.dbfile()
    if not path or path == ":memory:":
        raise RuntimeError("fail2ban keeps no database file (dbfile is None or :memory:): its automatic bans "
                           "cannot be archived; give fail2ban a dbfile or set BANGUI_FAIL2BAN_DB")
    result = await offload(sync_once, deps.store.history, path,
                           lambda: deps.store.leader.is_current(ctx.epoch))
    if result.status != "ok":  # "locked": fail2ban held its DB all along
        raise RuntimeError(f"history sync stopped early ({result.status}); the next run resumes from the mark")
    if result.inserted:
        log.info("history sync: %d new bans (%d rows read)", result.inserted, result.rows_read)


async def audit_retention(ctx: JobContext) -> None:
    if not await ctx.still_leader():
        return
    days = ctx.deps.settings.audit_retention_days
    purged = await offload(ctx.deps.store.audit.purge, days)
    if purged:
        log.info("audit retention: purged %d entries older than %d days (checkpoint left)", purged, days)


async def history_retention(ctx: JobContext) -> None:
    if not await ctx.still_leader():
        return
    days = ctx.deps.settings.history_retention_days
    purged = await offload(ctx.deps.store.history.purge, days)
    if purged:
        log.info("history retention: purged %d events older than %d days", purged, days)
