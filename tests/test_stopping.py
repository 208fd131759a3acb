"""stopping.py: an idle worker polls hypercorn's stop event once a second, not ten times (issue 20 item 6), and
never waits on the event itself (a worker killed while waiting would block the main process's set(): a server
whose worker crashed would never stop; tests/test_notifications_processes.py kills a worker of a real server)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading

from stopping import SHUTDOWN_POLL_S, _await_shutdown_event


def test_the_shutdown_trigger_returns_once_the_event_is_set_polling_once_a_second() -> None:
    event = multiprocessing.get_context("spawn").Event()
    polls: list[float] = []

    async def sleep(seconds: float) -> None:  # the sleep hypercorn passes to its trigger
        polls.append(seconds)
        await asyncio.sleep(0.01)

    async def main() -> None:
        waiter = asyncio.create_task(_await_shutdown_event(event, sleep))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        threading.Thread(target=event.set).start()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())
    assert polls and set(polls) == {SHUTDOWN_POLL_S} and SHUTDOWN_POLL_S >= 1.0
