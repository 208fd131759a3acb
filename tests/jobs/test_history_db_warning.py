"""fail2ban's database unreadable (not mounted into the container): one warning naming the mount, a line per
change of state after that, the runs recorded as failed without a traceback, and health showing it."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from jobs.definitions import Job, JobContext, load_jobs
from jobs.scheduler import Scheduler
from tests.fixtures.app import make_settings, seed_users
from tests.fixtures.f2b_db import F2B_SCHEMA
from tests.jobs.candidate import make_deps

pytestmark = pytest.mark.anyio
MOUNT_HINT = "mount fail2ban's database directory read-only"


def sync_job() -> Job:
    job = next(j for j in load_jobs(make_settings(Path("/nonexistent"), "/nonexistent")) if j.name == "history_sync")
    return Job(job.name, every=0.02, timeout=10.0, run=job.run, jitter=0)


async def run_for(deps: Any, seconds: float) -> None:
    epoch = deps.store.leader.claim()["epoch"]
    scheduler = Scheduler(deps, epoch, [sync_job()], poll_s=0.01)
    with anyio.move_on_after(seconds):
        await scheduler.run()


def create_f2b_db(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(F2B_SCHEMA)
        db.execute("INSERT INTO jails VALUES ('sshd', 1)")
        db.execute("INSERT INTO bans VALUES ('sshd', '192.0.2.1', ?, 600, 1, NULL)", (int(time.time()),))
    db.close()


def history_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("bangui.jobs") and r.levelno >= logging.WARNING]


async def test_unreadable_db_warns_once_then_on_each_change_never_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "f2b" / "fail2ban.sqlite3"
    deps = make_deps(tmp_path / "data", fail2ban_db=str(db))
    try:
        with caplog.at_level(logging.INFO, "bangui"):
            await run_for(deps, 0.4)  # missing: many failed runs (backoff 0.02, 0.04, 0.08 ...)
            record = deps.store.jobs.get("history_sync")
            assert record["runs"] >= 3 and record["last_status"] == "error"
            assert "cannot be read" in record["last_error"]
            warnings = history_warnings(caplog)
            assert len(warnings) == 1, [w.getMessage() for w in warnings]
            assert MOUNT_HINT in warnings[0].getMessage() and str(db) in warnings[0].getMessage()
            assert "-v /var/lib/fail2ban:/var/lib/fail2ban:ro" in warnings[0].getMessage()

            await run_for(deps, 0.2)  # a new leader (new epoch): still the same state, so no new warning
            assert len(history_warnings(caplog)) == 1

            db.parent.mkdir()
            create_f2b_db(db)
            deps.store.jobs.request("history_sync", by="test")
            await run_for(deps, 0.3)
            assert deps.store.jobs.get("history_sync")["last_status"] == "ok"
            assert [w.getMessage() for w in history_warnings(caplog)][1:] == [
                f"history sync: fail2ban's database {db} is readable again"]

            db.write_bytes(b"not a database" * 100)  # a different failure: one more warning
            deps.store.jobs.request("history_sync", by="test")
            await run_for(deps, 0.3)
            assert len(history_warnings(caplog)) == 3
            assert "not a database" in history_warnings(caplog)[2].getMessage()
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    finally:
        deps.store.close()


async def test_the_same_failure_again_logs_one_line_not_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(ctx: JobContext) -> None:
        raise ValueError("always the same")

    deps = make_deps(tmp_path / "data")
    try:
        epoch = deps.store.leader.claim()["epoch"]
        scheduler = Scheduler(deps, epoch, [Job("broken", every=0.02, timeout=5, run=broken, jitter=0)],
                              poll_s=0.01)
        with caplog.at_level(logging.ERROR, "bangui.jobs"), anyio.move_on_after(0.5):
            await scheduler.run()
        failed = [r for r in caplog.records if r.name == "bangui.jobs"]
        assert len(failed) >= 3
        assert [bool(r.exc_info) for r in failed] == [True] + [False] * (len(failed) - 1)
        assert failed[1].getMessage() == "job broken failed again: ValueError: always the same"
    finally:
        deps.store.close()


def test_health_shows_the_history_sync_failing(tmp_path: Path, fail2ban: Any) -> None:
    from starlette.testclient import TestClient

    from app import create_app
    from store import Store

    settings = make_settings(tmp_path / "data", str(fail2ban.socket), fail2ban_db=str(tmp_path / "missing.sqlite3"),
                             history_sync_seconds=1.0, leader_candidate=True,
                             fail2ban_config_dir=str(fail2ban.conf_dir))
    store = Store(settings)
    token = seed_users(store)["viewer"]
    try:
        with TestClient(create_app(settings)) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                body = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"}).json()
                if body["history_sync"]["status"] == "failing":
                    break
                time.sleep(0.1)
            assert body["history_sync"]["status"] == "failing", body
            assert "missing.sqlite3 cannot be read" in body["history_sync"]["error"]
    finally:
        store.close()
