"""Store cleanup: drop expired entries (sessions, rate-limit counters, stale run requests).

diskcache expires lazily (an expired key is only skipped on read), so without this job expired rows
would accumulate. `expire()` deletes in small batches, each its own short transaction, so other
processes' writes interleave. Idempotent, so it needs no fencing: two copies would only do less work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from store.base import offload

if TYPE_CHECKING:
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs.cleanup")


async def cleanup(ctx: JobContext) -> None:
    removed = await offload(ctx.deps.store.cache.expire)
    if removed:
        log.info("store cleanup removed %d expired entries", removed)
