"""A synchronous facade over the async fail2ban client (f2b/client.py) for blocking code: the configuration
engine in a worker thread, start-up probes, scripts, tests and benchmarks. One client, one set of timeouts and
errors: each call here is `Fail2Ban.call` or `Fail2Ban.reply`."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from f2b.client import Fail2Ban


class BlockingFail2Ban:
    """A synchronous facade over `Fail2Ban` for blocking code: each call is the async client's own `call` or
    `reply` (its timeouts, pool, concurrency limit and errors).

    With ``token`` (`of`: made on the event loop that owns ``client``) a call from any other thread runs on that
    loop (anyio.from_thread), so a worker thread shares the process's one client and limiter. Without one (a
    script, a test's child process, a start-up probe: no event loop of bangui's) each call runs in an event loop
    of its own on a fresh client like ``client`` (same socket and timeout, nothing pooled across calls).
    """

    def __init__(self, client: Fail2Ban, token: anyio.lowlevel.EventLoopToken | None = None) -> None:
        self.client = client
        self.token = token

    @classmethod
    def of(cls, client: Fail2Ban) -> BlockingFail2Ban:
        """The facade of the running event loop's ``client`` (call this on that loop)."""
        return cls(client, anyio.lowlevel.current_token())

    @property
    def socket_path(self) -> str:
        return self.client.socket_path

    def call(self, *args: str) -> Any:
        return self._run(Fail2Ban.call, args)

    def reply(self, *args: str) -> tuple[int, Any]:
        return self._run(Fail2Ban.reply, args)

    def _run(self, method: Any, args: tuple[str, ...]) -> Any:
        if self.token is not None:
            return anyio.from_thread.run(method, self.client, *args, token=self.token)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread: the usual case
            return anyio.run(self._alone, method, args)
        # Called by blocking code inside a running loop (a private server's start-up in an async test): it blocks
        # that loop as any blocking call would, while its own loop runs in a thread beside it.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, self._alone, method, args).result()

    async def _alone(self, method: Any, args: tuple[str, ...]) -> Any:
        client = Fail2Ban(self.client.socket_path, self.client.timeout, max_idle=0)
        return await method(client, *args)


def sync_call(socket_path: str, *args: str, timeout: float = 2.0) -> tuple[int, Any]:
    """One blocking command outside any event loop of bangui's (start-up probes, tests, benchmarks): fail2ban's
    reply as it is (`Fail2Ban.reply`); `Fail2BanUnavailable` when fail2ban cannot be reached."""
    return BlockingFail2Ban(Fail2Ban(socket_path, timeout)).reply(*args)
