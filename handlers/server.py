"""fail2ban server overview: version, jail count, currently/total banned and failed."""

from __future__ import annotations

import dataclasses

from core.roles import Role
from f2b.protocol import ServerTotals
from handlers.api import Call, route


@dataclasses.dataclass(frozen=True, slots=True)
class ServerOverview(ServerTotals):  # the totals' fields are declared once, in f2b/protocol.py
    """fail2ban's version and totals, and the socket bangui talks to."""

    socket: str


async def get_server(call: Call) -> ServerOverview:
    summary = await call.deps.fail2ban.server_summary()
    totals = {field.name: getattr(summary, field.name) for field in dataclasses.fields(ServerTotals)}
    return ServerOverview(**totals, socket=call.deps.settings.fail2ban_socket)


routes = [route("GET", "/server", get_server, Role.viewer, "fail2ban version and totals.",
                response=ServerOverview)]
