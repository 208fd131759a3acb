"""CrowdSec bouncers through a Redis outage (issues 21 and 22): a poll is a read, so it is answered from the host's
view while Redis is away, past the few seconds after which a poll is noted in the bouncer's record (a write the
replica refuses: every poll used to be a 503 from then on); a bouncer that moves to another host then is resynced
there once, not at every poll. And a host record written into Redis by hand does not make /fleet/hosts a 500."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import dump, start_fleet, wait_replicated

pytestmark = pytest.mark.fleet
API = "/api/v1"
REFRESH_AFTER_S = 5.0  # store/bouncers.py: a poll is written into the bouncer's record at most this often


def test_bouncers_are_answered_through_a_redis_outage_and_resynced_once_on_another_host(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, persist=True, n=2)
    h1, h2 = fleet.hosts
    try:
        admin = fleet.headers()
        made = httpx.post(h1.url + API + "/bouncers", json={"name": "edge"}, headers=admin, timeout=10)
        key = {"X-Api-Key": made.json()["api_key"], "User-Agent": "crowdsec-custom-bouncer/-"}

        def poll(host_url: str, startup: bool = False) -> dict[str, set[str] | None]:
            r = httpx.get(host_url + f"/v1/decisions/stream?startup={str(startup).lower()}", headers=key, timeout=10)
            assert r.status_code == 200, r.text
            return {part: None if r.json()[part] is None else {d["value"] for d in r.json()[part]}
                    for part in ("new", "deleted")}

        client = fleet.redis.client()
        client.sadd("bangui:fleet:hosts", "evil", "evil2")
        client.set("bangui:fleet:host:evil", "not json {")
        client.set("bangui:fleet:host:evil2", json.dumps({"name": "evil2"}))  # no last_seen
        hosts = httpx.get(h1.url + API + "/fleet/hosts", headers=admin, timeout=10)
        assert hosts.status_code == 200, hosts.text
        assert {h["name"] for h in hosts.json()["hosts"]} == {"web1", "web2"}

        assert httpx.post(h1.url + API + "/jails/sshd/bans", json={"ips": ["203.0.113.59"]}, headers=admin,
                          timeout=10).status_code == 200  # a shared jail: on web2 too
        wait_for(lambda: httpx.get(h2.url + "/v1/decisions?ip=203.0.113.59", headers=key, timeout=10).json(), 20,
                 "the shared ban among web2's decisions")
        poll(h1.url, startup=True)
        wait_replicated(fleet, time.time())
        fleet.redis.stop()
        assert httpx.post(h1.url + API + "/jails/sshd/bans", json={"ips": ["203.0.113.60"]}, headers=admin,
                          timeout=10).status_code == 200
        seen: set[str] = set()
        stopped = time.monotonic()
        while time.monotonic() - stopped < REFRESH_AFTER_S + 2:  # every poll answers, also past REFRESH_AFTER_S
            seen |= poll(h1.url)["new"] or set()
            time.sleep(0.5)
        assert "203.0.113.60" in seen
        moved = poll(h2.url)  # its record still says web1: a resync here
        assert moved["new"] is not None and "203.0.113.59" in moved["new"]
        assert poll(h2.url) == {"new": None, "deleted": None}  # once, not at every poll until Redis returns
        fleet.redis.start()
        wait_for(lambda: poll(h2.url) is not None and httpx.get(h2.url + API + "/bouncers", headers=admin,
                                                                 timeout=10).status_code == 200, 20, "Redis back")
    except BaseException:
        dump(fleet)
        raise
    finally:
        fleet.stop()
