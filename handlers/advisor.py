"""The advisor (issue 24): findings about fail2ban's configuration on this host, and their fixes.

`GET /advisor` (viewer: findings without fixes; operator and admin: each with its `fix`);
`POST /advisor/fixes/{id}` (admin) applies one finding's fix through the configuration engine (actions/advisor.py).
"""

from __future__ import annotations

from typing import Any

from actions import advisor as actions
from advisor import report
from core.roles import Role
from handlers.api import Call, iso, route


async def get_advisor(call: Call) -> dict[str, Any]:
    with_fixes = call.actor.role is not None and call.actor.role >= Role.operator
    answer = await report.advise(call.deps, call.actor.source_ip, with_fixes)
    return answer | {"checked_at": iso(answer["checked_at"])}


async def apply_fix(call: Call) -> dict[str, Any]:
    return await actions.apply_fix(call.deps, call.actor, call.param("finding_id"))


routes = [
    route("GET", "/advisor", get_advisor, Role.viewer,
          "What in fail2ban's configuration does not fit this host (viewer: without fixes)."),
    route("POST", "/advisor/fixes/{finding_id:path}", apply_fix, Role.admin,
          "Apply a finding's fix through the configuration engine (validated, verified, revertible).",
          action=actions.apply_fix),
]
