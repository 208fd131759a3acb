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
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("bangui.serve")


def ignore_sigterm() -> bool:
    """In a hypercorn worker (a spawned child), let SIGTERM pass without killing it, as a cue to look at the stop
    event now (`_await_shutdown_event`); False elsewhere."""
    if multiprocessing.parent_process() is None:
        return False
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, _wake_event().set)
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


SHUTDOWN_POLL_S = 15.0  # an idle worker's own look at the stop event, when no signal told it to look
WOKEN_POLL_S = 0.1  # after a wake-up signal: hypercorn's own pace, ...
WOKEN_FOR_S = 5.0  # ... for this long (the signal may come before the main process has set the event)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # what makes hypercorn's main process set it
_woken: dict[int, asyncio.Event] = {}  # per event loop (id): set by SIGTERM in a worker


def _wake_event() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    return _woken.setdefault(id(loop), asyncio.Event())


async def _await_shutdown_event(shutdown_event: Any, sleep: Callable[[float], Awaitable[Any]]) -> None:
    """hypercorn's worker shutdown trigger, woken by a signal instead of polling ten times a second (issue 20
    item 6).

    hypercorn 0.18's `check_multiprocess_shutdown_event` checks the main process's event every 0.1 s: ten wakeups
    a second in every idle worker (70-90 ms of CPU per minute; once a second still cost ~10 ms). Blocking in the
    event's own `wait()` would cost nothing while idle, but is unsafe: a multiprocessing Event waits on a shared
    Condition, and a waiter killed with SIGKILL leaves the Condition counting it, so the main process's `set()`
    then blocks for ever (it waits for every sleeper to wake) and the server never stops after a worker crash.
    So the worker looks when told: every way hypercorn's main process sets the event reaches the workers as a
    SIGTERM (a requested stop or reload: `StopForwarder` passes it on; a sibling's crash: hypercorn's own
    `terminate()`; systemd: the whole unit), which `ignore_sigterm`'s handler turns into a wake-up. Then it looks
    at hypercorn's pace for a few seconds (the signal may precede the `set()`), and otherwise every
    SHUTDOWN_POLL_S as a safety net. `is_set()` only takes the event's lock briefly."""
    loop = asyncio.get_running_loop()
    woken = _wake_event()
    while not shutdown_event.is_set():
        if woken.is_set():
            woken.clear()
            until = loop.time() + WOKEN_FOR_S
            while loop.time() < until and not shutdown_event.is_set():
                await sleep(WOKEN_POLL_S)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), SHUTDOWN_POLL_S)


class StopForwarder:
    """In the main process, around hypercorn's `run`: reads the signal wakeup fd (Python's C-level handler writes
    each signal's number there) in a thread, keeps what arrived (`received`: the CLI tells a requested stop from a
    crash by it) and passes each stop signal on to the workers as SIGTERM, so that idle workers look at the stop
    event now rather than at their next poll. The workers are started with SIGTERM ignored (inherited through
    spawn's exec) until their lifespan handles it, so a stop during their start cannot kill them; a worker
    hypercorn respawns later (max_requests) inherits hypercorn's handler as the default action instead."""

    def __init__(self) -> None:
        self.received = b""
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # set_wakeup_fd's requirement
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # hypercorn installs its own after
        # spawning the workers (which inherit the ignore)
        self._thread = threading.Thread(target=self._forward, name="bangui-stop-forwarder", daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        while chunk := os.read(self._read_fd, 512):
            self.received += chunk
            if set(chunk) & set(STOP_SIGNALS):
                wake_workers()

    def close(self) -> bytes:
        """Stop forwarding; the signal numbers received meanwhile."""
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._write_fd)  # EOF ends the thread's read
        self._thread.join(5.0)
        os.close(self._read_fd)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:  # hypercorn never got to install its handler
            signal.signal(signal.SIGTERM, self._previous_term)
        return self.received


def wake_workers() -> None:
    """SIGTERM to this process's multiprocessing children (hypercorn's workers; its resource tracker is not
    one). A snapshot of the registry: `active_children()` would reap children behind hypercorn's back."""
    for child in list(getattr(multiprocessing.process, "_children", ())):
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, signal.SIGTERM)


def poll_shutdown_slowly() -> None:
    """In a hypercorn worker, while its application loads: make the worker wait for the stop event as above.
    hypercorn's worker function loads the application and only then looks the trigger up in its module
    (asyncio/run.py: `partial(check_multiprocess_shutdown_event, ...)`), so replacing that name here takes
    effect for this worker; any other hypercorn layout keeps its own trigger."""
    if multiprocessing.parent_process() is None:
        return
    with contextlib.suppress(ImportError):
        from hypercorn.asyncio import run as hypercorn_run

        if hasattr(hypercorn_run, "check_multiprocess_shutdown_event"):
            hypercorn_run.check_multiprocess_shutdown_event = _await_shutdown_event
