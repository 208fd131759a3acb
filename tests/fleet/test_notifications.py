"""Notifications in fleet mode: bans and unbans that came from the fleet name the host that published them
(`source_host`, as history items do), in the json format and in the text formats' lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fixtures.webhook import Receiver
from tests.fleet.conftest import Fleet, dump, start_fleet

pytestmark = pytest.mark.fleet


def _notification_runs(fleet: Fleet) -> int:
    jobs = httpx.get(fleet.hosts[0].url + "/api/v1/jobs", headers=fleet.headers(), timeout=10).json()["jobs"]
    return int(next(j for j in jobs if j["name"] == "notifications")["runs"])


def test_notifications_of_fleet_bans_and_unbans_name_the_publishing_host(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, n=2, env={"BANGUI_NOTIFY_ALLOW_PRIVATE": "1"})
    receiver = Receiver()
    try:
        web1, web2 = fleet.hosts
        auth = fleet.headers()
        for fmt in ("json", "ntfy"):  # web1's targets (each host delivers its own history's events)
            made = httpx.post(web1.url + "/api/v1/notifications", headers=auth, timeout=10, json={
                "name": fmt, "url": f"{receiver.url}/{fmt}", "format": fmt, "events": ["ban", "unban"],
                "min_interval_s": 0})
            assert made.status_code == 201, made.text
        runs = _notification_runs(fleet)
        wait_for(lambda: _notification_runs(fleet) >= runs + 2, timeout=20, what="a notifications run with targets")
        ip, own = "192.0.2.210", "192.0.2.211"
        for kind in ("bans", "unbans"):  # published by web2, applied on web1 (history: origin fleet, web2)
            r = httpx.post(web2.url + f"/api/v1/fleet/{kind}", json={"ips": [ip], "jail": "nginx-http-auth"},
                           headers=auth, timeout=10)
            assert r.status_code == 202, r.text
            wait_for(lambda r=r: httpx.get(web1.url + f"/api/v1/fleet/bans/{r.json()['id']}", headers=auth,
                                           timeout=10).json()["hosts"]["web1"]["status"] == "applied",
                     timeout=20, what=f"the fleet {kind} applied on web1")
        assert httpx.post(web1.url + "/api/v1/jails/nginx-http-auth/bans", json={"ips": [own]}, headers=auth,
                          timeout=10).status_code == 200  # web1's own ban: no source host

        def events() -> list[dict[str, Any]]:
            return [e for m in receiver.messages if m["path"] == "/json" for e in json.loads(m["body"])["events"]]

        got = wait_for(lambda: (e := events()) and len(e) >= 3 and e, timeout=30, what="3 events in json")
        assert [(e["event"], e["ip"], e["origin"], e["source_host"]) for e in got] == [
            ("ban", ip, "fleet", "web2"), ("unban", ip, "fleet", "web2"), ("ban", own, "manual", None)]
        wait_for(lambda: sum(m["body"].count(b"\n") + 1 for m in receiver.messages if m["path"] == "/ntfy") >= 3,
                 timeout=30, what="3 lines in ntfy")
        lines = b"\n".join(m["body"] for m in receiver.messages if m["path"] == "/ntfy").decode().splitlines()
        assert lines == [f"ban {ip} in nginx-http-auth (fleet from web2 by fleet:web2)",
                         f"unban {ip} in nginx-http-auth (fleet from web2 by fleet:web2)",
                         f"ban {own} in nginx-http-auth (manual by token:ops)"], lines
    finally:
        receiver.close()
        dump(fleet)
        fleet.stop()
