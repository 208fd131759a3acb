"""Issue 13's faster paths keep their guarantees: a large ban goes to fail2ban in chunks with history written per
chunk (every new ban recorded, none of the already banned ones), and a history write that finds SQLite's lock
taken waits in a worker thread, never on the event loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from actions import bans
from store.history import Archive
from store.inline import write
from tests.fixtures.app import Api


def test_a_large_ban_goes_in_chunks_and_every_new_ban_reaches_history(api: Api,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bans, "BULK_CHUNK", 4)  # 10 addresses: three chunks
    monkeypatch.setattr(bans, "INLINE_CHECKS", 3)  # and the checks in a worker thread
    ips = [f"192.0.2.{n}" for n in range(1, 11)]
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": [ips[2], ips[7]]}).status_code == 200
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": [*ips, ips[0]]})  # a duplicate too
    assert r.status_code == 200, r.text
    fresh = [ip for ip in ips if ip not in (ips[2], ips[7])]
    assert r.json() == {"banned": fresh, "already_banned": [ips[2], ips[7]]}
    current = {b["ip"] for b in api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"]}
    assert current == set(ips)
    events, _ = api.store.history.history(jail="sshd", limit=100)
    assert sorted(e["ip"] for e in events) == sorted(ips)  # the two earlier bans once, the rest once each
    entry = next(e for e in api.store.audit.iter_all() if e["action"] == "jail.ban" and e["details"]["count"] == 10)
    assert entry["outcome"] == "ok" and entry["details"]["banned"] == 8


def test_a_ban_of_a_few_thousand_goes_in_chunks_so_its_history_is_written_while_fail2ban_bans(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bans, "OVERLAP_FROM", 4)  # 10 addresses (under BULK_CHUNK): OVERLAP_CHUNKS chunks of 3
    ips = [f"192.0.2.{n}" for n in range(1, 11)]
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips})
    assert r.status_code == 200 and r.json()["banned"] == ips, r.text
    assert {b["ip"] for b in api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"]} == set(ips)
    rows = api.store.history._conn().execute("SELECT ip, since FROM events WHERE jail = 'sshd'").fetchall()
    assert sorted(ip for ip, _ in rows) == sorted(ips)
    assert len({since for _, since in rows}) == bans.OVERLAP_CHUNKS  # one span per chunk: four fail2ban calls


def test_a_refused_entry_in_a_large_ban_bans_nothing(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bans, "BULK_CHUNK", 2)
    monkeypatch.setattr(bans, "INLINE_CHECKS", 2)
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2", "127.0.0.1"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "refused_address"
    assert api.call("viewer", "GET", "/bans").json()["bans"] == []


@pytest.mark.anyio
async def test_a_write_that_finds_the_lock_taken_waits_in_a_thread_not_on_the_loop(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "history.sqlite3")
    holder = sqlite3.connect(archive.path, isolation_level=None)
    try:
        archive.record_unban("sshd", "192.0.2.9", "warm-up")  # written inline: the lock was free
        holder.execute("BEGIN IMMEDIATE")  # another process writing (the leader's sync, the CLI...)
        done = anyio.Event()
        ticks = 0

        async def record() -> None:
            await write(archive.nowait, archive.record_unban, "sshd", "192.0.2.1", "tester")
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(record)
            for _ in range(10):  # the loop keeps running while the write waits for the lock
                await anyio.sleep(0.02)
                ticks += 1
            assert not done.is_set()  # it waits (in a thread), it did not fail
            holder.execute("COMMIT")
            with anyio.fail_after(10):
                await done.wait()
        assert ticks == 10
        events, _ = archive.history(ip="192.0.2.1")
        assert [(e["event"], e["actor"]) for e in events] == [("unban", "tester")]
    finally:
        holder.close()
        archive.close()


def test_unbanning_many_is_one_call_one_audit_entry_and_an_unban_in_history_for_each_banned(api: Api) -> None:
    from core.actor import Actor
    from core.deps import Deps
    from core.roles import Role
    from f2b.client import Fail2Ban

    ips = [f"192.0.2.{n}" for n in range(1, 6)]
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips[:3]}).status_code == 200

    async def unban() -> dict[str, Any]:
        client = Fail2Ban(api.settings.fail2ban_socket, 5.0)
        try:
            actor = Actor("fleet:web2", Role.operator, "fleet", None, user="fleet:web2")
            return await bans.unban_many(Deps(api.settings, api.store, client), actor, "sshd", ips,
                                         origin="fleet", source_host="web2")
        finally:
            await client.aclose()

    assert anyio.run(unban) == {"unbanned": ips[:3], "not_banned": ips[3:], "count": 3}
    assert api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"] == []
    unbans, _ = api.store.history.history(event="unban", limit=100)
    assert sorted((e["ip"], e["origin"], e["source_host"]) for e in unbans) == [
        (ip, "fleet", "web2") for ip in ips[:3]]
    [entry] = [e for e in api.store.audit.iter_all() if e["action"] == "jail.unban_many"]
    assert (entry["outcome"], entry["details"]["count"], entry["details"]["unbanned"]) == ("ok", 5, 3)
