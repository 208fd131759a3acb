"""The bare floor of a ban (issue 25 item 1), for comparison only: a bare ASGI app under hypercorn with its
DEFAULT configuration (one process, no bangui connection policy) that passes each request to fail2ban on one
plain asyncio Unix stream: `pickle.dumps(args) + TERMINATOR`, read until the terminator, `pickle.loads`. No
connection pool, no restricted unpickler, no timeouts, no authentication, Starlette, history or audit.
bench/floor.py keeps bangui's own fail2ban client and connection policy; this one keeps nothing, so
bangui / bare floor is everything bangui adds to what hypercorn and fail2ban cost anyway.

    python -m bench.barefloor --port PORT --socket SOCK

Same routes, bodies and answers as bench/floor.py (one client drives all of them). Not part of bangui.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from bench.common import comparison_args
from bench.floor import make_app  # the same ASGI app; here over a plain stream

TERMINATOR = b"<F2B_END_COMMAND>"  # fail2ban's, written out: nothing of bangui's f2b package is used


class Stream:
    """One fail2ban connection, one command at a time (a lock: the app may get concurrent requests)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, *args: str) -> Any:
        async with self.lock:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_unix_connection(self.path)
            assert self.reader is not None
            self.writer.write(pickle.dumps(list(args), pickle.HIGHEST_PROTOCOL) + TERMINATOR)
            reply = await self.reader.readuntil(TERMINATOR)
        code, result = pickle.loads(reply[:-len(TERMINATOR)])  # noqa: S301 - a bench against a private server
        if code != 0:
            raise RuntimeError(f"fail2ban {args}: {result!r}")
        return result


def main(argv: list[str] | None = None) -> int:
    args = comparison_args("barefloor", __doc__, argv)
    if args is None:
        return 0
    config = Config()  # hypercorn's defaults, nothing of bangui's transport policy
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    asyncio.run(serve(make_app(Stream(args.socket)), config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
