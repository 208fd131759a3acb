"""CrowdSec bouncer keys (admin): list, create (the key is shown once), delete. The keys work on the decisions
routes only (handlers/decisions.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from actions import bouncers as actions
from core.roles import Role
from handlers.api import Call, iso, route
from store.base import offload


class NewBouncer(msgspec.Struct, forbid_unknown_fields=True):
    name: str


def shown_bouncer(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record, created=iso(record["created"]), last_pull=iso(record["last_pull"]))


async def create_bouncer(call: Call) -> dict[str, Any]:
    body: NewBouncer = call.body
    key, record = await actions.create_bouncer(call.deps, call.actor, body.name)
    return dict(shown_bouncer(record), api_key=key)


async def list_bouncers(call: Call) -> dict[str, Any]:
    return {"bouncers": [shown_bouncer(r) for r in await offload(call.deps.store.bouncers.list)]}


async def delete_bouncer(call: Call) -> None:
    await actions.delete_bouncer(call.deps, call.actor, call.param("name"))


routes = [
    route("GET", "/bouncers", list_bouncers, Role.admin,
          "List CrowdSec bouncers: name, created, last pull time and address, user agent (no keys)."),
    route("POST", "/bouncers", create_bouncer, Role.admin,
          "Create a CrowdSec bouncer key for GET /v1/decisions/stream (shown once, as api_key).",
          body=NewBouncer, status=201, action=actions.create_bouncer),
    route("DELETE", "/bouncers/{name}", delete_bouncer, Role.admin,
          "Delete a bouncer key: refused at once by every worker.", status=204, action=actions.delete_bouncer),
]
