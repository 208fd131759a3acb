"""Ask the leader to run a job now (written to the store; the leader's scheduler picks it up)."""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from core.roles import Role
from errors import NotFound
from store.base import offload


@action("job.run", Role.operator, target="name")
async def run_job(act: Act, name: str, known: set[str]) -> dict[str, Any]:
    """`known`: the job names of this configuration (jobs.definitions.load_jobs)."""
    if name not in known:
        raise NotFound(f"no job named {name!r}; GET /api/v1/jobs lists them", code="job_not_found")
    act.status = 202
    return await offload(act.deps.store.jobs.request, name, act.actor.name)
