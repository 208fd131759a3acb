"""store.fail2ban_copy: copying fail2ban's bans into the archive, against hand-built fail2ban v4 databases and
once against a real private fail2ban-server."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from store.fail2ban_copy import SyncError, sync_once
from store.history import Archive
from store.leader import NotLeader
from tests.fixtures.f2b_db import F2B_SCHEMA

NOW = 1_700_000_000



class Fail2BanDb:
    """A fail2ban-schema database file we write the way fail2ban does (bans + bips in one transaction)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.executescript(F2B_SCHEMA)

    def ban(self, jail: str, ip: str, at: int, bantime: int = 600, data: object = "default",
            current: bool = True) -> None:
        if data == "default":
            data = json.dumps({"matches": [f"{at} sshd[1]: Failed password for root from {ip}"], "failures": 3})
        self.conn.execute("BEGIN")
        self.conn.execute("INSERT INTO bans VALUES (?, ?, ?, ?, 1, ?)", (jail, ip, at, bantime, data))
        if current:
            self.conn.execute("INSERT OR REPLACE INTO bips VALUES (?, ?, ?, ?, 1, ?)", (ip, jail, at, bantime, data))
        self.conn.execute("COMMIT")

    def unban(self, jail: str, ip: str) -> None:  # fail2ban deletes its history of the ban
        self.conn.execute("DELETE FROM bans WHERE jail = ? AND ip = ?", (jail, ip))
        self.conn.execute("DELETE FROM bips WHERE jail = ? AND ip = ?", (jail, ip))

    def purge(self, before: int) -> None:  # dbpurgeage: history goes, current bans stay in bips
        self.conn.execute("DELETE FROM bans WHERE timeofban < ?", (before,))


@pytest.fixture
def f2b(tmp_path: Path) -> Fail2BanDb:
    return Fail2BanDb(tmp_path / "fail2ban.sqlite3")


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive.in_dir(tmp_path / "data", clock=lambda: NOW + 10.0)


def events(archive: Archive) -> list[tuple]:
    items, _ = archive.history(limit=1000)
    return sorted((i["jail"], i["ip"], i["at"], i["event"], i["origin"]) for i in items)


def test_the_first_run_backfills_everything_with_matches(f2b: Fail2BanDb, archive: Archive) -> None:
    for n in range(30):
        f2b.ban(("sshd", "nginx", "recidive")[n % 3], f"192.0.2.{n}", NOW - 1000 + n)
    result = sync_once(archive, str(f2b.path))
    assert (result.status, result.inserted) == ("ok", 30)
    [item] = archive.history(ip="192.0.2.7")[0]
    assert item["matches"] == [f"{NOW - 993} sshd[1]: Failed password for root from 192.0.2.7"]
    assert (item["failures"], item["bantime"], item["origin"], item["jail"]) == (3, 600, "auto", "nginx")


def test_rerunning_is_idempotent(f2b: Fail2BanDb, archive: Archive) -> None:
    for n in range(10):
        f2b.ban("sshd", f"192.0.2.{n}", NOW + n)
    sync_once(archive, str(f2b.path))
    again = sync_once(archive, str(f2b.path))
    assert (again.status, again.inserted, again.merged) == ("ok", 0, 0)
    assert len(events(archive)) == 10


def test_new_rows_are_picked_up_including_ones_in_the_marks_second(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW)
    sync_once(archive, str(f2b.path))
    f2b.ban("sshd", "192.0.2.2", NOW)  # same second as the mark
    f2b.ban("sshd", "192.0.2.3", NOW - 900)  # written late: timeofban is the last failure's time
    f2b.ban("nginx", "192.0.2.4", NOW + 5)
    result = sync_once(archive, str(f2b.path))
    assert result.inserted == 3
    assert len(events(archive)) == 4


def test_small_batches_skip_nothing_when_many_rows_share_a_second(f2b: Fail2BanDb, archive: Archive) -> None:
    for n in range(25):  # a manual banip of 25 addresses: one timeofban
        f2b.ban("sshd", f"192.0.2.{n}", NOW + n // 10)
    result = sync_once(archive, str(f2b.path), batch=3)
    assert result.inserted == 25


def test_rows_purged_from_bans_but_still_current_come_from_bips(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW - 5 * 86400, bantime=-1)
    f2b.ban("sshd", "192.0.2.2", NOW - 5 * 86400, current=False)
    f2b.purge(NOW - 86400)
    sync_once(archive, str(f2b.path))
    assert [e[1] for e in events(archive)] == ["192.0.2.1"]


def test_null_and_malformed_data_are_tolerated(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW, data="null")
    f2b.ban("sshd", "192.0.2.2", NOW, data=None)
    f2b.ban("sshd", "192.0.2.3", NOW, data="{broken")
    f2b.ban("sshd", "192.0.2.4", NOW, data=json.dumps({"matches": ["a", ["b", "c"]], "failures": True}))
    f2b.ban("sshd", "192.0.2.5", NOW, data=b"\x00\x01")
    f2b.conn.execute("INSERT INTO bans VALUES ('sshd', NULL, ?, 600, 1, NULL)", (NOW,))  # no ip: skipped
    result = sync_once(archive, str(f2b.path))
    assert (result.status, result.inserted) == ("ok", 5)
    details = {i["ip"]: (i["failures"], i["matches"]) for i in archive.history()[0]}
    assert details["192.0.2.4"] == (None, ["a", "bc"])
    assert all(details[f"192.0.2.{n}"] == (None, []) for n in (1, 2, 3, 5))


def test_a_locked_fail2ban_db_is_retried_then_left_for_the_next_run(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW)
    sync_once(archive, str(f2b.path))
    f2b.ban("sshd", "192.0.2.2", NOW + 1)
    marks_before = archive.sync_marks(next(iter(_sources(archive))))
    f2b.conn.execute("BEGIN EXCLUSIVE")  # fail2ban in the middle of a write (rollback journal)
    waits: list[float] = []
    try:
        result = sync_once(archive, str(f2b.path), sleep=waits.append, retries=3)
    finally:
        f2b.conn.execute("COMMIT")
    assert result.status == "locked" and result.inserted == 0
    assert waits == [0.05, 0.1, 0.2]
    assert archive.sync_marks(next(iter(_sources(archive)))) == marks_before
    assert sync_once(archive, str(f2b.path)).inserted == 1


def test_fail2ban_can_write_while_the_archive_commits_a_batch(f2b: Fail2BanDb, archive: Archive) -> None:
    for n in range(10):
        f2b.ban("sshd", f"192.0.2.{n}", NOW + n)
    writes = []

    def still_leader() -> bool:  # asked inside the archive's write transaction, just before COMMIT
        writer = sqlite3.connect(f2b.path, timeout=0, isolation_level=None)
        writer.execute("INSERT INTO bans VALUES ('sshd', '198.51.100.1', ?, 600, 1, NULL)", (NOW + 100,))
        writer.close()
        writes.append(True)
        return True

    result = sync_once(archive, str(f2b.path), still_leader=still_leader, batch=4)
    assert result.status == "ok" and len(writes) >= 3  # fail2ban was never locked out by our reads
    sync_once(archive, str(f2b.path))
    assert {e[1] for e in events(archive)} == {f"192.0.2.{n}" for n in range(10)} | {"198.51.100.1"}


def _sources(archive: Archive) -> list[str]:
    rows = archive._conn().execute("SELECT DISTINCT source FROM sync_marks ORDER BY source").fetchall()
    return [r[0] for r in rows]


def test_losing_leadership_commits_nothing_more(f2b: Fail2BanDb, archive: Archive) -> None:
    for n in range(10):
        f2b.ban("sshd", f"192.0.2.{n}", NOW + n)
    answers = iter([True, False])
    with pytest.raises(NotLeader):
        sync_once(archive, str(f2b.path), still_leader=lambda: next(answers), batch=4)
    assert len(events(archive)) == 4  # the first batch, committed while we still led
    # The next leader continues from the committed mark: no gap, no duplicate.
    assert sync_once(archive, str(f2b.path)).inserted == 6
    assert len(events(archive)) == 10


def test_a_fresh_fail2ban_db_keeps_history_and_is_read_from_its_start(tmp_path: Path, archive: Archive) -> None:
    path = tmp_path / "fail2ban.sqlite3"
    old = Fail2BanDb(path)
    for n in range(5):
        old.ban("sshd", f"192.0.2.{n}", NOW + n)
    old.unban("sshd", "192.0.2.0")
    sync_once(archive, str(path))
    old.conn.close()
    os.unlink(path)  # fail2ban restarted with a new dbfile
    new = Fail2BanDb(path)
    new.ban("sshd", "198.51.100.1", NOW - 3600 * 5)  # older than every mark of the old file
    new.ban("sshd", "198.51.100.2", NOW + 100)
    result = sync_once(archive, str(path))
    assert result.inserted == 2
    assert [e[1] for e in events(archive)] == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4",
                                               "198.51.100.1", "198.51.100.2"]


def test_a_manual_ban_and_its_fail2ban_row_are_one_event(f2b: Fail2BanDb, archive: Archive) -> None:
    archive.record_ban("sshd", ["192.0.2.9"], actor="alice", at=NOW + 0.4, bantime=600)
    f2b.ban("sshd", "192.0.2.9", NOW)
    result = sync_once(archive, str(f2b.path))
    assert (result.inserted, result.merged) == (0, 1)
    [item] = archive.history()[0]
    assert (item["origin"], item["actor"], item["failures"]) == ("manual", "alice", 3)
    # An unban through bangui is archived although fail2ban deletes its rows.
    archive.record_unban("sshd", "192.0.2.9", actor="alice", at=NOW + 30)
    f2b.unban("sshd", "192.0.2.9")
    sync_once(archive, str(f2b.path))
    assert [(i["event"], i["origin"]) for i in archive.history()[0]] == [("unban", "manual"), ("ban", "manual")]


def test_a_missing_or_foreign_database_is_a_sync_error(tmp_path: Path, archive: Archive) -> None:
    with pytest.raises(SyncError, match="cannot be read"):
        sync_once(archive, str(tmp_path / "nope.sqlite3"))
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t(x)")
    with pytest.raises(SyncError, match="not a fail2ban database"):
        sync_once(archive, str(other))
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(SyncError, match="cannot be read"):
        sync_once(archive, str(junk))


def test_the_fail2ban_db_is_opened_read_only(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW)
    f2b.conn.close()
    os.chmod(f2b.path, 0o400)
    before = f2b.path.read_bytes()
    assert sync_once(archive, str(f2b.path)).inserted == 1
    assert f2b.path.read_bytes() == before


def test_real_fail2ban_auto_ban_reaches_the_archive_with_matches(fail2ban, tmp_path: Path) -> None:  # noqa: ANN001
    archive = Archive.in_dir(tmp_path / "data")
    fail2ban.append_failures("sshd", "192.0.2.77", 3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = sync_once(archive, fail2ban.dbfile)
        if result.inserted:
            break
        time.sleep(0.1)
    [item] = archive.history(ip="192.0.2.77")[0]
    assert (item["jail"], item["origin"], item["event"]) == ("sshd", "auto", "ban")
    assert item["failures"] == 3 and len(item["matches"]) == 3
    assert all("Failed password for root from 192.0.2.77" in line for line in item["matches"])
    assert item["ends_at"] == item["at"] + item["bantime"]


def test_a_locked_fail2ban_db_stalls_the_sync_for_its_backoff_only(f2b: Fail2BanDb, archive: Archive) -> None:
    """Issue 20 item 5: each attempt waits the short source timeout, not the archive's 5 s (the sum of the
    backoff, 0.05+0.1+0.2+0.4+0.8 s, plus 6 x 0.1 s; the defect took over 25 s)."""
    f2b.ban("sshd", "192.0.2.1", NOW)
    sync_once(archive, str(f2b.path))
    f2b.ban("sshd", "192.0.2.2", NOW + 1)
    f2b.conn.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        result = sync_once(archive, str(f2b.path))
    finally:
        f2b.conn.execute("COMMIT")
    elapsed = time.monotonic() - started
    assert result.status == "locked"
    assert elapsed < 5.0, f"a locked fail2ban database stalled the sync {elapsed:.1f} s"


def _f2b_call(server, *args: str):  # noqa: ANN001, ANN202
    import asyncio

    from f2b.client import Fail2Ban

    async def call():  # noqa: ANN202
        client = Fail2Ban(server.socket, timeout=10.0)
        try:
            return await client.call(*args)
        finally:
            await client.aclose()
    return asyncio.run(call())


def _open_bans(archive: Archive) -> set[tuple[str, str]]:
    """(jail, ip) of the bans history says are in force now."""
    now = archive.clock()
    return {(i["jail"], i["ip"]) for i in archive.history(limit=1000)[0]
            if i["event"] == "ban" and (i["ends_at"] is None or i["ends_at"] > now)}


def _banned(server) -> set[tuple[str, str]]:  # noqa: ANN001
    jails = [j.strip() for j in dict(_f2b_call(server, "status"))["Jail list"].split(",") if j.strip()]
    return {(jail, str(ip)) for jail in jails for ip in _f2b_call(server, "get", jail, "banned")}


def _wait_banned(server, want: set[tuple[str, str]]) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 5  # the jails restore their bans just after "Server ready"
    while _banned(server) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _banned(server) == want
    time.sleep(0.3)  # and each restore's database write


def test_history_agrees_with_fail2ban_after_jail_stop_restart_and_outside_unban(fail2ban, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 18 section 6, against a real fail2ban: a stopped jail's bans are closed, the bans fail2ban restores
    at its next start are open again (ending when fail2ban's end), an unban made outside bangui closes its ban,
    and a run on an unchanged database reads nothing."""
    shift = [0.0]
    archive = Archive.in_dir(tmp_path / "data", clock=lambda: time.time() + shift[0])
    ips = ["192.0.2.31", "192.0.2.32", "192.0.2.33"]
    _f2b_call(fail2ban, "set", "sshd", "banip", *ips)

    def sync() -> object:
        deadline = time.monotonic() + 5  # fail2ban writes its database in a thread of its own, after answering
        while True:
            result = sync_once(archive, fail2ban.dbfile)
            if _open_bans(archive) == _banned(fail2ban) or time.monotonic() > deadline:
                return result
            time.sleep(0.1)

    sync()
    assert _open_bans(archive) == _banned(fail2ban) == {("sshd", ip) for ip in ips}
    time.sleep(0.5)  # fail2ban's last writes of the ban
    sync_once(archive, fail2ban.dbfile)
    assert sync_once(archive, fail2ban.dbfile).unchanged

    _f2b_call(fail2ban, "stop", "sshd")  # outside bangui: nothing records the unbans but the sync
    shift[0] = 60.0  # past the grace of young bans
    result = sync()
    assert _banned(fail2ban) == set() and _open_bans(archive) == set() and result.lifted == 3

    fail2ban.restart()  # fail2ban restores the unexpired bans of its database ("Restore Ban")
    _wait_banned(fail2ban, {("sshd", ip) for ip in ips})
    result = sync()
    assert result.restored == 3 and _open_bans(archive) == _banned(fail2ban)
    [restored] = [i for i in archive.history(ip=ips[0])[0] if i["event"] == "ban" and i["actor"]]
    [original] = [i for i in archive.history(ip=ips[0])[0] if i["event"] == "ban" and not i["actor"]]
    assert restored["origin"] == "auto" and abs(restored["ends_at"] - original["at"] - original["bantime"]) <= 2

    _f2b_call(fail2ban, "set", "sshd", "unbanip", ips[1])  # outside bangui again
    shift[0] = 120.0
    result = sync()
    assert _open_bans(archive) == _banned(fail2ban) == {("sshd", ips[0]), ("sshd", ips[2])}

    again = Archive.in_dir(tmp_path / "data", clock=lambda: time.time() + shift[0])  # bangui restarted
    assert sync_once(again, fail2ban.dbfile).unchanged and _open_bans(again) == _banned(fail2ban)


def test_a_jail_stopped_through_bangui_and_started_again_has_its_restored_bans_open(
        fail2ban, tmp_path: Path) -> None:  # noqa: ANN001
    """bangui records a stop's bans as unbans; the restart of fail2ban restores them: open again in history."""
    archive = Archive.in_dir(tmp_path / "data")
    ips = ["198.51.100.7", "198.51.100.8"]
    _f2b_call(fail2ban, "set", "sshd", "banip", *ips)
    time.sleep(0.3)
    sync_once(archive, fail2ban.dbfile)
    _f2b_call(fail2ban, "stop", "sshd")
    archive.record_unbans("sshd", ips, actor="admin")  # what actions/jail_control.stop_jail records
    sync_once(archive, fail2ban.dbfile)
    assert _open_bans(archive) == set()
    fail2ban.restart()
    _wait_banned(fail2ban, {("sshd", ip) for ip in ips})
    result = sync_once(archive, fail2ban.dbfile)
    assert result.restored == 2 and result.lifted == 0
    assert _open_bans(archive) == _banned(fail2ban) == {("sshd", ip) for ip in ips}


def test_a_young_ban_fail2ban_has_not_written_yet_stays_open_and_is_looked_at_again(
        f2b: Fail2BanDb, tmp_path: Path) -> None:
    """fail2ban writes a ban to its database after it answers: bangui's own record of a ban just made is not
    closed by a reconcile that does not see it yet, and the next run does not skip the database."""
    now = [NOW + 10.0]
    archive = Archive.in_dir(tmp_path / "data", clock=lambda: now[0])
    f2b.ban("sshd", "192.0.2.1", NOW)
    archive.record_ban("sshd", ["192.0.2.9"], actor="admin", bantime=600)  # its bips row is not there yet
    result = sync_once(archive, str(f2b.path))
    assert result.lifted == 0 and _open_bans(archive) == {("sshd", "192.0.2.1"), ("sshd", "192.0.2.9")}
    assert not sync_once(archive, str(f2b.path)).unchanged  # still pending: looked at again
    now[0] += 60  # fail2ban never wrote it (say it refused the ban): closed once past the grace
    result = sync_once(archive, str(f2b.path))
    assert result.lifted == 1 and _open_bans(archive) == {("sshd", "192.0.2.1")}
    assert sync_once(archive, str(f2b.path)).unchanged


def test_a_jail_disabled_in_fail2bans_database_bans_nothing(f2b: Fail2BanDb, archive: Archive) -> None:
    f2b.ban("sshd", "192.0.2.1", NOW)
    f2b.ban("nginx", "192.0.2.2", NOW - 100)
    f2b.conn.execute("INSERT INTO jails VALUES ('sshd', 1), ('nginx', 0)")  # nginx stopped
    result = sync_once(archive, str(f2b.path))
    assert result.inserted == 2
    assert _open_bans(archive) == {("sshd", "192.0.2.1")}


def test_rows_written_after_the_newest_row_was_unbanned_are_not_missed(f2b: Fail2BanDb, archive: Archive) -> None:
    """Reading by rowid (only what is new) while SQLite reuses the rowids of deleted newest rows."""
    f2b.ban("sshd", "192.0.2.1", NOW)
    f2b.ban("sshd", "192.0.2.2", NOW)
    sync_once(archive, str(f2b.path))
    f2b.unban("sshd", "192.0.2.2")
    sync_once(archive, str(f2b.path))  # sees the newest row gone
    f2b.ban("sshd", "192.0.2.3", NOW + 1)  # gets the unbanned row's rowid
    assert sync_once(archive, str(f2b.path)).inserted == 1
    f2b.unban("sshd", "192.0.2.3")
    f2b.ban("sshd", "192.0.2.4", NOW + 2)  # the same, between two runs: found among the current bans
    f2b.ban("sshd", "192.0.2.5", NOW + 2)
    sync_once(archive, str(f2b.path))
    assert {i["ip"] for i in archive.history(limit=100)[0] if i["event"] == "ban"} == \
        {f"192.0.2.{n}" for n in range(1, 6)}
    assert [i["at"] for i in archive.history(ip="192.0.2.4")[0]] == [NOW + 2]  # fail2ban's own ban time
