"""Redis away or restarted empty: every host goes on serving from its replica of the fleet's identity, refuses
identity changes, says so in health, and an empty Redis gets the newest replica back (issue 21 item 1). Real
redis-server, fail2ban servers and `bangui serve` processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import LOGIN, dump, fleet_health, start_fleet, wait_replicated
from tests.fleet.test_faults import outboxed

pytestmark = pytest.mark.fleet
API = "/api/v1"


def test_with_redis_stopped_every_host_serves_from_its_replica_and_refuses_identity_changes(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, persist=True, n=2)
    h1, h2 = fleet.hosts
    try:
        admin = fleet.headers()
        doomed = httpx.post(h1.url + API + "/tokens", json={"name": "doomed", "role": "viewer"}, headers=admin,
                            timeout=10).json()
        assert httpx.delete(h2.url + API + f"/tokens/{doomed['id']}", headers=admin, timeout=10).status_code == 204
        wait_replicated(fleet, time.time())
        fleet.redis.stop()
        started = time.monotonic()
        for host in (h1, h2):
            r = httpx.get(host.url + API + "/jails", headers=admin, timeout=10)
            assert r.status_code == 200, r.text
            assert httpx.get(host.url + API + "/users", headers=admin, timeout=10).json()["users"][0]["name"] == "admin"
            gone = httpx.get(host.url + API + "/jails", headers={"Authorization": f"Bearer {doomed['token']}"},
                             timeout=10)
            assert gone.status_code == 401  # revoked before the outage: still revoked
            for method, path, body in (("POST", "/users", {"username": "bob", "password": "x" * 16, "role": "viewer"}),
                                       ("POST", "/tokens", {"name": "new", "role": "viewer"}),
                                       ("PATCH", "/users/admin", {"password": "y" * 16}),
                                       ("DELETE", "/auth/sessions", None)):
                refused = httpx.request(method, host.url + API + path, json=body, headers=admin, timeout=10)
                assert (refused.status_code, refused.json()["error"]["code"]) == (503, "fleet_unavailable"), path
                assert refused.headers["retry-after"] == "1", path
            ban = httpx.post(host.url + API + "/jails/sshd/bans", json={"ips": ["203.0.113.40"]}, headers=admin,
                             timeout=10)
            assert ban.status_code == 200, ban.text  # a local action, as on a single host
            ready = httpx.get(host.url + API + "/health/ready", timeout=10)
            fleet_state = ready.json()["fleet"]
            assert ready.status_code == 200 and fleet_state["connected"] is False
            assert fleet_state["status"] == "degraded" and fleet_state["since"] is not None
            assert fleet_state["replica_age_s"] is not None and fleet_state["replica_refreshed"] is not None
            assert fleet_health(host, admin)["status"] == "degraded"
        print(f"reads, refusals and a local ban on 2 hosts with Redis down: {time.monotonic() - started:.2f} s")
        login = httpx.post(h1.url + API + "/auth/login", json=LOGIN, timeout=10)
        assert login.status_code == 200, login.text  # against the replica's hash
        session = httpx.get(h1.url + API + "/auth/session", cookies=login.cookies, timeout=10)
        assert session.status_code == 200 and session.json()["username"] == "admin"
        wrong = dict(LOGIN, password="not the password at all")
        codes = [httpx.post(h2.url + API + "/auth/login", json=wrong, timeout=10).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]  # the host-local limiter (BANGUI_LOGIN_MAX_FAILURES 5 by default)
        fleet.redis.start()
        wait_for(lambda: all(fleet_health(h, admin)["status"] == "ok" for h in (h1, h2)), timeout=20,
                 what="both hosts back on Redis")
        # the outage's login, made on web1, is a fleet session now (written to Redis when it returned)
        wait_for(lambda: httpx.get(h2.url + API + "/auth/session", cookies=login.cookies, timeout=10).status_code
                 == 200, timeout=20, what="web1's outage login valid on web2")

        def token_made() -> bool:
            made = httpx.post(h2.url + API + "/tokens", json={"name": "after", "role": "viewer"}, headers=admin,
                              timeout=10)
            # a worker that met a slow reply just now keeps off Redis for a second, and says when to retry
            assert made.status_code == 201 or (made.status_code == 503 and made.headers["retry-after"] == "1"), made.text
            return made.status_code == 201

        wait_for(token_made, timeout=5, pause=0.5, what="an identity change accepted again")
    finally:
        dump(fleet)
        fleet.stop()


def test_redis_restarted_empty_gets_the_fleets_identity_back_and_each_outbox_ban_once(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, persist=False, n=2)
    h1, h2 = fleet.hosts
    client = fleet.redis.client()
    try:
        wait_for(lambda: client.exists("bangui:fleet:log") and len(client.xinfo_groups("bangui:fleet:log")) == 2,
                 timeout=20, what="2 agents")
        h1.fail2ban.append_failures("sshd", "198.51.100.41", 3)  # shared before the outage
        wait_for(lambda: "198.51.100.41" in h2.banned(), timeout=10, what="the first ban on web2")
        wait_replicated(fleet, time.time())
        fleet.redis.stop()
        h1.fail2ban.append_failures("sshd", "198.51.100.42", 3)  # during it: into web1's outbox
        wait_for(lambda: "198.51.100.42" in outboxed(h1), timeout=20, what="the outbox")
        fleet.redis.start()  # empty: no AOF, no RDB
        for host in (h1, h2):  # the same token as before the restart, on every host
            wait_for(lambda host=host: httpx.get(host.url + API + "/jails", headers=fleet.headers(),
                                                 timeout=10).status_code == 200, timeout=30,
                     what=f"the fleet's token accepted again on {host.name}")
        assert httpx.get(h2.url + API + "/setup", timeout=10).json() == {"complete": True}

        def reseeds() -> list[dict[str, Any]]:
            return [e for h in (h1, h2) for e in httpx.get(h.url + API + "/audit?action=fleet.identity_reseed",
                                                           headers=fleet.headers(), timeout=10).json()["items"]]

        wait_for(lambda: client.exists("bangui:identity:epoch") and reseeds(), timeout=30,
                 what="a host's replica written back")
        assert client.exists("bangui:kv:user:admin")
        written = reseeds()
        assert len(written) == 1 and written[0]["outcome"] == "ok", written  # once, by one host
        assert any("wrote this host's replica of the fleet's identity back" in h.server.output() for h in (h1, h2))
        wait_for(lambda: "198.51.100.42" in h2.banned(), timeout=20, what="the outbox's ban on web2")
        published = [ip for _, f in client.xrange("bangui:fleet:log") for ip in json.loads(f[b"ips"])]
        assert sorted(published) == ["198.51.100.41", "198.51.100.42"]  # each once
    finally:
        dump(fleet)
        fleet.stop()
