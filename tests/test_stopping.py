"""stopping.py: an idle worker looks at hypercorn's stop event when a signal tells it to, and otherwise rarely
(issue 20 item 6), and never waits on the event itself (a worker killed while waiting would block the main
process's set(): a server whose worker crashed would never stop; tests/test_notifications_processes.py kills a
worker of a real server)."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import threading
import time
from typing import Any

import pytest

import stopping
from stopping import SHUTDOWN_POLL_S, WOKEN_POLL_S, _await_shutdown_event, _wake_event


def run_trigger(event: Any, after_start: Any) -> list[float]:
    polls: list[float] = []

    async def sleep(seconds: float) -> None:  # the sleep hypercorn passes to its trigger
        polls.append(seconds)
        await asyncio.sleep(0.01)

    async def main() -> None:
        waiter = asyncio.create_task(_await_shutdown_event(event, sleep))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        after_start()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())
    return polls


def test_a_wake_up_before_the_event_is_set_makes_the_worker_look_at_hypercorns_pace() -> None:
    event = multiprocessing.get_context("spawn").Event()

    def signal_then_set() -> None:
        _wake_event().set()  # what the worker's SIGTERM handler does (ignore_sigterm)
        threading.Timer(0.2, event.set).start()  # the main process sets the event a moment after the signal

    polls = run_trigger(event, signal_then_set)
    assert polls and set(polls) == {WOKEN_POLL_S}


def test_without_a_signal_the_worker_looks_only_every_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SHUTDOWN_POLL_S >= 10  # an idle worker wakes for this a few times a minute at most
    monkeypatch.setattr(stopping, "SHUTDOWN_POLL_S", 0.2)
    event = multiprocessing.get_context("spawn").Event()
    started = time.monotonic()
    polls = run_trigger(event, lambda: threading.Thread(target=event.set).start())
    assert polls == [] and time.monotonic() - started < 4  # no sleep loop: the safety net's timed wait saw it


@pytest.mark.processes
def test_a_stop_sent_to_the_main_process_alone_reaches_idle_workers_at_once(bangui_server: Any) -> None:
    """SIGTERM to hypercorn's main process only (a `kill <pid>`, not systemd's whole unit): the forwarder passes
    it on, so the idle workers stop long before their SHUTDOWN_POLL_S safety net would have seen the event."""
    server = bangui_server(workers=2, env={"BANGUI_ADMIN_PASSWORD": "stop test password"})
    assert len(server.worker_pids()) == 2
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=SHUTDOWN_POLL_S * 2) == 0, server.output()
    assert time.monotonic() - started < SHUTDOWN_POLL_S, server.output()
    assert "killed" not in server.output()  # join_workers had nothing to kill


def test_the_stop_forwarder_keeps_the_signals_it_saw_and_restores_the_wakeup_fd() -> None:
    previous = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous)
    handled: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda *_: handled.append(1))
    try:
        forwarder = stopping.StopForwarder()
        signal.raise_signal(signal.SIGUSR1)
        assert forwarder.close() == bytes([signal.SIGUSR1]) and handled == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert signal.set_wakeup_fd(previous) == previous
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN
