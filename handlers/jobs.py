"""Background jobs: who leads, each job's schedule and last outcome, and "run now".

A run-now request is written to the store by whichever worker serves it; the leader picks it up
within a fraction of a second (jobs/scheduler.py). No job ever runs in the serving worker.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actions import jobs as actions
from core.roles import Role
from handlers.api import Call, iso, route
from jobs.definitions import Job, load_jobs
from settings import Settings
from store.base import offload


class LeaderInfo(msgspec.Struct):
    pid: int
    host: str
    epoch: int
    since: str | None
    heartbeat_age_s: float


class JobInfo(msgspec.Struct):
    name: str
    interval_s: float
    last_started: str | None
    last_finished: str | None
    last_status: str | None  # running | ok | error | timeout | cancelled | interrupted
    last_error: str | None
    runs: int
    next_due: str | None  # null: due as soon as a leader runs it


class JobsView(msgspec.Struct):
    leader: LeaderInfo | None
    jobs: list[JobInfo]


class RunRequested(msgspec.Struct):
    job: str
    requested_at: str | None
    leader_pid: int | None  # null: no leader now; the next one will run it


class Requested(msgspec.Struct):
    """What a request handed to the leader answers (a blocklist's import now, a notification test)."""

    name: str
    requested_at: str | None
    leader_pid: int | None  # null: no leader now; the next one will take it


def handed_over(store: Any, request: dict[str, Any]) -> tuple[str | None, int | None]:
    """`(requested_at, leader_pid)` of a request an action handed to the leader (actions.jobs.hand_to_leader)."""
    leader = leader_summary(store)
    return iso(request["requested_at"]), leader["pid"] if leader else None


def leader_summary(store: Any) -> dict[str, Any] | None:
    """`{pid, epoch, heartbeat_age_s}` of the published leader, or None (one small read, inline)."""
    record = store.leader.current()
    if not record:
        return None
    return {"pid": record["pid"], "epoch": record["epoch"],
            "heartbeat_age_s": round(store.leader.heartbeat_age(record), 3)}


def heartbeat_is_stale(store: Any, settings: Settings) -> bool:
    """True when a leader is published but its heartbeat is older than `leader_stale_seconds`
    (alive but wedged: the lock cannot tell). No published leader is not "stale": see leader_summary.
    """
    record = store.leader.current()
    return bool(record) and store.leader.heartbeat_age(record) > settings.leader_stale_seconds


def _leader_info(store: Any, record: dict[str, Any] | None) -> LeaderInfo | None:
    if not record:
        return None
    return LeaderInfo(record["pid"], record["host"], record["epoch"], iso(record["since"]),
                      round(store.leader.heartbeat_age(record), 3))


def _job_info(job: Job, settings: Settings, record: dict[str, Any] | None) -> JobInfo:
    r = record or {}
    return JobInfo(job.name, job.interval_s(settings), iso(r.get("last_started")),
                   iso(r.get("last_finished")), r.get("last_status"), r.get("last_error"),
                   int(r.get("runs") or 0), iso(r.get("next_due")))


def _read(store: Any, names: list[str]) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any] | None]]:
    return store.leader.current(), store.jobs.records(names)


async def list_jobs(call: Call) -> JobsView:
    deps = call.deps
    jobs = load_jobs(deps.settings)
    leader, records = await offload(_read, deps.store, [job.name for job in jobs])
    return JobsView(_leader_info(deps.store, leader),
                    [_job_info(job, deps.settings, records.get(job.name)) for job in jobs])


async def run_job(call: Call) -> RunRequested:
    name = call.param("name")
    known = {job.name for job in load_jobs(call.deps.settings)}
    request = await actions.run_job(call.deps, call.actor, name, known)
    return RunRequested(name, *handed_over(call.deps.store, request))


routes = [
    route("GET", "/jobs", list_jobs, Role.viewer,
          "Background jobs: the leader, each job's schedule and last outcome.", response=JobsView),
    route("POST", "/jobs/{name}/run", run_job, Role.operator,
          "Ask the leader to run a job now (202; it starts within a second if a leader is up).",
          response=RunRequested, status=202, action=actions.run_job),
]
