"""Entries written into the fleet log by hand (anyone with the Redis password can): malformed ones (not JSON, a
string or numbers for `ips`, no jail, a bad time, unknown kinds, unhashable addresses) and huge ones are skipped
with a warning, and so are history requests pushed by hand; none crashes the agent (which would stop it applying
the fleet's bans and, read again from its pending list at each restart, forever); too wide a network is refused.
The entries after them still apply, on a host that was there and on one that joins later (its bulk catch-up reads
the same log)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import add_host, dump, start_fleet

pytestmark = pytest.mark.fleet
STREAM = "bangui:fleet:log"


def hostile() -> list[dict[str, str]]:
    base = {"kind": "auto", "id": "", "jail": "sshd", "hosts": "*", "source": "evil", "at": repr(time.time())}
    return [
        {**base, "ips": "not json ["},
        {**base, "ips": json.dumps("192.0.2.200")},  # a string: its characters would be "addresses"
        {**base, "ips": json.dumps([[1, 2], {"a": 1}, None, 7])},
        {**base, "ips": json.dumps({"192.0.2.201": 1})},
        {k: v for k, v in {**base, "ips": json.dumps(["192.0.2.202"])}.items() if k != "jail"},
        {**base, "ips": json.dumps(["192.0.2.203"]), "at": "yesterday"},
        {**base, "ips": json.dumps(["192.0.2.204"]), "jail": ["sshd"].__repr__()},
        {**base, "ips": json.dumps(["192.0.2.205"]), "hosts": "{not json"},
        {**base, "kind": "ban", "id": "x" * 5000, "ips": json.dumps(["192.0.2.206"]), "hosts": json.dumps("web1")},
        {**base, "kind": "explode", "ips": json.dumps(["192.0.2.207"])},
        {**base, "ips": json.dumps(["0.0.0.0/0", "::/0", "not-an-ip", "192.0.2.300"])},
        {**base, "kind": "unban", "ips": json.dumps(["0.0.0.0/0"])},
        {**base, "ips": json.dumps(["192.0.2.208", "1" * 11_000_000])},  # over twice BANGUI_BLOCKLIST_MAX_BYTES
        {**base, "ips": json.dumps(["a" * 1_000_000, "192.0.2.209"])},  # screened address by address
    ]


def test_hostile_entries_in_the_fleet_log_are_skipped_and_the_agent_goes_on(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, n=1)
    try:
        (h1,) = fleet.hosts
        client = fleet.redis.client()
        wait_for(lambda: client.exists(STREAM) and len(client.xinfo_groups(STREAM)) == 1, 20, "web1's agent")
        for item in hostile():
            client.xadd(STREAM, item)
        for request in ("not json", "[1, 2]", json.dumps({"deadline": "soon"}), json.dumps({"deadline": 4e9}),
                        json.dumps({"deadline": 4e9, "filters": [], "reply": "x"})):  # history requests by hand
            client.rpush("bangui:fleet:rpc:web1", request)
        client.xadd(STREAM, {"kind": "auto", "id": "", "jail": "sshd", "ips": json.dumps(["192.0.2.250"]),
                             "hosts": "*", "source": "web9", "at": repr(time.time())})
        wait_for(lambda: "192.0.2.250" in h1.banned(), 60, "the entry after the hostile ones on web1")
        h2 = add_host(fleet, tmp_path, 2)  # joins: its bulk catch-up folds the same log
        wait_for(lambda: "192.0.2.250" in h2.banned(), 60, "the same entry on web2, which joined later")
        for host in (h1, h2):
            banned = host.banned()
            assert not banned & {"0.0.0.0/0", "::/0", "192.0.2.200", "192.0.2.202", "192.0.2.205"}, host.name
            assert "192.0.2.208" not in banned and "192.0.2.209" in banned, host.name
            hosts = httpx.get(host.url + "/api/v1/fleet/hosts", headers=fleet.headers(), timeout=10).json()
            assert {h["name"]: h["status"] for h in hosts["hosts"]}[host.name] == "up"
        assert "skipped a malformed fleet log entry" in h1.server.output()
        assert "dropped a malformed history request" in h1.server.output()
        assert "job fleet failed" not in h1.server.output()  # the agent never ended
        assert h1.server.output().count("fleet agent of host web1 started") == 1
        longest = max(len(line) for host in (h1, h2) for line in host.server.output().splitlines())
        assert longest < 2000  # a hostile address is never written out whole
    except BaseException:
        dump(fleet)
        raise
    finally:
        fleet.stop()
