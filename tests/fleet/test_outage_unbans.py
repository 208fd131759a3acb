"""An unban made on a host while Redis is away (issue 21 items 1 and 4): it applies here at once, and the fleet
unban that follows it waits in the host's outbox (the answer says `queued`) instead of being lost: when Redis
returns it is published, in order after the shared bans buffered before it, and lifts the address on the other
hosts. Before, the other hosts kept the ban until its bantime with nothing queued."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import dump, start_fleet, wait_replicated

pytestmark = pytest.mark.fleet
API = "/api/v1"


def test_an_unban_made_while_redis_is_away_reaches_the_other_hosts_when_it_returns(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, persist=True, n=2)
    h1, h2 = fleet.hosts
    try:
        admin = fleet.headers()
        assert httpx.post(h1.url + API + "/jails/sshd/bans", json={"ips": ["203.0.113.70"]}, headers=admin,
                          timeout=10).status_code == 200
        wait_for(lambda: "203.0.113.70" in h2.banned(), 20, "the shared ban on web2")
        wait_replicated(fleet, time.time())
        fleet.redis.stop()
        h1.fail2ban.append_failures("sshd", "203.0.113.71", 5)  # fail2ban's own ban: buffered in the outbox
        wait_for(lambda: "203.0.113.71" in h1.banned(), 20, "fail2ban's ban on web1")
        wait_for(lambda: (h1.server.data_dir / "fleet-outbox.jsonl").exists(), 20, "the ban in web1's outbox")
        for ip in ("203.0.113.70", "203.0.113.71"):
            r = httpx.delete(h1.url + API + f"/jails/sshd/bans/{ip}", headers=admin, timeout=10)
            assert r.status_code == 200, r.text
            (shared,) = r.json()["fleet"]
            assert shared["queued"] is True and shared["error"].startswith("fleet_unavailable"), shared
            assert ip not in h1.banned()
        assert "203.0.113.70" in h2.banned()  # Redis is away: nothing reached web2 yet
        fleet.redis.start()
        wait_for(lambda: "203.0.113.70" not in h2.banned(), 30, "the queued unban on web2")
        # the buffered ban was published before the unban that followed it: web2 does not keep it
        def events() -> list[str]:
            body = httpx.get(h2.url + API + "/ips/203.0.113.71", headers=admin, timeout=10).json()
            return [e["event"] for e in body["events"]]
        wait_for(lambda: "unban" in events(), 30, "the buffered ban, then its unban, on web2")
        assert "203.0.113.71" not in h2.banned() and events().count("ban") == 1, events()
        assert not (h1.server.data_dir / "fleet-outbox.jsonl").read_text().strip()
        audit = httpx.get(h2.url + API + "/audit", params={"action": "jail.unban", "actor": "fleet:web1"},
                          headers=admin, timeout=10).json()["items"]
        assert audit, "the followed unban in web2's audit"
    except BaseException:
        dump(fleet)
        raise
    finally:
        fleet.stop()
