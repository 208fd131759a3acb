"""stopping.py: an idle worker waits for hypercorn's stop event instead of polling it (issue 20 item 6)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading

from stopping import _await_shutdown_event


def test_the_shutdown_wait_returns_when_the_event_is_set_and_never_polls() -> None:
    event = multiprocessing.get_context("spawn").Event()
    polls: list[float] = []

    async def sleep(seconds: float) -> None:  # hypercorn passes its poll interval's sleep: never used
        polls.append(seconds)
        await asyncio.sleep(seconds)

    async def main() -> None:
        waiter = asyncio.create_task(_await_shutdown_event(event, sleep))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        threading.Thread(target=event.set).start()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())
    assert polls == []
