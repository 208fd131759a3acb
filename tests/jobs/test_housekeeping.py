"""Housekeeping (docs/architecture.md): retention deletes records, so each purge that removed something is audited
as its own kind, `housekeeping.<job>`, with the count; a run that removed nothing leaves no entry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.deps import Deps
from f2b.client import Fail2Ban
from jobs.archive import audit_retention, history_retention
from jobs.definitions import JobContext, load_jobs
from store import Store
from tests.fixtures.app import make_settings
from tests.fixtures.clock import ManualClock

DAY = 86400.0


@pytest.mark.anyio
async def test_retention_purges_are_audited_as_housekeeping(tmp_path: Path, clock: ManualClock) -> None:
    settings = make_settings(tmp_path / "data", str(tmp_path / "no.sock"), history_retention_days=30,
                             audit_retention_days=30)
    store = Store(settings, clock=clock)
    try:
        store.history.record_ban("sshd", ["192.0.2.1", "192.0.2.2"], actor="alice")
        store.audit.append({"actor": "alice", "via": "token", "action": "jail.ban", "outcome": "ok", "status": 200,
                            "details": {}})
        clock.now += 31 * DAY
        jobs = {j.name: j for j in load_jobs(settings)}
        deps = Deps(settings, store, Fail2Ban(str(tmp_path / "no.sock"), timeout=1.0))
        epoch = store.leader.claim()["epoch"]
        for body, name in ((history_retention, "history_retention"), (audit_retention, "audit_retention")):
            await body(JobContext(deps, epoch, jobs[name], time.time))
            await body(JobContext(deps, epoch, jobs[name], time.time))  # nothing left: no second entry
        entries: list[dict[str, Any]] = store.audit.page(action="housekeeping.")[0]
        assert {e["action"]: e["details"]["purged"] for e in entries} == {
            "housekeeping.history_retention": 2, "housekeeping.audit_retention": 1}
        assert [(e["actor"], e["via"], e["outcome"]) for e in entries] == [
            ("audit_retention", "job", "ok"), ("history_retention", "job", "ok")]
        assert store.audit.verify()["ok"]
    finally:
        store.close()
