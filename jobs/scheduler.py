"""The interval scheduler that the elected leader runs, in one anyio task group.

Guarantees (while the leader's epoch is current):
- A job never overlaps itself: at most one run per job name at a time, on this leader; and a new
  leader only gets the lock after the old one's runs ended (SIGKILL ends them with the process).
- The schedule is persisted: each run is recorded (fenced) in `job:<name>` BEFORE it starts, with
  `next_due = start + interval * (1 + jitter * random)`. A new leader continues from there: no burst of
  re-runs after a takeover, and no job waits longer than its due time or the takeover, whichever is later.
- Run-now requests (`jobreq:<name>`, written by any worker) are read every `poll_s` on the leader only.
- A job that raises or exceeds its timeout is logged and recorded (`error`/`timeout`), and retried with
  exponential backoff (capped at `MAX_BACKOFF` intervals); nothing it raises leaves the task group,
  because under hypercorn an exception escaping a worker's lifespan stops every worker.
- Shutdown: running jobs get `grace_s` to finish, then are cancelled and recorded `cancelled`; if the
  epoch was lost they are cancelled at once (their writes would be refused anyway), as is an `endless` job
  (the fleet agent: it never finishes by itself, so its grace would only delay every stop).
- Losing leadership has one signal: store.leader.NotLeader, raised by any fenced write (the schedule's
  own records, a job's `ctx.fenced` writes, the history sync's commits) and handled in one place,
  `Scheduler._leadership`: the scheduler stops and cancels its running jobs at once.
- Logging a failure: a traceback only when the error differs from the job's previous one (a job failing the
  same way every run logs one line a run); none for `JobFailed` (the job explained it in the log already) nor
  for `errors.Unavailable` (fail2ban or the fleet's Redis down: one warning line, again only when it changes).
Failure modes: store errors in the loop are logged and retried after `ERROR_BACKOFF_S`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from errors import Unavailable
from jobs.definitions import Job, JobContext, JobFailed
from metrics import process as metrics
from store.base import Clock, offload
from store.leader import NotLeader

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.jobs")
POLL_S = 0.25
GRACE_S = 3.0
ERROR_BACKOFF_S = 1.0
MAX_BACKOFF = 8  # a failing job is retried after at most this many intervals
FINISH_TIMEOUT_S = 5.0
Record = dict[str, Any]


def due_jobs(jobs: Iterable[Job], records: dict[str, Record | None], requested: set[str],
             running: Iterable[str], now: float) -> list[Job]:
    """The jobs to start now: not running, and requested, never run, or past their `next_due`."""
    busy = set(running)
    out = []
    for job in jobs:
        if job.name in busy:
            continue  # a request for a running job stays pending until the run ends
        due = (records.get(job.name) or {}).get("next_due")
        if job.name in requested or due is None or due <= now:
            out.append(job)
    return out


def seconds_to_next(jobs: Iterable[Job], records: dict[str, Record | None], running: Iterable[str],
                    now: float, poll_s: float) -> float:
    """How long the loop may sleep: until the earliest idle job is due, but at most `poll_s`."""
    busy = set(running)
    dues = [(records.get(j.name) or {}).get("next_due") for j in jobs if j.name not in busy]
    earliest = min((d for d in dues if d is not None), default=now + poll_s)
    return max(0.0, min(poll_s, earliest - now))


def next_in(interval: float, jitter: float, rng: Callable[[], float]) -> float:
    """Seconds from a start to the next due time: the interval plus a random share of it (never less)."""
    return interval * (1.0 + jitter * rng())


def retry_in(interval: float, failures: int) -> float:
    """Backoff after `failures` consecutive failed runs: 1, 2, 4 ... MAX_BACKOFF intervals."""
    return interval * min(MAX_BACKOFF, 2 ** max(0, failures - 1))


class Scheduler:
    """Runs `jobs` for the leader of `epoch` until cancelled or until the epoch is found stale."""

    def __init__(self, deps: Deps, epoch: int, jobs: Sequence[Job], *, clock: Clock = time.time,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
                 poll_s: float = POLL_S, grace_s: float = GRACE_S,
                 rng: Callable[[], float] = random.random) -> None:
        self.deps, self.epoch, self.jobs = deps, epoch, list(jobs)
        # `clock` and `sleep` are injected together: tests run the schedule on a manual clock (time passes
        # when the scheduler sleeps), so intervals and backoff are checked exactly, not against wall time.
        self.clock, self.sleep, self.poll_s, self.grace_s, self.rng = clock, sleep, poll_s, grace_s, rng
        self.state = deps.store.jobs
        self.records: dict[str, Record | None] = {}
        self.running: dict[str, anyio.CancelScope] = {}
        self.lost = False  # set when a fenced write was refused (or by the heartbeat): stop at once
        self._stopping = False

    @property
    def names(self) -> list[str]:
        return [job.name for job in self.jobs]

    @contextlib.contextmanager
    def _leadership(self) -> Iterator[None]:
        """The one handler of NotLeader: note the loss (the loop ends, running jobs are cancelled)."""
        try:
            yield
        except NotLeader as exc:
            if not self.lost:
                log.warning("epoch %d is no longer current (%s): stepping down", self.epoch, exc)
            self.lost = True

    async def run(self) -> None:
        """Schedule until cancelled (shutdown) or until the epoch is lost (returns)."""
        with self._leadership():
            interrupted = await offload(self.state.mark_interrupted, self.names, self.epoch)
            if interrupted:
                log.warning("jobs %s were interrupted by the previous leader's end", ", ".join(interrupted))
            self.records = await offload(self.state.records, self.names)
        async with anyio.create_task_group() as tg:
            try:
                while not self.lost:
                    with self._leadership():
                        try:
                            await self._tick(tg)
                        except NotLeader:
                            raise
                        except Exception:
                            log.exception("scheduler tick failed; retrying in %gs", ERROR_BACKOFF_S)
                            await self.sleep(ERROR_BACKOFF_S)
            finally:
                self._stop_running()

    async def _tick(self, tg: anyio.abc.TaskGroup) -> None:
        idle = [name for name in self.names if name not in self.running]
        # A few small reads, inline: cheaper than a thread hop 4x a second (WAL reads never wait for writers).
        requested = self.state.requested(idle) if idle else set()
        for job in due_jobs(self.jobs, self.records, requested, self.running, self.clock()):
            interval = job.interval_s(self.deps.settings)
            last_error = (self.records.get(job.name) or {}).get("last_error")  # `start` clears it
            record = await offload(self.state.start, job.name, self.epoch,
                                   next_in(interval, job.jitter, self.rng))
            self.records[job.name] = record
            # Shielded, so that a shutdown does not cancel the run at once: _stop_running() shortens
            # the deadline to the grace period instead. The deadline is the job's own timeout.
            scope = anyio.CancelScope(shield=True, deadline=anyio.current_time() + job.timeout)
            self.running[job.name] = scope
            tg.start_soon(self._run_one, job, scope, last_error, name=f"job:{job.name}")
        await self.sleep(seconds_to_next(self.jobs, self.records, self.running, self.clock(), self.poll_s))

    async def _run_one(self, job: Job, scope: anyio.CancelScope, last_error: str | None = None) -> None:
        status, error = "ok", None
        started = time.monotonic()
        try:
            with scope, self._leadership():
                await job.run(JobContext(self.deps, self.epoch, job, self.clock))
            if scope.cancelled_caught:
                status = "cancelled" if self._stopping else "timeout"
                error = "stopped by the leader's shutdown" if self._stopping else \
                    f"exceeded its timeout of {job.timeout:g}s"
                log.warning("job %s %s", job.name, error)
        except JobFailed as exc:
            status, error = "error", str(exc)
        except Unavailable as exc:  # fail2ban, the fleet's Redis, the store: down, and its message says what to do
            status, error = "error", str(exc)  # one line, no traceback (issue 20): it is a state, not a bug
            if error != last_error:
                log.warning("job %s: %s", job.name, error)
        except Exception as exc:  # never let a job's failure leave the task group
            status, error = "error", f"{type(exc).__name__}: {exc}"
            if error == last_error:  # the same failure again: its traceback is in the log already
                log.error("job %s failed again: %s", job.name, error)
            else:
                log.exception("job %s failed", job.name)
        metrics.observe_job(job.name, status, time.monotonic() - started)
        try:
            if not self.lost:  # else our write would be refused: the successor marks the run interrupted
                await self._record_finish(job, status, error)
        finally:
            # Only now: a pending run-now request must not start a new run before this one is recorded.
            del self.running[job.name]

    async def _record_finish(self, job: Job, status: str, error: str | None) -> None:
        record = self.records.get(job.name) or {}
        failures = 0 if status in ("ok", "cancelled") else int(record.get("failures") or 0) + 1
        backoff = retry_in(job.interval_s(self.deps.settings), failures) if failures else None
        # Shielded: after a shutdown's grace period the outcome must still be written.
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINISH_TIMEOUT_S), self._leadership():
            try:
                self.records[job.name] = await offload(self.state.finish, job.name, self.epoch, status, error,
                                                       failures, backoff)
            except NotLeader:
                raise
            except Exception:
                log.exception("could not record the end of job %s", job.name)

    def _stop_running(self) -> None:
        """Give running jobs the grace period (or nothing, if the epoch is lost); never awaits."""
        self._stopping = True
        now = anyio.current_time()
        limit = now + (0.0 if self.lost else self.grace_s)
        endless = {job.name for job in self.jobs if job.endless}  # waiting would only delay the stop
        for name, scope in self.running.items():
            scope.deadline = min(scope.deadline, now if name in endless else limit)
