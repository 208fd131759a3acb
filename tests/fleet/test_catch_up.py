"""Hosts that were not watching or not there: bans fail2ban made while a host's bangui was stopped are shared when
it starts (once), and a host joining the fleet gets the bans still in effect in bulk (issue 14)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet

pytestmark = pytest.mark.fleet


def _log(fleet: Fleet) -> list[dict[str, Any]]:
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in fleet.redis.client().xrange("bangui:fleet:log")]


def _entries_with(fleet: Fleet, ip: str) -> list[tuple[str, str]]:
    return [(e["kind"], e["source"]) for e in _log(fleet) if ip in json.loads(e["ips"])]


def _agents(fleet: Fleet, n: int) -> bool:
    client = fleet.redis.client()
    return bool(client.exists("bangui:fleet:log")) and len(client.xinfo_groups("bangui:fleet:log")) == n


def test_a_ban_fail2ban_made_while_the_hosts_bangui_was_stopped_is_shared_when_it_starts(
        shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents(shared_fleet, 3), timeout=20, what="3 agents")
    fleet_ip, missed_ip = "198.51.100.150", "198.51.100.151"
    r = httpx.post(h2.url + "/api/v1/fleet/bans", json={"ips": [fleet_ip], "jail": "sshd"},
                   headers=shared_fleet.headers(), timeout=10)
    assert r.status_code == 202, r.text
    wait_for(lambda: fleet_ip in h1.banned(), timeout=10, what="the fleet ban on web1")
    h1.server.stop()
    h1.fail2ban.append_failures("sshd", missed_ip, 3)  # nobody watches web1's fail2ban now
    wait_for(lambda: missed_ip in h1.banned(), timeout=10, what="fail2ban's own ban on web1")
    h1.server.start()
    wait_for(lambda: missed_ip in h2.banned() and missed_ip in h3.banned(), timeout=20,
             what="the ban made while web1's bangui was stopped, on web2 and web3")
    # once, and the fleet's own ban was not taken for web1's: a restart shares nothing again
    h1.server.stop()
    h1.server.start()
    wait_for(lambda: h1.server.output().count("fleet agent of host web1 started") >= 3, timeout=20,
             what="web1's third agent")
    time.sleep(1.0)  # ten looks of its watcher
    assert _entries_with(shared_fleet, missed_ip) == [("auto", "web1")]
    assert _entries_with(shared_fleet, fleet_ip) == [("ban", "web2")]
    item = wait_for(lambda: next(iter(httpx.get(h3.url + "/api/v1/history", params={"ip": missed_ip},
                                                headers=shared_fleet.headers(), timeout=10).json()["items"]), None),
                    what="web3's history of the shared ban")
    assert (item["origin"], item["source_host"]) == ("fleet", "web1")
