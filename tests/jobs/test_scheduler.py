"""The scheduler: what is due, jitter and backoff (pure, injected clock), and the behaviour of a
running Scheduler in-process: no overlap, persisted schedule, run-now, failures, timeouts, shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.deps import Deps
from jobs.definitions import Job, JobContext, load_jobs
from jobs.scheduler import MAX_BACKOFF, Scheduler, due_jobs, next_in, retry_in, seconds_to_next
from settings import ConfigError, Settings
from tests.fixtures.clock import ManualClock
from tests.jobs.candidate import make_deps

pytestmark = pytest.mark.anyio


async def nothing(ctx: JobContext) -> None:
    pass


A, B = Job("a", every=10.0, timeout=5, run=nothing), Job("b", every=60.0, timeout=5, run=nothing)


# Pure scheduling decisions (the clock is a number) -----------------------------------------------

def test_a_job_never_run_is_due_at_once() -> None:
    assert due_jobs([A, B], {}, set(), [], now=0.0) == [A, B]


def test_a_job_is_due_at_its_persisted_next_due_and_not_before() -> None:
    records = {"a": {"next_due": 100.0}, "b": {"next_due": 200.0}}
    assert due_jobs([A, B], records, set(), [], now=99.9) == []
    assert due_jobs([A, B], records, set(), [], now=100.0) == [A]


def test_a_running_job_is_never_started_again_even_when_requested() -> None:
    assert due_jobs([A], {"a": {"next_due": 0.0}}, {"a"}, ["a"], now=50.0) == []


def test_a_request_makes_a_job_due_before_its_time() -> None:
    assert due_jobs([A, B], {"a": {"next_due": 999.0}, "b": {"next_due": 999.0}}, {"b"}, [], 0.0) == [B]


def test_the_loop_sleeps_until_the_earliest_idle_job_but_at_most_the_poll_interval() -> None:
    records = {"a": {"next_due": 100.2}, "b": {"next_due": 100.05}}
    assert seconds_to_next([A, B], records, [], now=100.0, poll_s=0.25) == pytest.approx(0.05)
    assert seconds_to_next([A, B], records, ["b"], now=100.0, poll_s=0.25) == pytest.approx(0.2)
    assert seconds_to_next([A], {"a": {"next_due": 500.0}}, [], now=100.0, poll_s=0.25) == 0.25
    assert seconds_to_next([A], {"a": {"next_due": 50.0}}, [], now=100.0, poll_s=0.25) == 0.0


def test_jitter_only_ever_lengthens_the_interval() -> None:
    assert next_in(10.0, 0.1, lambda: 0.0) == 10.0
    assert next_in(10.0, 0.1, lambda: 0.999) == pytest.approx(10.999)


def test_failures_back_off_exponentially_up_to_a_cap() -> None:
    assert [retry_in(5.0, n) for n in (1, 2, 3, 4, 10)] == [5.0, 10.0, 20.0, 40.0, 5.0 * MAX_BACKOFF]


# The JOBS table ----------------------------------------------------------------------------------

def test_builtin_jobs_take_their_intervals_from_settings() -> None:
    settings = Settings.for_tests(snapshot_seconds=7.0)
    jobs = {job.name: job for job in load_jobs(settings)}
    assert {"snapshot", "cleanup"} <= set(jobs)
    assert jobs["snapshot"].interval_s(settings) == 7.0
    assert jobs["cleanup"].interval_s(settings) == 300.0


def test_jobs_module_adds_jobs() -> None:
    jobs = load_jobs(Settings.for_tests(jobs_module="tests.jobs.candidate:JOBS"))
    assert jobs[-1].name == "probe"


@pytest.mark.parametrize(("spec", "message"), [
    ("tests.jobs.candidate", "expected module:ATTRIBUTE"),
    ("tests.jobs.nonexistent:JOBS", "No module named"),
    ("tests.jobs.candidate:NOPE", "NOPE"),
    ("tests.jobs.candidate:PROBE_SECONDS", "must be a list"),
    ("tests.jobs.test_scheduler:DUPLICATE", "already exists"),
    ("tests.jobs.test_scheduler:BAD_NAME", "names are"),
])
def test_a_bad_jobs_module_fails_loudly_naming_the_variable(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_jobs(Settings.for_tests(jobs_module=spec))
    assert "BANGUI_JOBS_MODULE" in str(caught.value)


DUPLICATE = [Job("cleanup", every=1.0, timeout=1.0, run=nothing)]
BAD_NAME = [Job("Run Me", every=1.0, timeout=1.0, run=nothing)]


# A running Scheduler on a manual clock: time passes only when the scheduler sleeps -------------------

@pytest.fixture
def manual(tmp_path: Path, clock: ManualClock) -> Any:
    """Deps whose store runs on the manual clock."""
    deps = make_deps(tmp_path / "manual", clock=clock)
    yield deps
    deps.store.close()


async def run_virtually(deps: Deps, jobs: list[Job], clock: ManualClock, seconds: float) -> Scheduler:
    """Run a scheduler until `seconds` of manual time have passed: each of its sleeps advances the clock
    (and yields, so started jobs run). Wall time does not matter; the outcome is exact."""
    epoch = deps.store.leader.claim()["epoch"]
    end = clock.now + seconds

    async def sleep(delay: float) -> None:
        clock.now += max(delay, 0.001)
        await anyio.sleep(0.002)  # let job tasks and their thread hops run
        if clock.now >= end:
            scope.cancel()

    scheduler = Scheduler(deps, epoch, jobs, clock=clock, sleep=sleep, poll_s=0.25, grace_s=1.0)
    with anyio.CancelScope() as scope:
        await scheduler.run()
    return scheduler


def virtual_recording(log: list[float], fail: bool = False) -> Callable[[JobContext], Awaitable[None]]:
    async def job(ctx: JobContext) -> None:
        log.append(ctx.clock())
        if fail:
            raise RuntimeError("boom")
    return job


async def test_a_job_runs_exactly_once_per_interval(manual: Deps, clock: ManualClock) -> None:
    starts: list[float] = []
    job = Job("tick", every=10.0, timeout=5, run=virtual_recording(starts), jitter=0)
    await run_virtually(manual, [job], clock, 95.0)
    assert len(starts) == 10  # at 0, 10, ..., 90
    assert all(9.99 <= b - a <= 10.3 for a, b in zip(starts, starts[1:], strict=False)), starts


async def test_a_failing_job_backs_off_exponentially_on_the_clock(manual: Deps, clock: ManualClock) -> None:
    starts: list[float] = []
    job = Job("flaky", every=10.0, timeout=5, run=virtual_recording(starts, fail=True), jitter=0)
    await run_virtually(manual, [job], clock, 160.0)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # 1, 2, 4, 8 intervals (MAX_BACKOFF caps it at 8), counted from when the failure was seen: on a loaded machine
    # the failed run's end can be noticed a few virtual poll steps (0.25 s each) late, so allow 1.5 s of that.
    assert len(gaps) == 4 and all(0 <= gap - want <= 1.5 for gap, want in zip(gaps, [10, 20, 40, 80], strict=True)), starts
    record = manual.store.jobs.get("flaky")
    assert (record["last_status"], record["failures"]) == ("error", 5)


# A running Scheduler (real time, short intervals) ------------------------------------------------

@pytest.fixture
def deps(tmp_path: Path) -> Any:
    deps = make_deps(tmp_path / "data")
    yield deps
    deps.store.close()


async def run_for(deps: Deps, jobs: list[Job], seconds: float, **kw: Any) -> Scheduler:
    epoch = deps.store.leader.claim()["epoch"]
    scheduler = Scheduler(deps, epoch, jobs, poll_s=0.02, **kw)
    with anyio.move_on_after(seconds):
        await scheduler.run()
    return scheduler


def recording(log: list[tuple[str, float, float]], seconds: float = 0.0,
              fail: bool = False) -> Callable[[JobContext], Awaitable[None]]:
    async def job(ctx: JobContext) -> None:
        start = time.monotonic()
        await anyio.sleep(seconds)
        log.append((ctx.job.name, start, time.monotonic()))
        if fail:
            raise RuntimeError("boom")
    return job


async def test_jobs_run_on_their_interval_without_ever_overlapping(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("slow", every=0.05, timeout=5, run=recording(runs, seconds=0.12), jitter=0)
    await run_for(deps, [job], 0.6, grace_s=1.0)
    assert len(runs) >= 3
    for (_, _, end), (_, next_start, _) in zip(runs, runs[1:], strict=False):
        assert next_start >= end


async def test_the_schedule_persists_so_a_successor_does_not_rerun_at_once(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("hourly", every=3600.0, timeout=5, run=recording(runs))
    await run_for(deps, [job], 0.2)
    await run_for(deps, [job], 0.2)  # a new epoch, as after a takeover
    assert len(runs) == 1
    record = deps.store.jobs.get("hourly")
    assert record["runs"] == 1 and record["last_status"] == "ok"
    assert record["next_due"] >= record["last_started"] + 3600.0


async def test_a_run_now_request_runs_the_job_before_its_time(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("hourly", every=3600.0, timeout=5, run=recording(runs))
    await run_for(deps, [job], 0.1)
    deps.store.jobs.request("hourly", by="operator")
    await run_for(deps, [job], 0.3)
    assert len(runs) == 2
    assert deps.store.jobs.requested(["hourly"]) == set()


async def test_a_failing_job_is_recorded_without_escaping(deps: Deps, caplog: pytest.LogCaptureFixture) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("flaky", every=0.05, timeout=5, run=recording(runs, fail=True), jitter=0)
    with caplog.at_level(logging.ERROR, "bangui.jobs"):
        await run_for(deps, [job], 0.5)
    record = deps.store.jobs.get("flaky")
    assert (record["last_status"], record["last_error"]) == ("error", "RuntimeError: boom")
    assert record["failures"] == len(runs) >= 1
    assert "job flaky failed" in caplog.text


async def test_a_job_over_its_timeout_is_cancelled_and_recorded(deps: Deps) -> None:
    job = Job("stuck", every=60.0, timeout=0.1, run=recording([], seconds=10))
    await run_for(deps, [job], 0.4)
    record = deps.store.jobs.get("stuck")
    assert record["last_status"] == "timeout"
    assert "timeout of 0.1s" in record["last_error"]


async def test_shutdown_lets_a_running_job_finish_within_the_grace_period(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("short", every=60.0, timeout=5, run=recording(runs, seconds=0.3))
    started = time.monotonic()
    await run_for(deps, [job], 0.1, grace_s=10.0)
    assert time.monotonic() - started < 5.0  # the job's 0.3 s, not the grace period
    assert len(runs) == 1
    assert deps.store.jobs.get("short")["last_status"] == "ok"


async def test_shutdown_cancels_a_job_that_outlives_the_grace_period(deps: Deps) -> None:
    job = Job("long", every=60.0, timeout=30, run=recording([], seconds=10))
    started = time.monotonic()
    await run_for(deps, [job], 0.1, grace_s=0.2)
    assert time.monotonic() - started < 5.0  # far less than the job's 10 s: it was cancelled, not awaited
    assert deps.store.jobs.get("long")["last_status"] == "cancelled"


async def test_shutdown_cancels_an_endless_job_at_once_and_still_gives_the_others_their_grace(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    agent = Job("agent", every=60.0, timeout=float(10**9), run=recording([], seconds=60), endless=True)
    short = Job("short", every=60.0, timeout=5, run=recording(runs, seconds=0.5))
    started = time.monotonic()
    await run_for(deps, [agent, short], 0.1, grace_s=10.0)
    assert time.monotonic() - started < 5.0  # the short job's 0.5 s, not the grace period
    assert deps.store.jobs.get("agent")["last_status"] == "cancelled"
    assert deps.store.jobs.get("short")["last_status"] == "ok" and len(runs) == 1


async def test_a_scheduler_whose_epoch_was_taken_stops_without_running_more(deps: Deps) -> None:
    runs: list[tuple[str, float, float]] = []
    job = Job("j", every=0.05, timeout=5, run=recording(runs), jitter=0)
    epoch = deps.store.leader.claim()["epoch"]
    scheduler = Scheduler(deps, epoch, [job], poll_s=0.02)
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run)
        await anyio.sleep(0.2)
        deps.store.leader.claim()  # another process took over (split brain)
        for _ in range(100):
            if scheduler.lost:
                break
            await anyio.sleep(0.01)
        assert scheduler.lost
    count = len(runs)
    await anyio.sleep(0.15)
    assert len(runs) == count
    assert deps.store.jobs.get("j")["epoch"] == epoch  # the newer epoch's state was never touched


async def test_a_job_whose_dependency_is_down_logs_one_line_and_no_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """fail2ban stopped (its socket gone, as after SIGTERM): the real history sync fails at every run, and the log
    gets one clear line naming fail2ban, not a traceback per run (issue 20 item 14)."""
    from f2b.client import Fail2Ban
    from jobs.archive import history_sync

    deps = make_deps(tmp_path / "data")
    deps = Deps(deps.settings, deps.store, Fail2Ban(str(tmp_path / "stopped-fail2ban.sock"), timeout=1.0))
    try:
        with caplog.at_level(logging.INFO, "bangui.jobs"):
            await run_for(deps, [Job("history_sync", every=0.05, timeout=5, run=history_sync, jitter=0)], 0.6)
        record = deps.store.jobs.get("history_sync")
    finally:
        deps.store.close()
    assert record["last_status"] == "error" and record["failures"] >= 2  # it did fail again and again
    lines = [r for r in caplog.records if "history_sync" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None, [(r.getMessage(), r.exc_info) for r in lines]
    assert "fail2ban" in lines[0].getMessage() and "Traceback" not in caplog.text
