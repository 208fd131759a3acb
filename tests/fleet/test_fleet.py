"""Fleet mode's proofs (issue 14) against real parts: redis-server, 3 fail2ban servers, 3 bangui servers."""

from __future__ import annotations

import concurrent.futures
import ipaddress
import time

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import LOGIN, Fleet

pytestmark = pytest.mark.fleet


def test_token_made_on_one_host_works_everywhere_and_revocation_too(shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    cookie = httpx.post(h1.url + "/api/v1/auth/login", json=LOGIN, timeout=10).cookies
    made = httpx.post(h1.url + "/api/v1/tokens", json={"name": "roam", "role": "viewer"}, cookies=cookie, timeout=10)
    token, token_id = made.json()["token"], made.json()["id"]
    auth = {"Authorization": f"Bearer {token}"}
    assert [httpx.get(h.url + "/api/v1/jails", headers=auth, timeout=10).status_code for h in (h1, h2, h3)] == [200] * 3
    revoked = httpx.delete(h3.url + f"/api/v1/tokens/{token_id}", headers=shared_fleet.headers(), timeout=10)
    assert revoked.status_code == 204, revoked.text
    assert [httpx.get(h.url + "/api/v1/jails", headers=auth, timeout=10).status_code for h in (h1, h2, h3)] == [401] * 3


def test_concurrent_wrong_logins_across_hosts_admit_exactly_five(shared_fleet: Fleet) -> None:
    urls = [h.url for h in shared_fleet.hosts]

    def attempt(i: int) -> int:
        return httpx.post(urls[i % 3] + "/api/v1/auth/login", json={"username": "admin", "password": f"wrong {i}"},
                          timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(attempt, range(30)))
    assert codes.count(401) == 5 and codes.count(429) == 25, codes


def test_hosts_and_health(shared_fleet: Fleet) -> None:
    h1 = shared_fleet.hosts[0]
    hosts = wait_for(lambda: (r := httpx.get(h1.url + "/api/v1/fleet/hosts", headers=shared_fleet.headers(),
                                              timeout=10).json()["hosts"]) and len(r) == 3 and r, what="3 hosts")
    assert [(h["name"], h["status"]) for h in hosts] == [("web1", "up"), ("web2", "up"), ("web3", "up")]
    hosts = wait_for(lambda: (r := httpx.get(h1.url + "/api/v1/fleet/hosts", headers=shared_fleet.headers(),
                                              timeout=10).json()["hosts"]) and all(h["fail2ban"]["reachable"] for h in r)
                     and r, what="every host's fail2ban snapshot published")  # the snapshot job runs every 5 s
    assert all("sshd" in {j["name"] for j in h["jails"]} for h in hosts)
    health = wait_for(lambda: (b := httpx.get(h1.url + "/api/v1/health", headers=shared_fleet.headers(),
                                              timeout=10).json())["fleet"]["leader"] and b, what="a fleet leader")
    assert health["fleet"]["connected"] is True and health["fleet"]["leader"] in {"web1", "web2", "web3"}


def test_automatic_ban_in_a_shared_jail_reaches_the_other_hosts(shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents_ready(shared_fleet), what="fleet agents")
    h1.fail2ban.append_failures("sshd", "203.0.113.77", 3)
    wait_for(lambda: "203.0.113.77" in h1.banned(), timeout=10, what="fail2ban's own ban on web1")
    seen = time.monotonic()
    wait_for(lambda: "203.0.113.77" in h2.banned() and "203.0.113.77" in h3.banned(), timeout=5,
             pause=0.01, what="the ban on web2 and web3")
    print(f"propagated {time.monotonic() - seen:.3f} s after web1's ban was seen")
    time.sleep(1.0)  # a propagated ban is never propagated again (no loops)
    log = shared_fleet.redis.client().xrange("bangui:fleet:log")
    assert [f[b"source"] for _, f in log if b"203.0.113.77" in f[b"ips"]] == [b"web1"]


def test_fleet_ban_of_1000_addresses_reaches_every_host(shared_fleet: Fleet) -> None:
    ips = [str(ipaddress.ip_address("198.51.100.0") + i) for i in range(250)] + \
          [str(ipaddress.ip_address("203.0.113.0") + i) for i in range(250)] + \
          [f"2001:db8::{i:x}" for i in range(1, 501)]
    h1 = shared_fleet.hosts[0]
    r = httpx.post(h1.url + "/api/v1/fleet/bans", json={"ips": ips, "jail": "nginx-http-auth"},
                   headers=shared_fleet.headers(), timeout=30)
    assert r.status_code == 202, r.text
    assert r.json()["hosts"] == ["web1", "web2", "web3"]
    ban_id = r.json()["id"]

    def done() -> dict[str, dict[str, str]] | None:
        status = httpx.get(h1.url + f"/api/v1/fleet/bans/{ban_id}", headers=shared_fleet.headers(), timeout=10)
        hosts = status.json()["hosts"]
        return hosts if all(v["status"] != "pending" for v in hosts.values()) else None

    hosts = wait_for(done, timeout=30, what="the fleet ban applied on every host")
    assert {h: v["status"] for h, v in hosts.items()} == {"web1": "applied", "web2": "applied", "web3": "applied"}
    for host in shared_fleet.hosts:
        assert set(ips) <= {str(ipaddress.ip_address(a)) for a in host.banned("nginx-http-auth")}
    # and a fleet unban of 300 of them, on two hosts only
    r = httpx.post(h1.url + "/api/v1/fleet/unbans", json={"ips": ips[:300], "jail": "nginx-http-auth",
                                                           "hosts": ["web2", "web3"]},
                   headers=shared_fleet.headers(), timeout=30)
    assert r.status_code == 202 and r.json()["hosts"] == ["web2", "web3"], r.text
    unban_id = r.json()["id"]
    wait_for(lambda: all(v["status"] == "applied" for v in httpx.get(
        h1.url + f"/api/v1/fleet/bans/{unban_id}", headers=shared_fleet.headers(), timeout=10).json()["hosts"].values()),
        timeout=30, what="the fleet unban applied")
    h1_, h2, h3 = shared_fleet.hosts
    assert not set(ips[:300]) & (h2.banned("nginx-http-auth") | h3.banned("nginx-http-auth"))
    assert set(ips[:300]) <= h1_.banned("nginx-http-auth")  # not a target
    audit = httpx.get(h2.url + "/api/v1/audit", params={"action": "jail.unban", "actor": "fleet:web1"},
                      headers=shared_fleet.headers(), timeout=10).json()["items"]
    assert [(a["action"], a["details"]["count"], a["details"]["unbanned"]) for a in audit] == [
        ("jail.unban_many", 300, 300)]  # one fail2ban call and one audit entry, not 300


def test_fleet_routes_check_their_input(shared_fleet: Fleet) -> None:
    h1 = shared_fleet.hosts[0]
    r = httpx.post(h1.url + "/api/v1/fleet/bans", json={"ips": ["198.51.100.1"], "jail": "sshd", "hosts": ["nope"]},
                   headers=shared_fleet.headers(), timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "unknown_host")
    r = httpx.get(h1.url + "/api/v1/fleet/bans/nope", headers=shared_fleet.headers(), timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "fleet_ban_not_found")


def _agents_ready(fleet: Fleet) -> bool:
    groups = fleet.redis.client().xinfo_groups("bangui:fleet:log") if fleet.redis.client().exists("bangui:fleet:log") else []
    return len(groups) == len(fleet.hosts)


def test_history_of_another_host_through_redis(shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    h1.fail2ban.append_failures("sshd", "203.0.113.88", 3)
    wait_for(lambda: "203.0.113.88" in h2.banned(), timeout=10, what="the shared ban on web2")

    def page(host: str) -> dict:  # type: ignore[type-arg]
        r = httpx.get(h1.url + "/api/v1/history", params={"host": host, "ip": "203.0.113.88"},
                      headers=shared_fleet.headers(), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    item = wait_for(lambda: next(iter(page("web2")["items"]), None), what="web2's history of the shared ban")
    assert (item["host"], item["event"], item["actor"]) == ("web2", "ban", "fleet:web1")
    assert (item["origin"], item["source_host"]) == ("fleet", "web1")
    everywhere = wait_for(lambda: (p := page("*")) and {i["host"] for i in p["items"]} >= {"web2", "web3"} and p,
                          what="the ban in every host's history")
    assert everywhere["unreachable"] == []
    r = httpx.get(h1.url + "/api/v1/history", params={"host": "ghost"}, headers=shared_fleet.headers(), timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (504, "host_unreachable")


def test_fleet_bans_and_unbans_are_in_each_hosts_history_as_origin_fleet_with_the_source_host(
        shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    ip = "192.0.2.201"  # not among the addresses the tests above ban
    for kind in ("bans", "unbans"):
        r = httpx.post(h2.url + f"/api/v1/fleet/{kind}", json={"ips": [ip], "jail": "nginx-http-auth"},
                       headers=shared_fleet.headers(), timeout=10)
        assert r.status_code == 202, r.text
        wait_for(lambda r=r: all(v["status"] == "applied" for v in httpx.get(
            h1.url + f"/api/v1/fleet/bans/{r.json()['id']}", headers=shared_fleet.headers(),
            timeout=10).json()["hosts"].values()), timeout=30, what=f"the fleet {kind} applied")
    for host in (h1, h2, h3):
        items = httpx.get(host.url + "/api/v1/history", params={"ip": ip, "origin": "fleet"},
                          headers=shared_fleet.headers(), timeout=10).json()["items"]
        assert [(i["event"], i["origin"], i["source_host"], i["actor"]) for i in items] == [
            ("unban", "fleet", "web2", "fleet:web2"), ("ban", "fleet", "web2", "fleet:web2")], host.name
        assert httpx.get(host.url + "/api/v1/history", params={"ip": ip, "origin": "manual"},
                         headers=shared_fleet.headers(), timeout=10).json()["items"] == []


def test_an_unban_of_a_shared_ban_on_any_host_is_shared_unless_local(shared_fleet: Fleet) -> None:
    """Issue 21 item 4: a false positive unbanned on one host is gone everywhere the fleet put it."""
    h1, h2, h3 = shared_fleet.hosts
    followed, kept = "203.0.113.71", "203.0.113.72"
    for ip in (followed, kept):
        h1.fail2ban.append_failures("sshd", ip, 3)
    wait_for(lambda: {followed, kept} <= h2.banned() and {followed, kept} <= h3.banned(), timeout=15,
             what="web1's shared bans everywhere")
    r = httpx.delete(h2.url + f"/api/v1/jails/sshd/bans/{followed}", headers=shared_fleet.headers(), timeout=10)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["applies"] == "fleet" and [f["hosts"] for f in answer["fleet"]] == [["web1", "web3"]]
    wait_for(lambda: followed not in h1.banned() and followed not in h3.banned(), timeout=15,
             what="the unban on web1 and web3")
    status = httpx.get(h2.url + f"/api/v1/fleet/bans/{answer['fleet'][0]['id']}", headers=shared_fleet.headers(),
                       timeout=10).json()["hosts"]
    assert status["web1"]["status"] == "applied" and status["web1"]["unbanned"] == 1
    items = httpx.get(h3.url + "/api/v1/history", params={"ip": followed, "event": "unban"},
                      headers=shared_fleet.headers(), timeout=10).json()["items"]
    assert [(i["actor"], i["origin"], i["source_host"]) for i in items] == [("fleet:web2", "fleet", "web2")]
    r = httpx.request("DELETE", h2.url + f"/api/v1/jails/sshd/bans/{kept}", json={"local": True},
                      headers=shared_fleet.headers(), timeout=10)
    assert r.status_code == 200 and (r.json()["applies"], r.json()["fleet"]) == ("here", None), r.text
    assert kept not in h2.banned() and kept in h1.banned() and kept in h3.banned()
    r = httpx.request("DELETE", h2.url + f"/api/v1/jails/sshd/bans/{kept}", json={"local": "yes"},
                      headers=shared_fleet.headers(), timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_body")


def test_a_fleet_unban_says_not_banned_on_a_host_that_had_no_such_ban(shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    ip = "192.0.2.202"
    r = httpx.post(h1.url + "/api/v1/fleet/bans", json={"ips": [ip], "jail": "nginx-http-auth", "hosts": ["web1"]},
                   headers=shared_fleet.headers(), timeout=10)
    assert r.status_code == 202, r.text
    wait_for(lambda: ip in h1.banned("nginx-http-auth"), timeout=15, what="the fleet ban on web1")
    r = httpx.post(h1.url + "/api/v1/fleet/unbans", json={"ips": [ip], "jail": "nginx-http-auth"},
                   headers=shared_fleet.headers(), timeout=10)
    assert r.status_code == 202, r.text

    def statuses() -> dict:  # type: ignore[type-arg]
        return httpx.get(h1.url + f"/api/v1/fleet/bans/{r.json()['id']}", headers=shared_fleet.headers(),
                         timeout=10).json()["hosts"]

    done = wait_for(lambda: (s := statuses()) and all(v["status"] != "pending" for v in s.values()) and s,
                    timeout=30, what="the fleet unban done everywhere")
    assert done["web1"] == {"status": "applied", "error": None, "unbanned": 1}
    assert done["web2"] == done["web3"] == {"status": "not_banned", "error": None, "unbanned": 0}
