"""Persisted state of the elected background jobs, so a new leader continues the old one's schedule.

Keys:
- `job:<name>`    `{last_started, last_finished, last_status, last_error, runs, next_due, failures,
                  epoch}`;
                  written only by the leader, every write fenced by its epoch.
- `jobreq:<name>` `{requested_at, by}`: a "run now" request, written by whichever worker served
                  `POST /jobs/<name>/run`; the leader consumes it in the same transaction that
                  records the start of the run. Requests expire after `REQUEST_TTL_S`.

Guarantees:
- `start()` writes `last_started` and `next_due` BEFORE the job body runs, in one transaction with the
  epoch check: a leader that lost its epoch never starts a run, and a successor that reads the record
  never starts the same job again before `next_due` (so no job runs twice within one interval across a
  takeover, and no burst of catch-up runs either).
- All writes are fenced: they raise store.leader.NotLeader, writing nothing, when the epoch is not current.
Statuses: running, ok, error, timeout, cancelled (shutdown), interrupted (the leader died mid-run).
Failure modes: a busy store raises `diskcache.Timeout`; callers offload these calls to a thread.
"""

from __future__ import annotations

from typing import Any

import diskcache

from store.base import Clock
from store.leader import NotLeader, epoch_is_current

REQUEST_TTL_S = 3600.0
STATUSES = ("running", "ok", "error", "timeout", "cancelled", "interrupted")


def job_key(name: str) -> str:
    return f"job:{name}"


def request_key(name: str) -> str:
    return f"jobreq:{name}"


class JobState:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def get(self, name: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.cache.get(job_key(name))
        return record

    def records(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        return {name: self.get(name) for name in names}

    def request(self, name: str, by: str) -> dict[str, Any]:
        """Ask the leader (whoever it is, now or later) to run `name` promptly. Any worker may call this."""
        req = {"requested_at": self.clock(), "by": by}
        self.cache.set(request_key(name), req, expire=REQUEST_TTL_S)
        return req

    def requested(self, names: list[str]) -> set[str]:
        """The names with a pending run-now request (one small read each)."""
        return {name for name in names if self.cache.get(request_key(name)) is not None}

    def start(self, name: str, epoch: int, next_in: float) -> dict[str, Any]:
        """Record that `name` starts now (fenced); the next run is due `next_in` seconds from now.

        Consumes a pending run-now request. Returns the new record; NotLeader if `epoch` is stale.
        """
        with self.cache.transact():
            _fence(self.cache, epoch)
            now = self.clock()
            record = dict(self.get(name) or {"last_finished": None, "runs": 0})
            record.update(last_started=now, last_status="running", last_error=None,
                          runs=int(record.get("runs") or 0) + 1, next_due=now + next_in, epoch=epoch)
            self.cache.set(job_key(name), record)
            self.cache.delete(request_key(name))
        return record

    def finish(self, name: str, epoch: int, status: str, error: str | None = None, failures: int = 0,
               retry_in: float | None = None) -> dict[str, Any]:
        """Record the outcome of the run started under `epoch` (fenced); NotLeader if the epoch is stale.

        `failures` is the count of consecutive failed runs; `retry_in` (seconds from now) postpones
        `next_due` for a backoff, never brings it forward.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        with self.cache.transact():
            _fence(self.cache, epoch)
            now = self.clock()
            record = dict(self.get(name) or {"runs": 0, "last_started": None, "next_due": None})
            record.update(last_finished=now, last_status=status, last_error=error, failures=failures,
                          epoch=epoch)
            if retry_in is not None:
                record["next_due"] = max(record.get("next_due") or now, now + retry_in)
            self.cache.set(job_key(name), record)
        return record

    def mark_interrupted(self, names: list[str], epoch: int) -> list[str]:
        """At takeover: runs a previous leader left 'running' become 'interrupted' (fenced).

        Returns the names changed. Their `next_due` is kept, so they run again on schedule, not at once.
        """
        changed = []
        with self.cache.transact():
            _fence(self.cache, epoch)
            for name in names:
                record = self.get(name)
                if record and record.get("last_status") == "running" and record.get("epoch") != epoch:
                    error = f"the leader of epoch {record.get('epoch')} ended during the run"
                    record.update(last_status="interrupted", last_error=error)
                    self.cache.set(job_key(name), record)
                    changed.append(name)
        return changed


def _fence(cache: diskcache.Cache, epoch: int) -> None:
    if not epoch_is_current(cache, epoch):
        raise NotLeader(f"epoch {epoch} is no longer current")
