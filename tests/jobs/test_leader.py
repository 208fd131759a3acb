"""The election: in-process candidates (separate lock fds contend like processes), then real processes
that are SIGKILLed and SIGTERMed while an instrumented job runs (tests/jobs/candidate.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import jobs.leader
from core.deps import Deps
from jobs.leader import LOCK_NAME, LeaderLock, run_candidate
from settings import ConfigError
from store.base import open_cache
from store.leader import LeaderState
from tests.fixtures.waiting import wait_for_async
from tests.jobs.candidate import make_deps

REPO = Path(__file__).resolve().parents[2]


# In-process ---------------------------------------------------------------------------------------

@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make(data: Path) -> Iterator[Callable[..., Deps]]:
    made: list[Deps] = []

    def factory(**changes: Any) -> Deps:
        made.append(make_deps(data, heartbeat_seconds=0.05, **changes))
        return made[-1]

    yield factory
    for deps in made:
        deps.store.close()


@pytest.mark.anyio
async def test_one_candidate_leads_and_a_waiting_one_takes_over_when_it_stops(make: Callable[..., Deps]) -> None:
    first, second = make(), make()
    async with anyio.create_task_group() as tg:
        scope_first = anyio.CancelScope()

        async def lead_first() -> None:
            with scope_first:
                await run_candidate(first)

        tg.start_soon(lead_first)
        record = await wait_for_async(first.store.leader.current)
        assert record["epoch"] == 1 and record["pid"] == os.getpid()
        await tg.start(run_candidate, second)
        await anyio.sleep(0.1)
        assert first.store.leader.current()["epoch"] == 1  # the second one waits
        scope_first.cancel()
        record = await wait_for_async(lambda: (r := second.store.leader.current()) and r["epoch"] == 2 and r)
        # cancelled at once, i.e. still reconciling pending audit entries: its record is withdrawn all the same
        tg.cancel_scope.cancel()
    assert second.store.leader.current() is None  # withdrawn at shutdown


@pytest.mark.anyio
async def test_a_cancelled_waiter_never_keeps_the_lock(data: Path, make: Callable[..., Deps]) -> None:
    make()  # creates the data dir
    holder = await LeaderLock.acquire(data / LOCK_NAME)
    with anyio.move_on_after(0.1):
        await LeaderLock.acquire(data / LOCK_NAME)  # abandoned: its daemon thread stays blocked
    holder.release()
    with anyio.fail_after(1.0):  # the abandoned thread got the lock and dropped it at once
        again = await LeaderLock.acquire(data / LOCK_NAME)
    again.release()


FORK_CHECK = """
import fcntl, os, sys, anyio
from pathlib import Path
from jobs.leader import LeaderLock
lock = anyio.run(LeaderLock.acquire, Path(sys.argv[1]))
assert fcntl.fcntl(lock.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, "not close-on-exec"
pid = os.fork()
if pid == 0:  # a child forked without exec must not hold a copy of the lock fd
    try:
        os.fstat(lock.fd)
        os._exit(3)
    except OSError:
        os._exit(0)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_the_lock_fd_is_close_on_exec_and_closed_in_forked_children(tmp_path: Path) -> None:
    # In a fresh process: forking the multi-threaded test runner would be unsafe.
    done = subprocess.run([sys.executable, "-c", FORK_CHECK, str(tmp_path / LOCK_NAME)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.anyio
async def test_a_lock_file_replaced_under_a_waiter_is_not_trusted(data: Path, make: Callable[..., Deps]) -> None:
    make()
    path = data / LOCK_NAME
    holder = await LeaderLock.acquire(path)
    async with anyio.create_task_group() as tg:
        got: list[LeaderLock] = []

        async def wait() -> None:
            got.append(await LeaderLock.acquire(path))

        tg.start_soon(wait)
        await anyio.sleep(0.05)
        path.unlink()  # an operator "cleans up" the lock file: the waiter must lock the new one
        holder.release()
        await wait_for_async(lambda: got)
    assert os.fstat(got[0].fd).st_ino == path.stat().st_ino
    got[0].release()


@pytest.mark.anyio
async def test_a_leader_whose_epoch_is_taken_steps_down_and_stands_again(
        make: Callable[..., Deps], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.leader, "RETRY_S", 0.05)
    deps = make()
    async with anyio.create_task_group() as tg:
        await tg.start(run_candidate, deps)
        await wait_for_async(deps.store.leader.current)
        LeaderState(deps.store.cache, time.time).claim(pid=1, host="elsewhere")  # split brain: epoch 2
        record = await wait_for_async(lambda: (r := deps.store.leader.current()) and r["epoch"] == 3 and r)
        assert record["pid"] == os.getpid()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_bad_jobs_module_fails_the_start_not_later(make: Callable[..., Deps]) -> None:
    deps = make(jobs_module="nowhere:JOBS")
    with pytest.raises(ExceptionGroup) as caught:
        async with anyio.create_task_group() as tg:
            await tg.start(run_candidate, deps)
    assert caught.group_contains(ConfigError, match="BANGUI_JOBS_MODULE")


# Real processes ----------------------------------------------------------------------------------

INTERVAL, RUN_S = 0.4, 0.15


class Candidates:
    """Candidate processes on one data dir, and a reader of the published leader record."""

    def __init__(self, tmp: Path) -> None:
        self.data, self.log = tmp / "data", tmp / "probe.log"
        self.procs: dict[int, subprocess.Popen[bytes]] = {}  # running
        self.every: list[subprocess.Popen[bytes]] = []
        self.env = dict(os.environ, PYTHONPATH=str(REPO), PROBE_LOG=str(self.log),
                        PROBE_INTERVAL=str(INTERVAL), PROBE_SECONDS=str(RUN_S))
        self.cache: Any = None

    def spawn(self) -> int:
        proc = subprocess.Popen([sys.executable, "-m", "tests.jobs.candidate", str(self.data)], cwd=REPO,
                                env=self.env, stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", "candidate did not start"
        self.procs[proc.pid] = proc
        self.every.append(proc)
        if self.cache is None:
            self.cache = open_cache(self.data / "state")
        return proc.pid

    def leader(self) -> dict[str, Any] | None:
        return LeaderState(self.cache, time.time).current() if self.cache is not None else None

    def wait_leader(self, newer_than: int, timeout: float = 3.0) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            record = self.leader()
            if record and record["epoch"] > newer_than:
                return record, time.monotonic() - started
            time.sleep(0.002)
        raise AssertionError(f"no new leader within {timeout}s (last: {self.leader()})")

    def stop_all(self) -> None:
        for proc in self.every:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        if self.cache is not None:
            self.cache.close()


@pytest.fixture
def candidates(tmp_path: Path) -> Iterator[Candidates]:
    group = Candidates(tmp_path)
    yield group
    group.stop_all()


def test_sigkilled_leaders_are_replaced_at_once_and_jobs_never_overlap(candidates: Candidates,
                                                                      seeded_random: random.Random) -> None:
    for _ in range(3):
        candidates.spawn()
    leader, _ = candidates.wait_leader(0)
    epochs = [leader["epoch"]]
    for _ in range(5):
        time.sleep(seeded_random.uniform(0.3, 0.9))  # kill at varying points of the probe's cycle
        victim = leader["pid"]
        assert victim in candidates.procs
        candidates.procs.pop(victim).kill()
        leader, took = candidates.wait_leader(epochs[-1])
        assert leader["pid"] != victim and leader["pid"] in candidates.procs
        # the lock passes at once; a takeover that waited for a stale heartbeat would take seconds more
        assert took < 2.5, f"takeover took {took:.3f}s"
        epochs.append(leader["epoch"])
        candidates.spawn()  # restart the victim, as systemd or the container runtime would
    assert epochs == sorted(set(epochs))

    # Graceful handover: no timeout involved, only the probe's remaining run (< RUN_S) as grace.
    time.sleep(0.5)
    candidates.procs[leader["pid"]].send_signal(signal.SIGTERM)
    successor, took = candidates.wait_leader(epochs[-1])
    assert took < RUN_S + 0.5, f"graceful handover took {took:.3f}s"
    assert candidates.procs.pop(leader["pid"]).wait(timeout=5) == 0
    time.sleep(2 * INTERVAL)

    # Followers blocked in flock() exit promptly on SIGTERM (the waiting thread is a daemon).
    for proc in candidates.procs.values():
        proc.send_signal(signal.SIGTERM)
    for proc in candidates.procs.values():
        assert proc.wait(timeout=5) == 0

    runs = sorted(tuple(float(x) for x in line.split()[1:]) for line in candidates.log.read_text().splitlines())
    pids = {line.split()[0] for line in candidates.log.read_text().splitlines()}
    assert len(pids) >= 5  # every leader ran the probe
    for (start, end), (next_start, _) in zip(runs, runs[1:], strict=False):
        assert next_start >= end, "two probe runs overlapped"
        assert next_start - start >= INTERVAL - 0.02, "the probe ran twice within one interval"
