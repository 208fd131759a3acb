"""Ask the leader to run a job now (written to the store; the leader's scheduler picks it up).

`hand_to_leader` is the one way an action asks for work of the leader: a job run now, a blocklist's import now
(actions/blocklists.py), a notification target's test message (actions/notifications.py).
"""

from __future__ import annotations

from collections.abc import Callable
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
    return await hand_to_leader(act, name)


async def hand_to_leader(act: Act, job: str, file: Callable[[str], dict[str, Any]] | None = None,
                         ) -> dict[str, Any]:
    """Ask the leader to run `job` now (202). With `file`, first `file(actor name)`: a store's request for one
    item that the job consumes (NotFound for an unknown item: nothing is asked then); its record is returned,
    else the job's run request."""
    act.status = 202
    filed = None if file is None else await offload(file, act.actor.name)
    run = await offload(act.deps.store.jobs.request, job, act.actor.name)
    return run if filed is None else filed
