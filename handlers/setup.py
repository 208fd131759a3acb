"""First-run setup: creates the first admin with the one-time token from <data dir>/setup-token."""

from __future__ import annotations

from typing import Any

import msgspec

from actions.auth import complete_setup as complete
from handlers.api import Call, route
from handlers.users import shown_user
from store import setup as first_start
from store.base import offload


class SetupRequest(msgspec.Struct, forbid_unknown_fields=True):
    setup_token: str
    username: str
    password: str


async def get_setup(call: Call) -> dict[str, bool]:
    if call.deps.settings.fleet_url:  # a Redis read: never on the event loop (issue 21 item 5)
        return {"complete": await offload(first_start.is_complete, call.deps.store)}
    return {"complete": first_start.is_complete(call.deps.store)}  # one small inline read on this host


async def complete_setup(call: Call) -> dict[str, Any]:
    body: SetupRequest = call.body
    return shown_user(await complete(call.deps, call.actor, body.setup_token, body.username, body.password))


routes = [
    route("GET", "/setup", get_setup, None, "Whether first-run setup is complete."),
    route("POST", "/setup", complete_setup, None, "Create the first admin (needs the setup token).",
          body=SetupRequest, status=201, action=complete),
]
