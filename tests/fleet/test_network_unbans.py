"""Issue 18 §5 in a real fleet (redis-server, 3 fail2ban servers, 3 bangui servers): a fleet unban of too wide a
network is refused when published and, written into the log by hand, fails on every host with nothing lifted; an
allowed network lifts and records each ban inside it on each host, with the count in each host's status."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from fleet.log import publish_fleet_ban
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet

pytestmark = pytest.mark.fleet
JAIL = "nginx-http-auth"
INSIDE = ["198.51.100.7", "198.51.100.9", "198.51.100.128/25"]
OUTSIDE = ["192.0.2.77"]


def _settled(fleet: Fleet, ban_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        hosts = httpx.get(fleet.hosts[0].url + f"/api/v1/fleet/bans/{ban_id}", headers=fleet.headers(),
                          timeout=10).json()["hosts"]
        return hosts if all(v["status"] != "pending" for v in hosts.values()) else None
    return wait_for(done, timeout=30, what=f"fleet ban {ban_id} on every host")  # type: ignore[no-any-return]


def _publish(fleet: Fleet, kind: str, ips: list[str]) -> httpx.Response:
    return httpx.post(fleet.hosts[0].url + f"/api/v1/fleet/{kind}", json={"ips": ips, "jail": JAIL},
                      headers=fleet.headers(), timeout=30)


def test_fleet_unbans_of_networks_refuse_the_too_wide_and_record_each_ban_lifted(shared_fleet: Fleet) -> None:
    r = _publish(shared_fleet, "bans", INSIDE + OUTSIDE)
    assert r.status_code == 202, r.text
    _settled(shared_fleet, r.json()["id"])

    refused = _publish(shared_fleet, "unbans", ["0.0.0.0/0"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "refused_address"), refused.text
    assert "limit" in refused.json()["error"]["message"]

    by_hand = publish_fleet_ban(shared_fleet.redis.client(), "unban", JAIL, ["0.0.0.0/0"], None, "web1", 24)
    hosts = _settled(shared_fleet, by_hand["id"])
    assert {h: (v["status"], v["error"].split(":")[0]) for h, v in hosts.items()} == {
        h.name: ("failed", "refused_address") for h in shared_fleet.hosts}
    for host in shared_fleet.hosts:
        assert set(INSIDE + OUTSIDE) <= host.banned(JAIL), host.name  # nothing lifted

    r = _publish(shared_fleet, "unbans", ["198.51.100.0/24"])
    assert r.status_code == 202, r.text
    hosts = _settled(shared_fleet, r.json()["id"])
    assert {h: (v["status"], v.get("unbanned")) for h, v in hosts.items()} == {
        h.name: ("applied", 3) for h in shared_fleet.hosts}
    for host in shared_fleet.hosts:
        assert not set(INSIDE) & host.banned(JAIL) and set(OUTSIDE) <= host.banned(JAIL), host.name
        for ip in INSIDE:
            body = httpx.get(host.url + f"/api/v1/ips/{ip}", headers=shared_fleet.headers(), timeout=10).json()
            assert not body["banned_now"] and [e["event"] for e in body["events"]].count("unban") == 1, (host.name, ip)
        audit = httpx.get(host.url + "/api/v1/audit", params={"action": "jail.unban_many", "actor": "fleet:web1"},
                          headers=shared_fleet.headers(), timeout=10).json()["items"]
        assert [a["details"]["unbanned"] for a in audit if a["outcome"] == "ok"] == [3], host.name
