"""The least any app served by hypercorn can do for a ban, for comparison only (issue 13): the ASGI app below,
under hypercorn exactly as `bangui serve` runs it (asyncio worker, bangui's connection policy), forwards each
request to fail2ban as one command on a kept connection (bangui's own `f2b.client.Fail2Ban`) and answers. No
authentication, no Starlette, no history, no audit: whatever bangui does on top costs more than this.

    python -m bench.floor --port PORT --socket SOCK

Routes (the same paths and bodies as bangui's and bench/peer.py's, so one client drives all three):
  POST   /api/v1/jails/{jail}/bans {"ips": [ip, ...]}  -> `set <jail> banip ip...`  -> {"banned": <count>}
  DELETE /api/v1/jails/{jail}/bans/{ip}                -> `set <jail> unbanip ip`   -> {"unbanned": ip}
Not part of bangui, never installed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from bench.common import comparison_args
from f2b.client import Fail2Ban
from handlers import transport


def make_app(fail2ban: Any) -> Any:
    """`fail2ban`: anything with bangui's client's `await call(*args)` (also bench/barefloor.py's plain stream)."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        parts = scope["path"].split("/")  # ["", "api", "v1", "jails", jail, "bans", ip?]
        jail = parts[4]
        if scope["method"] == "POST":
            result: Any = {"banned": await fail2ban.call("set", jail, "banip", *json.loads(body)["ips"])}
        else:
            await fail2ban.call("set", jail, "unbanip", parts[6])
            result = {"unbanned": parts[6]}
        data = json.dumps(result).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


def config(port: int) -> Config:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    transport.configure(config)  # bangui's keep-alive and header policy, as `bangui serve` sets it
    return config


def main(argv: list[str] | None = None) -> int:
    args = comparison_args("floor", __doc__, argv)
    if args is None:
        return 0
    asyncio.run(serve(make_app(Fail2Ban(args.socket)), config(args.port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
