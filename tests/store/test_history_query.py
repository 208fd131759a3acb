"""store.history: the ban archive's queries: filters, cursor pages, timeline, stats and CSV, on real SQLite files."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from errors import InvalidInput
from store.history import Archive, SyncedBan
from tests.fixtures.clock import ManualClock
from tests.store.archive_helpers import (
    DAY,
    NOW,
    all_items,
    assert_aggregates_exact,
    synced,
)

# ---- history filters -----------------------------------------------------------------------------------------


@pytest.fixture
def filled(archive: Archive) -> Archive:
    archive.import_bans([
        synced("sshd", "81.2.69.1", NOW - 3000),
        synced("sshd", "81.2.70.9", NOW - 2000),
        synced("nginx", "8.8.8.8", NOW - 1000),
        synced("sshd", "2a00:1450::1", NOW - 500),
        synced("sshd", "2a00:1451::1", NOW - 400),
    ], {})
    archive.record_ban("recidive", ["81.2.69.1"], origin="blocklist", actor="feed", at=NOW - 100)
    archive.record_unban("sshd", "81.2.69.1", actor="alice", at=NOW - 50)
    return archive


def ips(items: list[dict]) -> list[str]:
    return [i["ip"] for i in items]


def test_history_is_newest_first(filled: Archive) -> None:
    assert ips(all_items(filled)) == ["81.2.69.1", "81.2.69.1", "2a00:1451::1", "2a00:1450::1", "8.8.8.8",
                                      "81.2.70.9", "81.2.69.1"]


def test_every_filter(filled: Archive) -> None:
    assert ips(all_items(filled, jail="nginx")) == ["8.8.8.8"]
    assert ips(all_items(filled, since=NOW - 1000, until=NOW - 400)) == ["2a00:1451::1", "2a00:1450::1",
                                                                         "8.8.8.8"]
    assert ips(all_items(filled, origin="blocklist")) == ["81.2.69.1"]
    assert [i["event"] for i in all_items(filled, origin="manual")] == ["unban"]
    assert len(all_items(filled, origin="auto")) == 5
    assert ips(all_items(filled, country="us")) == ["8.8.8.8"]
    assert ips(all_items(filled, event="unban")) == ["81.2.69.1"]
    assert ips(all_items(filled, ip="81.2.69.1", jail="sshd", event="ban")) == ["81.2.69.1"]


def test_ip_filter_takes_cidrs_v4_and_v6(filled: Archive) -> None:
    assert ips(all_items(filled, ip="81.2.69.0/24")) == ["81.2.69.1"] * 3
    assert sorted(set(ips(all_items(filled, ip="81.2.0.0/16")))) == ["81.2.69.1", "81.2.70.9"]
    assert ips(all_items(filled, ip="2a00:1450::/32")) == ["2a00:1450::1"]
    assert ips(all_items(filled, ip="2a00:1450::/31")) == ["2a00:1451::1", "2a00:1450::1"]
    assert ips(all_items(filled, ip="::ffff:8.8.8.0/120")) == ["8.8.8.8"]
    assert len(all_items(filled, ip="0.0.0.0/0")) == 5  # every IPv4 event, no IPv6
    assert len(all_items(filled, ip="::/0")) == 2


@pytest.mark.parametrize("bad", [{"ip": "81.2.69"}, {"origin": "robot"}, {"limit": 0}, {"limit": 5000},
                                 {"cursor": "bm9wZQ"}, {"cursor": "!!"}, {"event": "kick"}])
def test_bad_filters_are_invalid_input(filled: Archive, bad: dict) -> None:
    with pytest.raises(InvalidInput):
        filled.history(**bad)


def test_cursor_pages_are_stable_while_new_rows_arrive(archive: Archive) -> None:
    # Many events share one second: the cursor breaks ties by id, so nothing is skipped or repeated.
    archive.import_bans([synced("sshd", f"8.8.{n // 4}.{n}", NOW + n // 4) for n in range(23)], {})
    expected = ips(all_items(archive))
    seen, cursor = [], None
    for page in range(10):
        items, cursor = archive.history(limit=5, cursor=cursor)
        seen += ips(items)
        archive.import_bans([synced("nginx", f"81.2.0.{page}", NOW + 100 + page)], {})  # newer rows arrive
        if cursor is None:
            break
    assert seen == expected


def test_ends_at_covers_unban_bantime_and_permanent(archive: Archive) -> None:
    archive.import_bans([synced("sshd", "8.8.8.1", NOW, bantime=600),
                         synced("sshd", "8.8.8.2", NOW, bantime=-1),
                         synced("sshd", "8.8.8.3", NOW, bantime=600),
                         synced("sshd", "8.8.8.3", NOW + 1000, bantime=600)], {})
    archive.record_unban("sshd", "8.8.8.1", at=NOW + 30)
    archive.record_unban("sshd", "8.8.8.3", at=NOW + 1100)  # ends the second ban, not the expired first
    ends = {(i["ip"], i["at"]): i["ends_at"] for i in all_items(archive, event="ban")}
    assert ends == {("8.8.8.1", NOW): NOW + 30, ("8.8.8.2", NOW): None,
                    ("8.8.8.3", NOW): NOW + 600, ("8.8.8.3", NOW + 1000): NOW + 1100}


# ---- timeline ------------------------------------------------------------------------------------------------


def test_ip_timeline_has_every_event_and_totals(filled: Archive) -> None:
    timeline = filled.ip_timeline("::ffff:81.2.69.1")
    assert timeline["ip"] == "81.2.69.1"
    assert [e["event"] for e in timeline["events"]] == ["unban", "ban", "ban"]
    assert timeline["totals"] == {"bans": 2, "unbans": 1, "jails": {"recidive": 1, "sshd": 1}}
    assert (timeline["country"], timeline["first_seen"], timeline["last_seen"]) == ("GB", NOW - 3000, NOW - 50)


def test_ip_timeline_of_an_unknown_address_is_empty_and_of_junk_invalid(filled: Archive) -> None:
    assert filled.ip_timeline("8.8.4.4")["events"] == []
    assert filled.ip_timeline("8.8.4.4")["country"] == "US"
    with pytest.raises(InvalidInput):
        filled.ip_timeline("10.0.0.0/8")


# ---- stats ---------------------------------------------------------------------------------------------------


def test_stats_24h_zero_fills_hourly_buckets_and_counts_bans_only(filled: Archive) -> None:
    stats = filled.stats("24h", now=NOW)
    assert len(stats["trend"]) == 24 and stats["bucket_seconds"] == 3600
    assert stats["until"] == 1_700_002_800 and stats["since"] == stats["until"] - 24 * 3600
    assert stats["total"] == sum(b["bans"] for b in stats["trend"]) == 6  # the unban is not a ban
    assert [b["bans"] for b in stats["trend"]][-2:] == [3, 3]  # 21:00-22:00 and 22:00-now
    assert stats["by_jail"] == [{"jail": "sshd", "bans": 4}, {"jail": "nginx", "bans": 1},
                                {"jail": "recidive", "bans": 1}]
    assert stats["by_origin"] == {"auto": 5, "manual": 0, "blocklist": 1, "fleet": 0}
    assert stats["top_ips"][0] == {"ip": "81.2.69.1", "country": "GB", "bans": 2}
    assert stats["top_countries"] == [{"country": "GB", "bans": 3}, {"country": "IE", "bans": 2},
                                      {"country": "US", "bans": 1}]


def test_stats_filters_by_jail_and_origin(filled: Archive) -> None:
    assert filled.stats("7d", jail="sshd", now=NOW)["total"] == 4
    only = filled.stats("30d", origin="blocklist", now=NOW)
    assert only["total"] == 1 and only["top_ips"] == [{"ip": "81.2.69.1", "country": "GB", "bans": 1}]
    with pytest.raises(InvalidInput):
        filled.stats("2w", now=NOW)


def test_stats_windows_all_agree_with_the_events(archive: Archive) -> None:
    # 400 days of bans, 3 a day; the year view (aggregates) must equal a recount of the events in its window.
    archive.import_bans([synced(("sshd", "nginx")[d % 2], f"8.8.{d % 7}.{d % 5}", NOW - d * DAY - h * 3600)
                         for d in range(400) for h in range(3)], {})
    archive.record_ban("sshd", ["81.2.69.1"], at=NOW - 3 * DAY)
    conn = archive._conn()
    for range_, width, n in (("24h", 3600, 24), ("7d", 21600, 28), ("30d", DAY, 30), ("365d", 7 * DAY, 53)):
        for jail, origin in ((None, None), ("sshd", None), (None, "auto"), ("sshd", "manual")):
            stats = archive.stats(range_, jail=jail, origin=origin, now=NOW)
            assert len(stats["trend"]) == n and stats["until"] - stats["since"] == n * width
            where = "event = 'ban' AND at >= ? AND at < ?" + (" AND jail = ?" if jail else "") + \
                    (" AND origin = ?" if origin else "")
            params = [stats["since"], stats["until"], *(x for x in (jail, origin) if x)]
            expected = conn.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0]
            assert stats["total"] == expected == sum(stats["by_origin"].values()), (range_, jail, origin)
            top = conn.execute(f"SELECT ip, count(*) c FROM events WHERE {where} GROUP BY ipkey "
                               "ORDER BY c DESC, ipkey LIMIT 10", params).fetchall()
            assert [(t["ip"], t["bans"]) for t in stats["top_ips"]] == top, (range_, jail, origin)
            countries = conn.execute(f"SELECT country, count(*) c FROM events WHERE {where} AND country "
                                     "IS NOT NULL GROUP BY country ORDER BY c DESC, country", params).fetchall()
            assert [(t["country"], t["bans"]) for t in stats["top_countries"]] == countries[:10]
            assert [(t["country"], t["bans"]) for t in stats["by_country"]] == countries  # the map: all of them
    assert_aggregates_exact(archive)


def test_stats_by_country_has_every_country_top_countries_ten(tmp_path: Path, clock: ManualClock) -> None:
    codes = ["US", "AU", "DE", "RU", "BR", "JP", "GB", "CN", "ZA", "FR", "NL", "SE"]

    class TwelveGeo:  # first octet n -> the n-th country
        def country(self, ip: str) -> str | None:
            return codes[int(ip.split(".")[0]) - 1]

    archive = Archive.in_dir(tmp_path, clock=clock, geo=TwelveGeo())  # type: ignore[arg-type]
    # country n gets 13 - n bans: all different, so the order is fixed
    archive.record_ban("sshd", [f"{n}.0.0.{k}" for n in range(1, 13) for k in range(13 - n)], at=NOW - 3600)
    stats = archive.stats("24h", now=NOW)
    assert [(t["country"], t["bans"]) for t in stats["by_country"]] == [(c, 12 - i) for i, c in enumerate(codes)]
    assert stats["top_countries"] == stats["by_country"][:10]


def _top_recount(archive: Archive, stats: dict, origin: str | None = None) -> list[tuple[str, int]]:
    where = "event = 'ban' AND at >= ? AND at < ?" + (" AND origin = ?" if origin else "")
    params = [stats["since"], stats["until"], *([origin] if origin else [])]
    rows = archive._conn().execute(f"SELECT ip, count(*) c FROM events WHERE {where} GROUP BY ipkey "
                                   "ORDER BY c DESC, ipkey LIMIT 10", params).fetchall()
    return [(ip, c) for ip, c in rows]


def test_year_top_ips_are_exact_when_decided_from_the_per_address_totals(archive: Archive, monkeypatch) -> None:
    import store.history_stats as history_stats

    decided: list[object] = []
    bounded = history_stats._top_ips_bounded
    monkeypatch.setattr(history_stats, "_top_ips_bounded", lambda *a, **k: decided.append(bounded(*a, **k))
                        or decided[-1])
    monkeypatch.setattr(history_stats, "BOUNDED_CANDIDATES", (20,))
    # Address n has n // 10 + 1 bans inside the year: the 10 leaders have 30, the 21st address 29 at most.
    archive.import_bans([synced("sshd", f"8.8.{n // 250}.{n % 250}", NOW - (n * 7 + k) * 3600)
                         for n in range(300) for k in range(n // 10 + 1)], {})
    archive.record_ban("nginx", ["8.8.1.40"], at=NOW - DAY)  # 8.8.1.40 (n = 290) leads with 31, one manual
    for origin in (None, "auto"):
        stats = archive.stats("365d", origin=origin, now=NOW)
        assert [(t["ip"], t["bans"]) for t in stats["top_ips"]] == _top_recount(archive, stats, origin)
        assert decided[-1] is not None  # decided without the scan
    assert stats["top_ips"][0] == {"ip": "8.8.1.40", "country": "US", "bans": 30}  # auto only: 30 of 31
    assert_aggregates_exact(archive)


def test_year_top_ips_come_from_the_index_of_the_most_banned_addresses(archive: Archive) -> None:
    """Issue 25 item 4: with addresses banned MANY_BANS times or more, the leaders come from the partial index
    agg_ip_many, without scanning agg_ip (a million rows in a 10-million-event archive)."""
    from store.history_schema import MANY_BANS

    archive.import_bans([synced("sshd", f"8.8.0.{n}", NOW - (n * 50 + k) * 3600)
                         for n in range(12) for k in range(MANY_BANS + n)]
                        + [synced("nginx", f"8.8.1.{n}", NOW - (n * 3 + k) * 3600) for n in range(200)
                           for k in range(n % 3 + 1)], {})
    conn = archive._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    stats = archive.stats("365d", now=NOW)
    conn.set_trace_callback(None)
    assert [(t["ip"], t["bans"]) for t in stats["top_ips"]] == _top_recount(archive, stats)
    assert stats["top_ips"][0] == {"ip": "8.8.0.11", "country": "US", "bans": MANY_BANS + 11}
    assert any(f"FROM agg_ip WHERE bans >= {MANY_BANS}" in s for s in statements)
    assert not any("FROM agg_ip ORDER BY" in s for s in statements)  # no scan of every address
    plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT ipkey, bans FROM agg_ip WHERE bans >= {MANY_BANS} "
                        "ORDER BY bans DESC, ipkey LIMIT 257").fetchall()
    assert "agg_ip_many" in str(plan)


def test_year_top_ips_fall_back_to_the_scan_when_old_bans_dominate_the_totals(archive: Archive,
                                                                             monkeypatch) -> None:
    import store.history_stats as history_stats

    decided: list[object] = []
    bounded = history_stats._top_ips_bounded
    monkeypatch.setattr(history_stats, "_top_ips_bounded", lambda *a, **k: decided.append(bounded(*a, **k))
                        or decided[-1])
    monkeypatch.setattr(history_stats, "BOUNDED_CANDIDATES", (20,))
    old = [synced("sshd", f"81.2.0.{n}", NOW - 500 * DAY - k * 60) for n in range(25) for k in range(50)]
    recent = [synced("sshd", f"8.8.0.{n}", NOW - n * 3600 - k * 60) for n in range(40) for k in range(n % 6 + 1)]
    archive.import_bans(old + recent, {})
    stats = archive.stats("365d", now=NOW)
    assert decided == [None]  # the 20 biggest totals are all outside the window: not decidable, scanned
    assert [(t["ip"], t["bans"]) for t in stats["top_ips"]] == _top_recount(archive, stats)
    assert stats["top_ips"][0]["bans"] == 6


# ---- CSV -----------------------------------------------------------------------------------------------------


def test_csv_escapes_commas_quotes_and_newlines_in_log_lines(archive: Archive) -> None:
    nasty = ['sshd[1]: Failed password for "root", from 8.8.8.8', "line\nwith newline", "plain"]
    archive.import_bans([synced("sshd", "8.8.8.8", NOW, matches=nasty)], {})
    archive.record_unban("sshd", "8.8.8.8", actor='o"brien, ops', at=NOW + 5)
    text = "".join(archive.csv_lines())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["time", "event", "jail", "ip"]
    assert rows[1][1] == "unban" and rows[1][5] == 'o"brien, ops'
    assert rows[2][0] == "2023-11-14T22:13:20Z"
    assert rows[2][rows[0].index("ends_at")] == "2023-11-14T22:13:25Z"  # ended by the unban, ISO as every time
    assert rows[2][rows[0].index("matches")].split("\n") == ['sshd[1]: Failed password for "root", from 8.8.8.8', "line", "with newline",
                                       "plain"]
    assert len(rows) == 3


def test_csv_streams_every_page_with_filters(archive: Archive) -> None:
    archive.import_bans([synced("sshd" if n % 2 else "nginx", f"8.8.{n // 250}.{n % 250}", NOW + n)
                         for n in range(2500)], {})
    lines = list(archive.csv_lines(jail="sshd", page_size=300))
    assert len(lines) == 1 + 1250
    assert len({line.split(",")[3] for line in lines[1:]}) == 1250


def test_database_errors_surface_as_sqlite_errors(archive: Archive, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "history.sqlite3", timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    import store.history as history

    old = history.BUSY_TIMEOUT_S
    try:
        history.BUSY_TIMEOUT_S = 0.05
        fresh = Archive.in_dir(tmp_path)  # reads are fine (WAL); its write waits, then fails
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            fresh.record_ban("sshd", ["8.8.8.8"])
    finally:
        history.BUSY_TIMEOUT_S = old
        other.rollback()


def test_csv_chunks_are_the_csv_lines_a_page_at_a_time(archive: Archive) -> None:
    archive.import_bans([synced("sshd", f"8.8.{n // 250}.{n % 250}", NOW + n, matches=[f'a "b", {n}', "c\nd"])
                         for n in range(700)], {})
    archive.record_unban("sshd", "8.8.0.5", actor="ops, x", at=NOW + 5.5)
    chunks = list(archive.csv_chunks(jail="sshd", page_size=300))
    assert len(chunks) == 1 + 3  # the header, then 701 rows in pages of 300
    assert "".join(chunks) == "".join(archive.csv_lines(jail="sshd", page_size=300))
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert len(rows) == 702 and rows[1][3] == "8.8.2.199"


def test_csv_formatted_by_sqlite_equals_the_python_reference_for_every_kind_of_row(archive: Archive) -> None:
    """csv_chunks formats lines in SQL (issue 25 item 4) and hands the rows SQL cannot format exactly to Python:
    its text must equal csv_lines' (the csv module, datetime) byte for byte, whatever the archive holds."""
    odd_data = ['{"matches": ["plain", "with, comma", "q\\"uote", "cr\\rlf\\n"], "failures": 7}',
                '{"matches": [["part", 1], 5, null], "failures": 2}',  # fail2ban 0.10 parts, numbers, null
                '{"matches": ["nul \\u0000 and \\u00e9"]}', '{"matches": []}', '{"matches": "not a list"}',
                "not json {", None, '{"failures": 99999999999}', '["top", "level"]', '{"matches": ["x"], "failures": "3"}']
    rows = []
    for n, data in enumerate(odd_data * 3):
        rows.append(SyncedBan(["sshd", 'we"ird,jail', "cr\rjail"][n % 3], ["8.8.8.8", "81.2.69.1", "not,an ip"][n % 3],
                              NOW - 5000 + n * 17, [600, -1, None][n % 3], 1, data))
    archive.import_bans(rows, {})
    archive.record_ban("sshd", ["8.8.8.8"], origin="manual", actor='al"ice, ops', at=NOW - 4000.25, since=NOW - 4001)
    archive.record_unban("sshd", "8.8.8.8", actor="bob", at=NOW - 3990)  # ends the ban above before its bantime
    archive.record_unban("sshd", "81.2.69.1", actor="bob", at=NOW - 4900.0078125)  # a fraction rounding halves
    archive.record_ban("recidive", ["81.2.69.1"], origin="fleet", source_host="host, b", at=NOW - 100, bantime=86400)
    archive.record_ban("sshd", ["8.8.8.8"], origin="blocklist", actor="feed", at=NOW - 3000, bantime=600)
    conn = archive._conn()
    conn.execute("UPDATE events SET bantime = 600.5 WHERE id = 2")  # a real bantime (not one fail2ban writes)
    reference = "".join(archive.csv_lines(page_size=7))
    assert "".join(archive.csv_chunks(page_size=7)) == reference
    assert "".join(archive.csv_chunks()) == reference
    for filters in ({"jail": "sshd"}, {"event": "ban"}, {"origin": "manual"}, {"ip": "8.8.8.8"}):
        assert "".join(archive.csv_chunks(page_size=5, **filters)) == "".join(archive.csv_lines(**filters))
    parsed = list(csv.reader(io.StringIO(reference)))
    assert len(parsed) == 1 + len(odd_data) * 3 + 5
    assert sum(1 for r in conn.execute("SELECT 1 FROM events WHERE at = CAST(at AS INTEGER)")) > 20  # fast path


def test_stats_answered_again_only_while_the_archive_is_unchanged(filled: Archive) -> None:
    first = filled.stats("24h", now=NOW)
    assert filled.stats("24h", now=NOW + 1) == first  # same window, nothing written: the same figures
    filled.record_ban("sshd", ["8.8.4.4"], at=NOW - 10)  # this connection writes
    assert filled.stats("24h", now=NOW)["total"] == first["total"] + 1
    other = Archive(filled.path)
    other.record_ban("nginx", ["8.8.4.5"], at=NOW - 5)  # another connection commits (as another process would)
    assert filled.stats("24h", now=NOW)["total"] == first["total"] + 2
    assert filled.stats("24h", now=NOW + 86400)["total"] == 0  # the window moved on
    other.close()
