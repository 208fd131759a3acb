"""History through the API: our own bans and unbans at once, fail2ban's automatic bans via the elected
sync job, filters, CSV, stats and the per-address timeline, against a real private fail2ban."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import pytest

from tests.fixtures.app import Api
from tests.fixtures.waiting import wait_for


def test_manual_ban_and_unban_are_both_in_history(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7"]})
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.7")
    items = api.call("viewer", "GET", "/history?ip=192.0.2.7").json()["items"]
    assert [(i["event"], i["origin"], i["actor"]) for i in items] == [
        ("unban", "manual", "token:operator-token"), ("ban", "manual", "token:operator-token")]
    assert items[1]["at"].endswith("Z") and items[1]["ends_at"] == items[0]["at"]
    assert [i["source_host"] for i in items] == [None, None]  # only fleet events name a source host
    assert api.call("viewer", "GET", "/history?origin=fleet").json()["items"] == []
    assert api.call("viewer", "GET", "/stats?origin=fleet").json()["by_origin"]["fleet"] == 0


@pytest.mark.with_jobs
def test_auto_ban_reaches_history_with_matches_through_the_sync_job(api: Api, fail2ban: Any) -> None:
    fail2ban.append_failures("sshd", "203.0.113.9", 3)
    wait_for(lambda: api.call("viewer", "GET", "/bans").json()["bans"])
    assert api.call("operator", "POST", "/jobs/history_sync/run").status_code == 202
    items = wait_for(lambda: api.call("viewer", "GET", "/history?origin=auto").json()["items"])
    [item] = items
    assert (item["ip"], item["jail"], item["event"], item["origin"]) == ("203.0.113.9", "sshd", "ban", "auto")
    assert item["failures"] == 3 and len(item["matches"]) == 3
    assert all("203.0.113.9" in line for line in item["matches"])


def test_history_survives_a_fresh_fail2ban_database(api: Api, fail2ban: Any) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    fail2ban.restart(fresh_db=True)
    assert api.call("viewer", "GET", "/bans").json()["bans"] == []
    api.call("operator", "POST", "/jobs/history_sync/run")
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.3"]})
    ips = {i["ip"] for i in api.call("viewer", "GET", "/history").json()["items"]}
    assert ips == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}


def test_filters_cidr_and_cursor_pages(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": [f"198.51.100.{i}" for i in range(1, 6)]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["2001:db8::1", "192.0.2.1"]})
    cidr = api.call("viewer", "GET", "/history?ip=198.51.100.0/29").json()["items"]
    assert {i["ip"] for i in cidr} == {f"198.51.100.{i}" for i in range(1, 6)}
    v6 = api.call("viewer", "GET", "/history?ip=2001:db8::/32").json()["items"]
    assert [i["ip"] for i in v6] == ["2001:db8::1"]
    assert {i["jail"] for i in api.call("viewer", "GET", "/history?jail=nginx-http-auth").json()["items"]} == {
        "nginx-http-auth"}
    seen, cursor = [], None
    while True:
        page = api.call("viewer", "GET", "/history?limit=3" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [i["ip"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    assert api.call("viewer", "GET", "/history?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z").json()[
        "items"] == []


def test_bad_history_queries_are_400(api: Api) -> None:
    for query in ("since=yesterday", "limit=0", "limit=x", "cursor=garbage", "ip=not-an-ip", "origin=alien",
                  "bogus=1", "since=2026-01-01T00:00:00"):
        r = api.call("viewer", "GET", f"/history?{query}")
        assert r.status_code == 400, (query, r.text)
        assert r.json()["error"]["message"]


def test_csv_export_escapes_log_lines(api: Api, fail2ban: Any) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.50"]})
    r = api.call("viewer", "GET", "/history?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["time", "event", "jail", "ip"]
    assert rows[1][1:4] == ["ban", "sshd", "192.0.2.50"]
    for row in rows[1:]:  # every time in ISO 8601 (issue 23 item 6), none an epoch
        for column in ("time", "ends_at"):
            value = row[rows[0].index(column)]
            assert value == "" or datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo, (column, value)
    via_accept = api.call("viewer", "GET", "/history", headers={"Accept": "text/csv"})
    assert via_accept.headers["content-type"].startswith("text/csv")
    assert via_accept.text.splitlines()[0] == r.text.splitlines()[0]


def test_stats_are_zero_filled_and_count_bans(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    stats = api.call("viewer", "GET", "/stats?range=24h").json()
    assert len(stats["trend"]) == 24 and sum(b["bans"] for b in stats["trend"]) == 2
    assert stats["by_jail"] == [{"jail": "sshd", "bans": 2}]
    assert stats["by_origin"]["manual"] == 2
    assert api.call("viewer", "GET", "/stats?range=1y").status_code == 400


def test_ip_view_joins_current_bans_and_timeline(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.9"]})
    api.call("operator", "DELETE", "/bans/192.0.2.9")
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.9"]})
    body = api.call("viewer", "GET", "/ips/192.0.2.9").json()
    assert body["banned_now"] is True and [b["jail"] for b in body["current_bans"]] == ["nginx-http-auth"]
    assert body["totals"]["bans"] == 2 and body["totals"]["unbans"] == 1
    assert [e["event"] for e in body["events"]] == ["ban", "unban", "ban"]


def test_repeat_offenders_from_history(api: Api) -> None:
    for _ in range(3):  # three bans of one address through the API (each unbanned in between)
        api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.77"]})
        api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.77")
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.78"]})
    r = api.call("viewer", "GET", "/history/repeat-offenders")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["min_bans"], body["days"]) == (3, 30)
    (one,) = body["offenders"]
    assert (one["ip"], one["bans"], one["jails"]) == ("192.0.2.77", 3, ["sshd"])
    assert isinstance(one["first_ban"], float) and one["first_ban"] <= one["last_ban"] and "country" in one
    found = api.call("viewer", "GET", "/history/repeat-offenders?min_bans=1&days=1&jail=sshd").json()
    assert [o["ip"] for o in found["offenders"]] == ["192.0.2.77", "192.0.2.78"]
    for query in ("min_bans=0", "days=x", "days=99999999", "jail=a b", "bogus=1", "jail=", "days="):
        bad = api.call("viewer", "GET", f"/history/repeat-offenders?{query}")
        assert bad.status_code == 400 and bad.json()["error"]["code"] in ("invalid_query", "invalid_jail_name"), query
    assert api.call("anonymous", "GET", "/history/repeat-offenders").status_code == 401
