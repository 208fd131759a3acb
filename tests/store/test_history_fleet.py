"""The archive's origin `fleet` (issue 14): bans and unbans the fleet asked for, with the host they came from,
and the schema migration (version 4) that brought the origin to archives written before it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from store.history import Archive
from store.history_schema import MIGRATIONS, migrate
from tests.fixtures.clock import ManualClock as Clock
from tests.store.archive_helpers import DAY, NOW, all_items, assert_aggregates_exact, synced


def _version_2_archive(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:2]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    return conn


def test_a_version_2_archive_is_migrated_with_its_events_ids_indexes_and_aggregates(tmp_path: Path) -> None:
    conn = _version_2_archive(tmp_path / "history.sqlite3")
    data = json.dumps({"matches": ["Failed password from 8.8.8.8"], "failures": 4})
    conn.execute("INSERT INTO events (id, event, jail, ip, ipkey, at, bantime, bancount, data, origin, country) "
                 "VALUES (7, 'ban', 'sshd', '8.8.8.8', x'0408080808', ?, 600, 1, ?, 'auto', 'US')", (NOW, data))
    conn.execute("INSERT INTO events (id, event, jail, ip, ipkey, at, origin, actor, country) "
                 "VALUES (42, 'unban', 'sshd', '8.8.8.8', x'0408080808', ?, 'manual', 'alice', 'US')", (NOW + 60,))
    conn.execute("INSERT INTO agg_day VALUES (?, 'sshd', 'auto', 1)", (int(NOW // DAY),))
    conn.execute("INSERT INTO agg_week_country VALUES (?, 'sshd', 'auto', 'US', 1)", (int((NOW - 345600) // 604800),))
    conn.execute("INSERT INTO agg_ip VALUES (x'0408080808', 1)")
    indexes = sorted(r[0] for r in conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'index' "
                                                "AND tbl_name = 'events' AND sql IS NOT NULL"))
    conn.close()

    archive = Archive.in_dir(tmp_path, clock=Clock())
    conn = archive._conn()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 6
    assert [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")] == [7, 42]  # ids kept (cursors)
    assert sorted(r[0] for r in conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'index' "
                                             "AND tbl_name = 'events' AND sql IS NOT NULL")) == sorted(
        [*indexes, "CREATE INDEX events_unban ON events(ipkey, jail, at) WHERE event = 'unban'"])  # version 6
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    unban, ban = all_items(archive)
    assert (ban["failures"], ban["matches"], ban["source_host"]) == (4, ["Failed password from 8.8.8.8"], None)
    assert (unban["actor"], unban["origin"], ban["ends_at"]) == ("alice", "manual", NOW + 60)
    assert_aggregates_exact(archive)
    # the new origin is accepted now, and new ids continue after the old ones
    archive.record_ban("sshd", ["8.8.4.4"], origin="fleet", actor="fleet:web1", source_host="web1", at=NOW + 120)
    assert conn.execute("SELECT id FROM events WHERE ip = '8.8.4.4'").fetchone()[0] == 43


def test_a_failed_migration_leaves_the_archive_as_it_was(tmp_path: Path) -> None:
    conn = _version_2_archive(tmp_path / "history.sqlite3")
    conn.execute("INSERT INTO events (event, jail, ip, ipkey, at, origin) "
                 "VALUES ('ban', 'sshd', '8.8.8.8', x'0408080808', ?, 'auto')", (NOW,))
    # the rebuild's first statement fails after version 3's step ran in the same transaction
    conn.execute("CREATE TABLE events_v4 (x)")
    with pytest.raises(sqlite3.OperationalError, match="events_v4 already exists"):
        migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    columns = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
    assert "since" not in columns and "source_host" not in columns  # version 3's column was rolled back too
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    conn.execute("DROP TABLE events_v4")
    assert migrate(conn) == 6 and conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_fleet_bans_and_unbans_carry_their_source_host_and_filter_by_origin(archive: Archive) -> None:
    archive.record_ban("sshd", ["81.2.69.142"], origin="fleet", actor="fleet:web1", source_host="web1", at=NOW)
    archive.record_ban("sshd", ["8.8.8.8"], actor="alice", at=NOW + 1)
    archive.record_unbans("sshd", ["81.2.69.142"], actor="fleet:web2", at=NOW + 2, origin="fleet",
                          source_host="web2")
    fleet = all_items(archive, origin="fleet")
    assert [(i["event"], i["ip"], i["origin"], i["source_host"]) for i in fleet] == [
        ("unban", "81.2.69.142", "fleet", "web2"), ("ban", "81.2.69.142", "fleet", "web1")]
    assert [i["source_host"] for i in all_items(archive, origin="manual")] == [None]
    assert archive.stats("24h", now=NOW + 10)["by_origin"] == {"auto": 0, "manual": 1, "blocklist": 0, "fleet": 1}
    assert archive.events_by_origin() == {"manual": 1, "fleet": 1}
    assert_aggregates_exact(archive)


def test_a_fleet_event_needs_its_source_host_and_only_a_fleet_event_has_one(archive: Archive) -> None:
    with pytest.raises(ValueError):
        archive.record_ban("sshd", ["8.8.8.8"], origin="fleet")
    with pytest.raises(ValueError):
        archive.record_unbans("sshd", ["8.8.8.8"], origin="manual", source_host="web1")
    assert all_items(archive) == []


def test_fail2bans_copy_of_a_fleet_ban_is_merged_into_it(archive: Archive) -> None:
    archive.record_ban("sshd", ["8.8.8.8"], origin="fleet", actor="fleet:web3", source_host="web3", at=NOW + 0.5)
    result = archive.import_bans([synced("sshd", "8.8.8.8", NOW)], {})
    assert result is not None and (result.inserted, result.merged) == (0, 1)
    archive.import_bans([synced("sshd", "8.8.4.4", NOW)], {})  # and the other way round: fail2ban's row first
    archive.record_ban("sshd", ["8.8.4.4"], origin="fleet", actor="fleet:web3", source_host="web3", at=NOW + 0.5)
    items = all_items(archive)
    assert sorted((i["ip"], i["origin"], i["source_host"], i["failures"]) for i in items) == [
        ("8.8.4.4", "fleet", "web3", 3), ("8.8.8.8", "fleet", "web3", 3)]
    assert_aggregates_exact(archive)
