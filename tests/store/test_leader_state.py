"""LeaderState and JobState: epochs, publishing, fencing, and the persisted job schedule."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from store.base import open_cache
from store.jobstate import JobState
from store.leader import CURRENT_KEY, EPOCH_KEY, LeaderState, NotLeader
from tests.fixtures.clock import ManualClock as Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000.0)  # round figures: the expected records below read at a glance


@pytest.fixture
def cache(tmp_path: Path):  # type: ignore[no-untyped-def]
    cache = open_cache(tmp_path / "state")
    yield cache
    cache.close()


@pytest.fixture
def leader(cache, clock: Clock) -> LeaderState:  # type: ignore[no-untyped-def]
    return LeaderState(cache, clock)


@pytest.fixture
def jobs(cache, clock: Clock) -> JobState:  # type: ignore[no-untyped-def]
    return JobState(cache, clock)


def test_first_claim_takes_epoch_one_and_publishes_the_leader(leader: LeaderState) -> None:
    record = leader.claim(pid=42, host="h")
    assert record == {"pid": 42, "host": "h", "epoch": 1, "since": 1_000.0, "heartbeat": 1_000.0}
    assert leader.current() == record


def test_epochs_strictly_increase_and_persist_across_reopening(tmp_path: Path, clock: Clock) -> None:
    first = open_cache(tmp_path / "s")
    assert [LeaderState(first, clock).claim()["epoch"] for _ in range(3)] == [1, 2, 3]
    first.close()
    again = open_cache(tmp_path / "s")
    assert LeaderState(again, clock).claim()["epoch"] == 4
    again.close()


def test_concurrent_claims_never_share_an_epoch(tmp_path: Path, clock: Clock) -> None:
    epochs: list[int] = []

    def claim_many() -> None:
        cache = open_cache(tmp_path / "s")  # one connection per thread, like separate processes
        epochs.extend(LeaderState(cache, clock).claim()["epoch"] for _ in range(20))
        cache.close()

    threads = [threading.Thread(target=claim_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(epochs) == list(range(1, 81))


def test_heartbeat_refreshes_only_the_current_epoch(leader: LeaderState, clock: Clock) -> None:
    old = leader.claim(pid=1, host="h")["epoch"]
    clock.now += 5
    leader.heartbeat(old)
    assert leader.current()["heartbeat"] == 1_005.0  # type: ignore[index]
    assert leader.heartbeat_age(leader.current()) == 0.0  # type: ignore[arg-type]
    new = leader.claim(pid=2, host="h")["epoch"]
    clock.now += 5
    with pytest.raises(NotLeader):
        leader.heartbeat(old)
    assert leader.current()["epoch"] == new  # type: ignore[index]
    assert leader.current()["heartbeat"] == 1_005.0  # type: ignore[index]


def test_heartbeat_age_counts_from_the_last_beat(leader: LeaderState, clock: Clock) -> None:
    record = leader.claim()
    clock.now += 17.5
    assert leader.heartbeat_age(record) == 17.5
    clock.now -= 100  # a clock stepping back never gives a negative age
    assert leader.heartbeat_age(record) == 0.0


def test_is_current_fences_a_replaced_leader(leader: LeaderState) -> None:
    old = leader.claim()["epoch"]
    assert leader.is_current(old)
    leader.claim()
    assert not leader.is_current(old)


def test_run_fenced_writes_only_for_the_current_epoch(leader: LeaderState, cache) -> None:  # type: ignore[no-untyped-def]
    old = leader.claim()["epoch"]
    assert leader.run_fenced(old, cache.set, "k", 1)
    new = leader.claim()["epoch"]
    with pytest.raises(NotLeader):
        leader.run_fenced(old, cache.set, "k", 2)
    assert cache.get("k") == 1
    leader.run_fenced(new, cache.set, "k", 3)
    assert cache.get("k") == 3


def test_release_withdraws_only_our_own_record(leader: LeaderState, cache) -> None:  # type: ignore[no-untyped-def]
    old = leader.claim()["epoch"]
    new = leader.claim()["epoch"]
    leader.release(old)
    assert leader.current()["epoch"] == new  # type: ignore[index]
    leader.release(new)
    assert leader.current() is None
    assert cache.get(EPOCH_KEY) == new  # the counter stays
    assert cache.get(CURRENT_KEY) is None


def test_start_records_the_run_before_it_happens(leader: LeaderState, jobs: JobState) -> None:
    epoch = leader.claim()["epoch"]
    record = jobs.start("snapshot", epoch, next_in=5.0)
    assert record == jobs.get("snapshot")
    assert record is not None
    assert (record["last_started"], record["last_status"], record["runs"], record["next_due"]) == \
        (1_000.0, "running", 1, 1_005.0)


def test_finish_records_outcome_and_counts_runs(leader: LeaderState, jobs: JobState, clock: Clock) -> None:
    epoch = leader.claim()["epoch"]
    jobs.start("cleanup", epoch, 300)
    clock.now += 2
    assert jobs.finish("cleanup", epoch, "error", "boom", failures=1) is not None
    clock.now += 300
    jobs.start("cleanup", epoch, 300)
    record = jobs.get("cleanup")
    assert record is not None
    assert (record["runs"], record["last_status"], record["last_error"], record["failures"]) == \
        (2, "running", None, 1)


def test_failure_backoff_postpones_but_never_advances_next_due(leader: LeaderState, jobs: JobState) -> None:
    epoch = leader.claim()["epoch"]
    jobs.start("j", epoch, 10)
    assert jobs.finish("j", epoch, "error", "x", failures=3, retry_in=40)["next_due"] == 1_040.0  # type: ignore[index]
    jobs.start("j", epoch, 10)
    assert jobs.finish("j", epoch, "error", "x", failures=1, retry_in=1)["next_due"] == 1_010.0  # type: ignore[index]


def test_stale_epoch_can_neither_start_nor_finish(leader: LeaderState, jobs: JobState) -> None:
    old = leader.claim()["epoch"]
    jobs.start("j", old, 10)
    leader.claim()
    with pytest.raises(NotLeader):
        jobs.start("j", old, 10)
    with pytest.raises(NotLeader):
        jobs.finish("j", old, "ok")
    assert jobs.get("j")["runs"] == 1  # type: ignore[index]
    assert jobs.get("j")["last_status"] == "running"  # type: ignore[index]


def test_unknown_status_is_refused(leader: LeaderState, jobs: JobState) -> None:
    with pytest.raises(ValueError):
        jobs.finish("j", leader.claim()["epoch"], "fine")


def test_run_now_request_is_pending_until_the_leader_starts_the_job(leader: LeaderState,
                                                                     jobs: JobState) -> None:
    epoch = leader.claim()["epoch"]
    jobs.request("cleanup", by="operator")
    assert jobs.requested(["cleanup", "snapshot"]) == {"cleanup"}
    jobs.start("cleanup", epoch, 300)
    assert jobs.requested(["cleanup", "snapshot"]) == set()


def test_a_successor_marks_runs_left_running_as_interrupted(leader: LeaderState, jobs: JobState) -> None:
    old = leader.claim()["epoch"]
    jobs.start("a", old, 10)
    jobs.start("b", old, 10)
    jobs.finish("b", old, "ok")
    new = leader.claim()["epoch"]
    assert jobs.mark_interrupted(["a", "b", "never"], new) == ["a"]
    record = jobs.get("a")
    assert record is not None
    assert record["last_status"] == "interrupted"
    assert record["next_due"] == 1_010.0  # kept: no immediate re-run after a takeover
    with pytest.raises(NotLeader):
        jobs.mark_interrupted(["a"], old)
