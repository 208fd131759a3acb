"""The audit log's hash chain: appends from many processes, tamper detection, retention checkpoints."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from store.audit import AuditLog
from tests.fixtures.clock import ManualClock


def _entry(n: int, **kw: object) -> dict[str, object]:
    return {"actor": "ann", "role": "admin", "via": "token", "source_ip": "192.0.2.1", "action": "jail.ban",
            "target": "sshd", "outcome": "ok", "status": 200, "details": {"n": n}, **kw}


def _log(tmp_path: Path, clock: ManualClock | None = None) -> AuditLog:
    return AuditLog(tmp_path, clock or ManualClock())


def test_a_fresh_chain_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    ids = [log.append(_entry(i)) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert log.verify() == {"ok": True, "checked": 5, "first_bad_id": None, "reason": None}


def test_an_edited_entry_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(5):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("UPDATE entries SET actor = 'mallory' WHERE id = 3")
    result = log.verify()
    assert not result["ok"] and result["first_bad_id"] == 3 and "altered" in result["reason"]


def test_a_deleted_entry_in_the_middle_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(5):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DELETE FROM entries WHERE id = 2")
    result = log.verify()
    assert not result["ok"] and result["first_bad_id"] == 2 and "removed" in result["reason"]


def test_deleting_the_oldest_entries_without_a_checkpoint_is_detected(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(5):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DELETE FROM entries WHERE id <= 2")
    result = log.verify()
    assert not result["ok"] and result["first_bad_id"] == 2


def test_retention_leaves_a_signed_checkpoint_and_the_rest_verifies(tmp_path: Path) -> None:
    clock = ManualClock()
    log = _log(tmp_path, clock)
    for i in range(3):
        log.append(_entry(i))
    clock.now += 10 * 86400
    for i in range(3):
        log.append(_entry(i))
    assert log.purge(5) == 3
    assert log.verify()["ok"] and log.verify()["checked"] == 3
    clock.now += 10 * 86400
    assert log.purge(5) == 3  # everything: the next append continues from the checkpoint
    assert log.append(_entry(9)) == 7
    assert log.verify()["ok"]
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("UPDATE checkpoints SET first_id = first_id + 1")
    assert not log.verify()["ok"]


def test_time_never_goes_backwards_along_the_chain(tmp_path: Path) -> None:
    clock = ManualClock()
    log = _log(tmp_path, clock)
    log.append(_entry(1))
    clock.now -= 60  # another process's clock, a little behind
    log.append(_entry(2))
    items, _ = log.page()
    assert items[0]["at"] >= items[1]["at"]


def test_filters_and_cursor_pages(tmp_path: Path) -> None:
    clock = ManualClock()
    log = _log(tmp_path, clock)
    for i in range(30):
        clock.now += 1
        log.append(_entry(i, action="jail.ban" if i % 3 else "user.create", actor=f"u{i % 2}",
                          outcome="denied" if i % 5 == 0 else "ok"))
    items, cursor = log.page(action="jail.", limit=7)
    assert len(items) == 7 and all(i["action"] == "jail.ban" for i in items) and cursor is not None
    rest, end = log.page(action="jail.", cursor=cursor, limit=100)
    assert end is None and len(items) + len(rest) == 20
    assert [i["id"] for i in items + rest] == sorted((i["id"] for i in items + rest), reverse=True)
    assert {i["actor"] for i in log.page(actor="u1", limit=100)[0]} == {"u1"}
    assert all(i["outcome"] == "denied" for i in log.page(outcome="denied", limit=100)[0])
    start = clock.now - 9.5
    assert len(log.page(since=start, limit=100)[0]) == 10
    assert len(log.page(since=start, until=start + 4, limit=100)[0]) == 4  # 21..24


def test_time_bounds_are_exact_at_the_edges(tmp_path: Path) -> None:
    """A time bound is a binary search over ids (`at` never decreases along them): equal times, bounds falling
    on an entry, before the first and after the last, and a log whose oldest entries retention removed."""
    clock = ManualClock()
    log = _log(tmp_path, clock)
    times = []
    for i in range(40):
        clock.now += 0 if i % 4 else 1  # four entries share each second
        times.append(clock.now)
        log.append(_entry(i))

    def ids(**bounds: float) -> list[int]:
        return sorted(i["id"] for i in log.page(limit=100, **bounds)[0])

    def expected(low: float = float("-inf"), high: float = float("inf"), first: int = 1) -> list[int]:
        return [n for n, at in enumerate(times, start=1) if low <= at <= high and n >= first]

    for since, until in [(times[0], times[-1]), (times[5], times[5]), (times[4] - 0.5, times[11]),
                         (times[0] - 100, times[0] - 1), (times[-1] + 1, times[-1] + 2), (times[8], times[7])]:
        assert ids(since=since) == expected(low=since)
        assert ids(until=until) == expected(high=until)
        assert ids(since=since, until=until) == expected(since, until)
    clock.now = times[12] + 30 * 86400  # retention drops the first 12 entries (their second is times[12] - 1)
    assert log.purge(30 + (1 - 0.5) / 86400) == 12  # cutoff half a second before times[12]
    assert log.verify()["ok"]
    assert ids(since=times[0]) == expected(first=13)
    assert ids(until=times[13]) == expected(high=times[13], first=13)


def test_an_older_log_drops_its_time_and_outcome_indexes_and_filters_by_the_partial_one(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(20):
        log.append(_entry(i, outcome="denied" if i % 7 == 0 else "ok"))
    log.close()
    with sqlite3.connect(tmp_path / "audit.db") as db:  # the indexes of logs made before issue 13
        db.execute("CREATE INDEX entries_at ON entries(at)")
        db.execute("CREATE INDEX entries_outcome ON entries(outcome, id)")
    log = _log(tmp_path)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert indexes == {"entries_actor", "entries_target", "entries_problems", "entries_of"}
    statements: list[str] = []
    conn = log._conn()
    conn.set_trace_callback(statements.append)
    items, _ = log.page(outcome="denied", limit=100)
    conn.set_trace_callback(None)
    assert [i["id"] for i in items] == [15, 8, 1]
    plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + statements[-1]))
    assert "entries_problems" in plan, plan
    assert len(log.page(outcome="ok", limit=100)[0]) == 17


def _append_many(path: str, tag: str, count: int) -> None:
    log = AuditLog(Path(path), lambda: 0.0)
    for i in range(count):
        log.append(_entry(i, actor=tag))
    log.close()


def test_concurrent_processes_lose_nothing_and_the_chain_verifies(tmp_path: Path) -> None:
    AuditLog(tmp_path, lambda: 0.0).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), f"p{i}", 100)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = _log(tmp_path)
    assert log.count() == 400
    for i in range(4):
        assert len(list(log.iter_all(actor=f"p{i}"))) == 100
    assert log.verify() == {"ok": True, "checked": 400, "first_bad_id": None, "reason": None}


def test_the_key_and_the_log_are_private(tmp_path: Path) -> None:
    _log(tmp_path).append(_entry(1))
    assert (tmp_path / "audit-key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "audit.db").stat().st_mode & 0o077 == 0


def _completed_chain(tmp_path: Path) -> AuditLog:
    log = _log(tmp_path)
    started = log.append(_entry(0, outcome="pending"), intent=("owner", None))
    log.append(_entry(1))
    log.append(dict(_entry(0, outcome="ok"), of=started))
    return log


def test_a_completion_is_chained_and_shown_on_its_entry(tmp_path: Path) -> None:
    log = _completed_chain(tmp_path)
    items, _ = log.page()
    assert [(i["id"], i["outcome"]) for i in items] == [(2, "ok"), (1, "ok")] and log.count() == 2
    assert log.intents() == [] and log.verify()["ok"] is True
    assert [i["id"] for i in log.page(outcome="ok")[0]] == [2, 1] and log.page(outcome="pending")[0] == []


def test_an_edited_completion_is_named(tmp_path: Path) -> None:
    log = _completed_chain(tmp_path)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("UPDATE entries SET outcome = 'failed' WHERE id = 3")
    result = log.verify()
    assert not result["ok"] and result["first_bad_id"] == 3 and "altered" in result["reason"]


def test_a_tail_cut_is_reported_and_its_ids_are_never_reused(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(10):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DELETE FROM entries WHERE id > 5")
    result = log.verify()
    assert not result["ok"] and result["first_bad_id"] == 6 and "truncated" in result["reason"]
    assert log.append(_entry(11)) == 11
    assert not log.verify()["ok"]


def test_a_wiped_log_is_reported(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(4):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("DELETE FROM entries")
    result = log.verify()
    assert not result["ok"] and result["checked"] == 0 and "truncated" in result["reason"]


def test_the_head_names_the_newest_entry(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert log.head()["last_id"] == 0
    log.append(_entry(0))
    head = log.head()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        assert head["hash"] == db.execute("SELECT hash FROM entries WHERE id = 1").fetchone()[0]
    assert head["last_id"] == 1


@pytest.mark.parametrize("cut", [
    ["DELETE FROM entries WHERE id > 5", "DELETE FROM head"],  # a tail cut that takes the head along
    ["DELETE FROM entries", "DELETE FROM head"],  # a wipe
    ["DELETE FROM entries WHERE id > 5", "DROP TABLE head"],
])
def test_a_removed_head_is_reported_and_never_made_again_from_the_rows(tmp_path: Path, cut: list[str]) -> None:
    log = _log(tmp_path)
    for i in range(10):
        log.append(_entry(i))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        for statement in cut:
            db.execute(statement)
    assert not log.verify()["ok"]
    log.close()
    again = _log(tmp_path)  # the next process (or `bangui audit verify`) opening the log
    result = again.verify()
    assert not result["ok"] and "head record was removed" in result["reason"], result
    again.append(_entry(11))
    assert not again.verify()["ok"]  # the loss stays in the chain after later appends
    assert any(e["action"] == "audit.head_lost" for e in again.iter_all())
