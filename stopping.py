"""A graceful stop of `bangui serve --workers N` under hypercorn 0.18, also when N >= 2.

On SIGTERM/SIGINT hypercorn's main process sets an event that every worker polls; each then stops accepting,
finishes its requests (graceful_timeout) and runs the app's lifespan shutdown, where the leader finishes or
cancels its jobs within their grace period and withdraws its record. But as soon as ONE worker has exited, the
main process `terminate()`s the others, i.e. SIGTERMs workers that are still shutting down, and hypercorn gives
its workers no SIGTERM handler: the default action kills them. A follower exits within a fraction of a second,
so the leader was killed mid-job on nearly every stop (tests/test_election_processes.py,
`test_a_graceful_stop_of_several_workers_lets_the_leader_finish_its_job`). Two halves mend it:

- `ignore_sigterm()`, in each worker's lifespan: a worker outlives a SIGTERM. Every stop of the server already
  reaches it through hypercorn's event (SIGTERM/SIGINT to the main process, or a sibling's crash); under systemd's
  default KillMode=control-group, which SIGTERMs every process of the unit at once, the main process's share
  starts the graceful stop of all. A worker alone is stopped with SIGKILL (hypercorn then restarts nothing: it
  stops the server, which exits 1 for its supervisor). It is ignored, not passed on to the main process: the
  main process tells a crash from a requested stop by whether it received SIGTERM/SIGINT (cli._run_hypercorn),
  and its own `terminate()` of the workers would then read as a request.
- `join_workers()`, in the main process once hypercorn's `run` returns: it waits for the workers still shutting
  down (at most `limit` seconds, then kills them), so the server exits only when its workers are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("bangui.serve")


def ignore_sigterm() -> bool:
    """In a hypercorn worker (a spawned child), let SIGTERM pass without killing it; False elsewhere."""
    if multiprocessing.parent_process() is None:
        return False
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: None)
    return True


def join_workers(limit: float) -> None:
    """Wait for the main process's children (hypercorn's workers) to finish their shutdown, at most `limit`
    seconds; then kill those left, saying so."""
    deadline = time.monotonic() + limit
    for child in multiprocessing.active_children():
        child.join(max(0.0, deadline - time.monotonic()))
    late = multiprocessing.active_children()
    for child in late:
        child.kill()
        child.join()
    if late:
        log.warning("%d worker(s) still shutting down after %g s were killed", len(late), limit)


SHUTDOWN_POLL_S = 1.0  # hypercorn polls every 0.1 s


async def _await_shutdown_event(shutdown_event: Any, sleep: Callable[[float], Awaitable[Any]]) -> None:
    """hypercorn's worker shutdown trigger, polling once a second instead of ten times (issue 20 item 6).

    hypercorn 0.18's `check_multiprocess_shutdown_event` checks the main process's event every 0.1 s: ten
    wakeups a second in every idle worker (70-90 ms of CPU per minute). Blocking in the event's own `wait()`
    would cost nothing while idle, but is unsafe: a multiprocessing Event waits on a shared Condition, and a
    waiter killed with SIGKILL leaves the Condition counting it, so the main process's `set()` then blocks for ever
    (it waits for every sleeper to wake) and the server never stops after a worker crash. `is_set()` only takes
    the lock briefly; a stop is seen at most a second later."""
    while not shutdown_event.is_set():
        await sleep(SHUTDOWN_POLL_S)


def poll_shutdown_slowly() -> None:
    """In a hypercorn worker, while its application loads: make the worker poll the stop event once a second.
    hypercorn's worker function loads the application and only then looks the trigger up in its module
    (asyncio/run.py: `partial(check_multiprocess_shutdown_event, ...)`), so replacing that name here takes
    effect for this worker; any other hypercorn layout keeps its own trigger."""
    if multiprocessing.parent_process() is None:
        return
    with contextlib.suppress(ImportError):
        from hypercorn.asyncio import run as hypercorn_run

        if hasattr(hypercorn_run, "check_multiprocess_shutdown_event"):
            hypercorn_run.check_multiprocess_shutdown_event = _await_shutdown_event
