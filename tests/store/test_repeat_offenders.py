"""store.history_stats.repeat_offenders (issue 23 item 5): addresses banned at least N times in the last M days."""

from __future__ import annotations

from store.history import Archive
from store.history_stats import repeat_offenders
from tests.store.archive_helpers import DAY, NOW, synced


def fill(archive: Archive) -> None:
    archive.import_bans([
        # 81.2.69.1: 4 bans in 30 days over two jails, and one older (outside the window)
        synced("sshd", "81.2.69.1", NOW - 40 * DAY),
        synced("sshd", "81.2.69.1", NOW - 20 * DAY),
        synced("sshd", "81.2.69.1", NOW - 10 * DAY),
        synced("nginx", "81.2.69.1", NOW - 5 * DAY),
        # 8.8.8.8: 3 bans, the newest most recent of all
        synced("sshd", "8.8.8.8", NOW - 3 * DAY),
        synced("sshd", "8.8.8.8", NOW - 2 * DAY),
        synced("sshd", "8.8.8.8", NOW - 60),
        # 2a00:1450::1: twice only
        synced("sshd", "2a00:1450::1", NOW - 2 * DAY),
        synced("sshd", "2a00:1450::1", NOW - DAY),
    ], {})
    archive.record_ban("recidive", ["81.2.69.1"], origin="manual", actor="alice", at=NOW - 100)
    archive.record_unban("recidive", "81.2.69.1", actor="alice", at=NOW - 50)  # unbans are not bans


def test_addresses_with_at_least_n_bans_in_the_window_most_first(archive: Archive) -> None:
    fill(archive)
    found = archive.repeat_offenders(3, 30)
    assert [(o["ip"], o["bans"]) for o in found] == [("81.2.69.1", 4), ("8.8.8.8", 3)]
    first = found[0]
    assert first == {"ip": "81.2.69.1", "country": "GB", "bans": 4, "jails": ["nginx", "recidive", "sshd"],
                     "first_ban": NOW - 20 * DAY, "last_ban": NOW - 100}
    assert archive.repeat_offenders(2, 30)[-1]["ip"] == "2a00:1450::1"
    assert [o["ip"] for o in archive.repeat_offenders(4, 30)] == ["81.2.69.1"]
    assert [o["bans"] for o in archive.repeat_offenders(3, 45)] == [5, 3]  # the older ban counts in 45 days


def test_a_jail_filter_counts_that_jail_only_and_ties_go_to_the_latest_ban(archive: Archive) -> None:
    fill(archive)
    found = archive.repeat_offenders(2, 30, jail="sshd")
    assert [(o["ip"], o["bans"], o["jails"]) for o in found] == [
        ("8.8.8.8", 3, ["sshd"]), ("2a00:1450::1", 2, ["sshd"]), ("81.2.69.1", 2, ["sshd"])]
    assert archive.repeat_offenders(1, 30, jail="nope") == []


def test_min_bans_one_scans_the_window_and_agrees(archive: Archive) -> None:
    fill(archive)
    everyone = archive.repeat_offenders(1, 30)
    assert [o["ip"] for o in everyone] == ["81.2.69.1", "8.8.8.8", "2a00:1450::1"]
    assert everyone[:2] == archive.repeat_offenders(3, 30)


def test_the_answer_is_bounded(archive: Archive) -> None:
    archive.import_bans([synced("sshd", f"10.0.{n // 250}.{n % 250 + 1}", NOW - k * 100)
                         for n in range(30) for k in range(2)], {})
    found = repeat_offenders(archive._conn(), 2, 30, now=NOW, limit=10)
    assert len(found) == 10 and all(o["bans"] == 2 for o in found)
