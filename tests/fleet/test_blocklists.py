"""Blocklists in fleet mode (issue 14: the fleet leader runs "blocklist imports for the fleet"): the lists live in
the fleet store, the fleet leader fetches each once, every host bans it through its own ban action."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.blocklist_server import EXPECTED, ListServer
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Host, dump, start_fleet

pytestmark = pytest.mark.fleet


def _canonical(entries: set[str]) -> set[str]:
    return {str(ipaddress.ip_network(e, strict=False)) if "/" in e else str(ipaddress.ip_address(e)) for e in entries}


def _mine(host: Host, auth: dict[str, str]) -> dict[str, Any]:
    """The (only) blocklist as `host` shows it."""
    lists = httpx.get(host.url + "/api/v1/blocklists", headers=auth, timeout=10).json()["blocklists"]
    assert len(lists) == 1, lists
    return lists[0]  # type: ignore[no-any-return]


def test_a_fleet_blocklist_is_fetched_once_by_the_fleet_leader_and_banned_on_every_host(
        tmp_path: Path, lists: ListServer) -> None:
    fleet = start_fleet(tmp_path, n=2, env={"BANGUI_BLOCKLIST_ALLOW_PRIVATE": "1"})
    try:
        web1, web2 = fleet.hosts
        auth = fleet.headers()
        # one entry of the list is banned on web2 already: its count of new bans differs from web1's
        assert httpx.post(web2.url + "/api/v1/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.2"]}, headers=auth,
                          timeout=10).status_code == 200
        body = {"name": "drop", "url": lists.url("/list.txt"), "jail": "nginx-http-auth", "interval_s": 3600}
        made = httpx.post(web2.url + "/api/v1/blocklists", json=body, headers=auth, timeout=10)
        assert made.status_code == 201, made.text
        assert [b["name"] for b in httpx.get(web1.url + "/api/v1/blocklists", headers=auth,
                                             timeout=10).json()["blocklists"]] == ["drop"]  # the fleet's lists
        expected = _canonical(set(EXPECTED))
        wait_for(lambda: all(expected <= _canonical(h.banned("nginx-http-auth")) for h in fleet.hosts), timeout=30,
                 what="the list banned on both hosts")
        record = wait_for(lambda: (r := httpx.get(web1.url + "/api/v1/blocklists", headers=auth, timeout=10)
                                   .json()["blocklists"][0])["last_status"] and r, what="the import's record")
        assert (record["last_status"], record["last_count"], record["runs"]) == ("ok", 5, 1), record
        status = wait_for(lambda: (s := httpx.get(web1.url + f"/api/v1/fleet/bans/{record['last_fleet_ban']}",
                                                  headers=auth, timeout=10).json()["hosts"])
                          and all(v["status"] != "pending" for v in s.values()) and s, what="per-host status")
        assert {h: v["status"] for h, v in status.items()} == {"web1": "applied", "web2": "applied"}
        assert {h: v["added"] for h, v in status.items()} == {"web1": 5, "web2": 4}
        # `last_added` as single-host mode reports it: what the host answering banned anew in that import
        assert [_mine(h, auth)["last_added"] for h in fleet.hosts] == [5, 4]
        assert [p for p, _ in lists.seen] == ["/list.txt"]  # fetched once for the whole fleet
        for host in fleet.hosts:  # each host's own history and audit, as a single host's import records them
            items = httpx.get(host.url + "/api/v1/history", params={"ip": "192.0.2.1"}, headers=auth,
                              timeout=10).json()["items"]
            assert [(i["origin"], i["actor"], i["source_host"]) for i in items] == [
                ("blocklist", "blocklist:drop", None)], host.name
            audit = httpx.get(host.url + "/api/v1/audit", params={"action": "jail.ban", "actor": "blocklist:drop"},
                              headers=auth, timeout=10).json()["items"]
            assert [(a["target"], a["details"]["count"]) for a in audit] == [("nginx-http-auth", 5)], host.name
        # "run now" on any host: the fleet leader fetches it once more
        assert httpx.post(web1.url + "/api/v1/blocklists/drop/run", headers=auth, timeout=10).status_code == 202
        wait_for(lambda: httpx.get(web2.url + "/api/v1/blocklists", headers=auth, timeout=10)
                 .json()["blocklists"][0]["runs"] == 2, timeout=20, what="the second run")
        assert [p for p, _ in lists.seen] == ["/list.txt"] * 2
        again = _mine(web1, auth)
        assert again["last_fleet_ban"] != record["last_fleet_ban"]
        wait_for(lambda: all(_mine(h, auth)["last_added"] is not None for h in fleet.hosts), timeout=20,
                 what="the second import applied on both hosts")
        assert [_mine(h, auth)["last_added"] for h in fleet.hosts] == [0, 0]  # banned already
    finally:
        dump(fleet)
        fleet.stop()
