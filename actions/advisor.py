"""The advisor's fixes (issue 24): one audited action applies the fix a finding proposes, through the
configuration engine (validated on a staged copy, applied, verified, rolled back on failure, recorded in
config/changes and revertible like any change: actions/config.py `_run`).

The fix is computed again at the time of the request (never taken from the client): what is applied is what
GET /api/v1/advisor shows for that finding now, for this requester (check 3 adds the caller's address)."""

from __future__ import annotations

from typing import Any

from actions.base import Act, action
from actions.config import _run
from advisor import report
from core.roles import Role
from errors import Conflict, NotFound
from f2bconfig import operations as ops

SERVER_FIX_KEYS = ("loglevel", "dbpurgeage", "dbmaxmatches")  # what ops.update_server_settings takes


@action("advisor.fix", Role.admin, target="finding_id")
async def apply_fix(act: Act, finding_id: str) -> dict[str, Any]:
    _, found = await report.gather(act.deps, act.actor.source_ip)
    finding = next((f for f in found if f.id == finding_id), None)
    if finding is None:
        raise NotFound(f"no current finding {finding_id!r} (GET /api/v1/advisor lists them)",
                       code="finding_not_found", details={"id": finding_id})
    fix = finding.fix
    if fix is None:
        raise Conflict(f"finding {finding_id} has no automatic fix: {finding.detail}", code="no_fix",
                       details={"id": finding_id})
    act.details.update(fix=fix.as_json(), severity=finding.severity)
    if fix.file == "fail2ban.d/zz-bangui.local":
        changes = {k: (int(v) if k in ("dbpurgeage", "dbmaxmatches") else v) for k, v in fix.set.items()
                   if k in SERVER_FIX_KEYS}
        result = await _run(act, ops.update_server_settings, changes)
    else:
        result = await _run(act, ops.set_jail_options, "advisor.fix", fix.section, fix.set, fix.activate)
    return {"finding": finding_id, "fix": fix.as_json(), "change": result["change"], "diff": result.get("diff")}
