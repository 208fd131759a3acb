"""The background jobs, declared in one place: name, interval, timeout, function.

A job is `async def job(ctx: JobContext) -> None`. It runs on the leader only, never overlapping
itself, under a timeout; an exception is logged and recorded by the scheduler, never propagated.
Jobs that write shared state fence their writes with `ctx.fenced(fn, ...)` (or check
`await ctx.still_leader()` first) so that a replaced leader never commits.

Operators (and the process tests) add jobs with `BANGUI_JOBS_MODULE=package.module:ATTR`, where ATTR
is a list of `Job`. A bad value fails loudly at start (ConfigError naming the variable).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from jobs.archive import audit_retention, history_retention, history_sync
from jobs.blocklists import blocklists
from jobs.cleanup import cleanup
from jobs.decisions import decisions
from jobs.errors import JobFailed
from jobs.fleet.agent import fleet_job
from jobs.notify import notifications
from jobs.reconcile import audit_reconcile
from jobs.snapshot import snapshot
from settings import ConfigError, Settings
from store.base import Clock, offload

if TYPE_CHECKING:
    from core.deps import Deps

__all__ = ["Job", "JobContext", "JobFailed", "builtin_jobs", "load_jobs"]
T = TypeVar("T")
JobFunc = Callable[["JobContext"], Awaitable[None]]
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: no trailing newline


@dataclasses.dataclass(frozen=True)
class Job:
    """One interval job. `every` is seconds, or the name of a Settings field holding seconds."""

    name: str
    every: float | str
    timeout: float
    run: JobFunc
    jitter: float = 0.1  # up to this fraction of the interval is added to each next_due, at random
    endless: bool = False  # runs until cancelled (the fleet agent): a stop cancels it at once, with no grace

    def interval_s(self, settings: Settings) -> float:
        return float(getattr(settings, self.every) if isinstance(self.every, str) else self.every)


@dataclasses.dataclass
class JobContext:
    """What a running job gets: the process's dependencies and the epoch it runs under."""

    deps: Deps
    epoch: int
    job: Job
    clock: Clock

    async def still_leader(self) -> bool:
        """Is our epoch still current? (a check, not a lock: use `fenced` for the commit itself)"""
        return await offload(self.deps.store.leader.is_current, self.epoch)

    async def fenced(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the store write `fn(*args)` in one transaction, only if our epoch is still current.

        Raises store.leader.NotLeader (nothing written) when another process leads now.
        """
        return await offload(self.deps.store.leader.run_fenced, self.epoch, fn, *args)


def builtin_jobs() -> list[Job]:
    """The JOBS table. Add a job here (or, for site-specific work, through BANGUI_JOBS_MODULE)."""
    return [
        Job("snapshot", every="snapshot_seconds", timeout=10.0, run=snapshot),
        Job("decisions", every="decisions_seconds", timeout=30.0, run=decisions, jitter=0.0),
        Job("cleanup", every=300.0, timeout=120.0, run=cleanup),
        Job("history_sync", every="history_sync_seconds", timeout=300.0, run=history_sync),
        Job("history_retention", every=3600.0, timeout=600.0, run=history_retention),
        Job("audit_retention", every=3600.0, timeout=600.0, run=audit_retention),
        Job("audit_reconcile", every=30.0, timeout=300.0, run=audit_reconcile),
        Job("blocklists", every=60.0, timeout=600.0, run=blocklists),
        Job("notifications", every=2.0, timeout=120.0, run=notifications),
    ]


@lru_cache(maxsize=8)
def load_jobs(settings: Settings) -> tuple[Job, ...]:
    """The built-in jobs plus those of `settings.jobs_module`, validated (ConfigError if wrong)."""
    jobs = builtin_jobs() + (_extra_jobs(settings.jobs_module) if settings.jobs_module else [])
    if settings.fleet_url:  # fleet mode: the host leader also runs the host's fleet agent (jobs/fleet/agent.py)
        jobs.append(Job("fleet", every=1.0, timeout=float(10**9), run=fleet_job, jitter=0.0, endless=True))
    seen: set[str] = set()
    for job in jobs:
        where = f"job {job.name!r}" + (f" from BANGUI_JOBS_MODULE={settings.jobs_module}" if
                                        settings.jobs_module else "")
        if not NAME.fullmatch(job.name):
            raise ConfigError(f"{where}: names are 1-64 of a-z 0-9 _ - (they appear in keys and URLs)")
        if job.name in seen:
            raise ConfigError(f"{where}: a job with this name already exists")
        if job.interval_s(settings) <= 0 or job.timeout <= 0 or not 0 <= job.jitter <= 1:
            raise ConfigError(f"{where}: interval and timeout must be positive, jitter within 0..1")
        seen.add(job.name)
    return tuple(jobs)


def _extra_jobs(spec: str) -> list[Job]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"invalid BANGUI_JOBS_MODULE={spec!r}: expected module:ATTRIBUTE")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"invalid BANGUI_JOBS_MODULE={spec!r}: {exc}") from None
    if not isinstance(value, list | tuple) or not all(isinstance(j, Job) for j in value):
        raise ConfigError(f"invalid BANGUI_JOBS_MODULE={spec!r}: {attr} must be a list of "
                          "jobs.definitions.Job")
    return list(value)
