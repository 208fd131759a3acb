"""store.history: the ban archive's file, writes, dedupe with the sync, and retention, on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from store.history import Archive, SyncedBan
from store.history_schema import MIGRATIONS, SchemaError
from tests.fixtures.clock import ManualClock as Clock
from tests.store.archive_helpers import (
    DAY,
    NOW,
    all_items,
    assert_aggregates_exact,
    synced,
)

# ---- the file -------------------------------------------------------------------------------------------------


def test_the_archive_file_is_private_wal_and_versioned(archive: Archive, tmp_path: Path) -> None:
    archive.record_ban("sshd", ["8.8.8.8"], actor="alice")
    for name in ("history.sqlite3", "history.sqlite3-wal"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    conn = archive._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_version_1_archive_is_migrated_with_its_events(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    data = json.dumps({"matches": ["Failed password from 8.8.8.8"], "failures": 4})
    conn.execute("INSERT INTO events (event, jail, ip, ipkey, at, bantime, bancount, data, origin, country) "
                 "VALUES ('ban', 'sshd', '8.8.8.8', x'0408080808', ?, 600, 1, ?, 'auto', 'US')", (NOW, data))
    conn.execute("INSERT INTO agg_day VALUES (?, 'sshd', 'auto', 1)", (int(NOW // DAY),))
    conn.execute("INSERT INTO agg_week_country VALUES (?, 'sshd', 'auto', 'US', 1)", (int((NOW - 345600) // 604800),))
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    archive = Archive.in_dir(tmp_path, clock=Clock())
    conn = archive._conn()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 6
    columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
    assert {"failures", "matches"}.isdisjoint(columns) and "data" in columns
    [item] = all_items(archive)
    assert (item["failures"], item["matches"]) == (4, ["Failed password from 8.8.8.8"])
    assert_aggregates_exact(archive)  # agg_ip was filled from the events
    assert archive.stats("365d", now=NOW)["top_ips"] == [{"ip": "8.8.8.8", "country": "US", "bans": 1}]


def test_reopening_migrates_nothing_and_a_newer_archive_is_refused(archive: Archive, tmp_path: Path) -> None:
    archive.record_ban("sshd", ["8.8.8.8"])
    assert len(all_items(Archive.in_dir(tmp_path))) == 1
    archive._conn().execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaError, match="newer"):
        Archive.in_dir(tmp_path)


def test_each_thread_gets_its_own_connection(archive: Archive) -> None:
    seen = []

    def work(n: int) -> None:
        archive.record_ban("sshd", [f"8.8.8.{n}"], at=NOW + n)
        seen.append(id(archive._conn()))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    assert len(all_items(archive)) == 4


# ---- writes and dedupe ----------------------------------------------------------------------------------------


def test_a_manual_ban_and_unban_are_recorded_with_actor_and_country(archive: Archive) -> None:
    assert archive.record_ban("sshd", ["81.2.69.142", "::ffff:8.8.8.8"], actor="alice", bantime=600) == 2
    assert archive.record_unban("sshd", "81.2.69.142", actor="token:ops", at=NOW + 60)
    items = all_items(archive)
    assert [(i["event"], i["ip"], i["actor"], i["origin"], i["country"]) for i in items] == [
        ("unban", "81.2.69.142", "token:ops", "manual", "GB"),
        ("ban", "8.8.8.8", "alice", "manual", "US"),  # the IPv4-mapped form is normalised
        ("ban", "81.2.69.142", "alice", "manual", "GB"),
    ]
    assert items[2]["ends_at"] == NOW + 60  # ended by the unban
    assert items[1]["ends_at"] == NOW + 600  # derived from bantime


def test_recording_the_same_ban_twice_adds_nothing(archive: Archive) -> None:
    archive.record_ban("sshd", ["8.8.8.8"], at=NOW)
    assert archive.record_ban("sshd", ["8.8.8.8"], at=NOW) == 0
    assert archive.record_unban("sshd", "9.9.9.9", at=NOW) is True
    assert archive.record_unban("sshd", "9.9.9.9", at=NOW) is False
    assert len(all_items(archive)) == 2


def test_auto_is_not_an_origin_bangui_records(archive: Archive) -> None:
    with pytest.raises(ValueError):
        archive.record_ban("sshd", ["8.8.8.8"], origin="auto")


def test_the_synced_copy_of_a_manual_ban_is_merged_not_duplicated(archive: Archive) -> None:
    archive.record_ban("sshd", ["8.8.8.8"], actor="alice", at=NOW + 0.7)
    result = archive.import_bans([synced("sshd", "8.8.8.8", NOW, matches=["line 1", "line 2"])], {})
    assert result is not None and (result.inserted, result.merged) == (0, 1)
    [item] = all_items(archive)
    assert (item["origin"], item["actor"], item["at"]) == ("manual", "alice", NOW + 0.7)
    assert (item["failures"], item["matches"], item["bantime"]) == (3, ["line 1", "line 2"], 600)
    again = archive.import_bans([synced("sshd", "8.8.8.8", NOW, matches=["line 1", "line 2"])], {})
    assert again is not None and (again.inserted, again.merged) == (0, 0)  # a re-read changes nothing
    assert_aggregates_exact(archive)


def test_a_manual_ban_recorded_after_its_synced_copy_claims_it(archive: Archive) -> None:
    archive.import_bans([synced("sshd", "8.8.8.8", NOW)], {})
    assert archive.record_ban("sshd", ["8.8.8.8"], actor="bob", at=NOW + 1.5) == 1
    [item] = all_items(archive)
    assert (item["origin"], item["actor"], item["failures"]) == ("manual", "bob", 3)
    assert_aggregates_exact(archive)


def test_a_claimed_ban_keeps_our_time_so_a_quick_unban_sorts_after_it(archive: Archive) -> None:
    # fail2ban stores whole seconds: its copy can be later than our own ban and our unban right after it.
    archive.import_bans([synced("sshd", "8.8.8.8", NOW + 1)], {})
    archive.record_ban("sshd", ["8.8.8.8"], actor="ann", at=NOW + 0.2)
    archive.record_unban("sshd", "8.8.8.8", actor="ann", at=NOW + 0.4)
    items = all_items(archive)
    assert [(i["event"], i["at"]) for i in items] == [("unban", NOW + 0.4), ("ban", NOW + 0.2)]
    assert items[1]["ends_at"] == NOW + 0.4
    assert_aggregates_exact(archive)


def test_bans_further_apart_or_in_another_jail_stay_separate(archive: Archive) -> None:
    archive.record_ban("sshd", ["8.8.8.8"], at=NOW)
    archive.import_bans([synced("sshd", "8.8.8.8", NOW + 5), synced("nginx", "8.8.8.8", NOW)], {})
    assert sorted((i["jail"], i["origin"]) for i in all_items(archive)) == [
        ("nginx", "auto"), ("sshd", "auto"), ("sshd", "manual")]


def test_recording_one_ban_does_not_read_every_ban_of_the_last_seconds(archive: Archive) -> None:
    """A script banning hundreds of addresses a second left thousands of events in the merge window, and each
    further ban read them all (233 -> 700 us per ban as they piled up). SQLite's instruction count is exact."""
    def instructions_for_one_ban(ip: str) -> int:
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0

        conn = archive._conn()
        conn.set_progress_handler(tick, 100)
        try:
            archive.record_ban("sshd", [ip], at=NOW)
        finally:
            conn.set_progress_handler(None, 0)
        return steps[0]

    archive.record_ban("sshd", ["10.0.0.1"], at=NOW)
    few = instructions_for_one_ban("10.0.1.1")
    archive.record_ban("sshd", [f"10.1.{i >> 8}.{i & 255}" for i in range(3000)], at=NOW)
    many = instructions_for_one_ban("10.0.1.2")
    assert many < few * 2 + 20, (few, many)
    archive.import_bans([synced("sshd", "10.0.1.3", NOW)], {})  # a ban fail2ban made is still claimed
    assert archive.record_ban("sshd", ["10.0.1.3"], actor="bob", at=NOW) == 1
    rows = archive._conn().execute("SELECT origin, actor FROM events WHERE ip = '10.0.1.3'").fetchall()
    assert rows == [("manual", "bob")]
    assert_aggregates_exact(archive)


def test_import_is_idempotent_and_advances_marks_only_forward(archive: Archive) -> None:
    bans = [synced("sshd", f"8.8.8.{n}", NOW + n) for n in range(5)]
    first = archive.import_bans(bans, {("src", "sshd"): NOW + 4})
    second = archive.import_bans(bans, {("src", "sshd"): NOW + 1})
    assert first is not None and second is not None
    assert (first.inserted, second.inserted) == (5, 0)
    assert archive.sync_marks("src") == {"sshd": NOW + 4}
    assert_aggregates_exact(archive)


def test_a_fenced_import_commits_neither_rows_nor_marks(archive: Archive) -> None:
    assert archive.import_bans([synced("sshd", "8.8.8.8", NOW)], {("src", "sshd"): NOW},
                               commit_if=lambda: False) is None
    assert all_items(archive) == []
    assert archive.sync_marks("src") == {}


def test_odd_fail2ban_data_is_kept_without_details(archive: Archive) -> None:
    archive.import_bans([SyncedBan("sshd", "8.8.8.1", NOW, 600, 1, "null"),
                         SyncedBan("sshd", "8.8.8.2", NOW, 600, 1, "{not json"),
                         SyncedBan("sshd", "8.8.8.3", NOW, 600, 1, '{"matches": "x", "failures": "3"}'),
                         SyncedBan("sshd", "8.8.8.4", NOW, 600, 1, None),
                         SyncedBan("sshd", "not-an-ip", NOW, None, None, '[1, 2]')], {})
    items = all_items(archive)
    assert len(items) == 5
    assert all(i["matches"] == [] and i["failures"] is None for i in items)
    assert {i["ip"] for i in items} >= {"not-an-ip"}


# ---- retention -----------------------------------------------------------------------------------------------


def test_purge_deletes_old_events_in_batches_by_the_injected_clock(archive: Archive, clock: Clock) -> None:
    archive.import_bans([synced("sshd", f"8.8.{n}.1", NOW - n * DAY) for n in range(40)], {})
    archive.record_unban("sshd", "8.8.39.1", at=NOW - 39 * DAY + 10)
    clock.now = NOW + 10 * DAY
    assert archive.purge(30, batch=7) == 20  # days 21..39 plus the unban are older than 30 days from now
    assert len(all_items(archive)) == 21
    assert_aggregates_exact(archive)
    assert archive.purge(30) == 0
