"""First-run setup: creates the first admin with the one-time token from <data dir>/setup-token."""

from __future__ import annotations

import msgspec

from handlers.api import Call, route
from handlers.users import public
from store import setup as first_start
from store.base import offload


class SetupRequest(msgspec.Struct, forbid_unknown_fields=True):
    setup_token: str
    username: str
    password: str


async def get_setup(call: Call) -> dict[str, bool]:
    return {"complete": call.deps.store.users.any_exist()}


async def complete_setup(call: Call) -> dict[str, object]:
    body: SetupRequest = call.body
    user = await offload(first_start.complete, call.deps.store, body.setup_token, body.username,
                         body.password)
    return public(user)


routes = [
    route("GET", "/setup", get_setup, None, "Whether first-run setup is complete."),
    route("POST", "/setup", complete_setup, None, "Create the first admin (needs the setup token).",
          body=SetupRequest, status=201),
]
