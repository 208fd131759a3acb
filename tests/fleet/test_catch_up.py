"""Hosts that were not watching or not there: bans fail2ban made while a host's bangui was stopped are shared when
it starts (once), and a host joining the fleet gets the bans still in effect in bulk (issue 14)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from tests.fixtures.fleet_watch import file_version, known_bans
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet, Host, add_host, dump, start_fleet

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


def test_a_new_host_applies_the_bans_still_in_effect_in_bulk_not_the_log_entry_by_entry(tmp_path: Path) -> None:
    from fleet.log import entry, publish_fleet_ban

    fleet = start_fleet(tmp_path, n=1)
    try:
        wait_for(lambda: _agents(fleet, 1), timeout=20, what="web1's agent")
        client = fleet.redis.client()
        auto = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(3000)]
        pipe = client.pipeline(transaction=False)
        old = entry("auto", "sshd", ["198.19.0.1"], "web1")
        old["at"] = repr(time.time() - 1200)  # sshd's bantime is 600 s: over everywhere
        pipe.xadd("bangui:fleet:log", old)
        for ip in auto:  # a week of web1's own bans in a shared jail, one log entry each
            pipe.xadd("bangui:fleet:log", entry("auto", "sshd", [ip], "web1"))
        pipe.xadd("bangui:fleet:log", entry("auto", "sshd", ["198.19.0.3"], "web2"))  # web2's own, from before
        pipe.execute()
        unban_all = publish_fleet_ban(client, "unban", "sshd", auto[:100], None, "web1", 168)  # cancels those
        # fleet bans for every host that no host can apply: one names loopback (a fleet ban by hand is all or
        # nothing on each host), one a jail no host has
        refused = publish_fleet_ban(client, "ban", "nginx-http-auth", ["198.19.3.1", "127.0.0.9"], None, "web1", 168)
        no_jail = publish_fleet_ban(client, "ban", "no-such-jail", ["198.19.4.1"], None, "web1", 168)
        for_web1 = publish_fleet_ban(client, "ban", "nginx-http-auth", ["198.19.0.2"], ["web1"], "web1", 168)
        everyone = [f"198.19.1.{i}" for i in range(1, 21)]
        for_all = publish_fleet_ban(client, "ban", "nginx-http-auth", everyone, None, "web1", 168)
        wait_for(lambda: client.hget(f"bangui:fleet:ban:{for_web1['id']}", "web1") != b'{"status": "pending", '
                 b'"error": null}', timeout=20, what="web1 through the log")

        web2 = add_host(fleet, tmp_path, 2)
        wanted = set(auto[100:])
        wait_for(lambda: web2.banned("sshd") == wanted and web2.banned("nginx-http-auth") == set(everyone),
                 timeout=60, what="the bans in effect on the new host")
        wait_for(lambda: _agents(fleet, 2), timeout=20, what="web2's consumer group")
        auth = fleet.headers()
        audit = httpx.get(web2.url + "/api/v1/audit", params={"action": "jail.ban", "outcome": "ok", "limit": 1000},
                          headers=auth, timeout=10).json()["items"]
        assert sorted((a["actor"], a["target"], a["details"]["count"]) for a in audit) == [
            ("fleet:web1", "nginx-http-auth", 20), ("fleet:web1", "sshd", 2900)]  # two calls, not 3,000
        # the joining host's status of the older fleet bans, as a host that was there when they were published
        # reports it (GET /fleet/bans/{id}); none for a fleet ban that named other hosts only
        def status(ban: dict[str, Any]) -> dict[str, Any]:
            return httpx.get(web2.url + f"/api/v1/fleet/bans/{ban['id']}", headers=auth, timeout=10).json()["hosts"]

        assert status(for_all)["web2"] == {"status": "applied", "error": None, "added": 20}
        assert status(unban_all)["web2"] == {"status": "applied", "error": None}
        assert "web2" not in status(for_web1)
        for ban, code in ((refused, "refused_address"), (no_jail, "jail_not_found")):
            hosts = status(ban)
            assert hosts["web2"] == hosts["web1"] and hosts["web2"]["status"] == "failed", hosts  # the same reason
            assert hosts["web2"]["error"].startswith(code + ": "), hosts
        assert "198.19.3.1" not in web2.banned("nginx-http-auth")  # nothing of the refused fleet ban
        stats = httpx.get(web2.url + "/api/v1/stats", params={"range": "24h"}, headers=auth, timeout=10).json()
        assert stats["by_origin"]["fleet"] == 2920
        r = httpx.get(web2.url + "/api/v1/history", params={"ip": "198.18.1.1"}, headers=auth, timeout=10)
        assert [(i["origin"], i["source_host"]) for i in r.json()["items"]] == [("fleet", "web1")]
        # and the log goes on from there, entry by entry
        fleet.hosts[0].fail2ban.append_failures("sshd", "198.19.2.1", 3)
        wait_for(lambda: "198.19.2.1" in web2.banned("sshd"), timeout=20, what="a new shared ban on web2")
    finally:
        dump(fleet)
        fleet.stop()


def test_a_host_that_was_down_catches_up_on_shared_bans_in_a_few_calls(shared_fleet: Fleet) -> None:
    from fleet.log import entry

    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents(shared_fleet, 3), timeout=20, what="3 agents")
    h3.server.stop()
    missed = [f"198.18.100.{i}" for i in range(1, 201)]
    pipe = shared_fleet.redis.client().pipeline(transaction=False)
    for ip in missed:  # web1's own bans while web3 was down, one log entry each
        pipe.xadd("bangui:fleet:log", entry("auto", "sshd", [ip], "web1"))
    pipe.execute()
    h3.server.start()
    wait_for(lambda: set(missed) <= h3.banned(), timeout=30, what="web3 caught up")
    audit = httpx.get(h3.url + "/api/v1/audit", params={"action": "jail.ban", "actor": "fleet:web1", "limit": 1000},
                      headers=shared_fleet.headers(), timeout=10).json()["items"]
    caught_up = [a for a in audit if set(a["details"]["ips"]) & set(missed)]
    assert sum(a["details"]["count"] for a in caught_up) == 200
    assert len(caught_up) <= 4, [a["details"]["count"] for a in caught_up]  # 50 log entries per call, not one each


def test_an_address_a_host_refuses_does_not_cost_it_the_other_shared_bans(shared_fleet: Fleet) -> None:
    from fleet.log import entry

    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents(shared_fleet, 3), timeout=20, what="3 agents")
    good = ["198.18.200.1", "198.18.200.2"]
    shared_fleet.redis.client().xadd("bangui:fleet:log", entry("auto", "sshd", [good[0], "127.0.0.5", good[1]],
                                                                "web1"))
    wait_for(lambda: set(good) <= h2.banned() and set(good) <= h3.banned(), timeout=20,
             what="the shared bans this host may apply")
    assert "127.0.0.5" not in h2.banned() | h3.banned()
    assert "refused here" in h2.server.output()


def _watch_file(host: Host) -> Path:
    return host.server.data_dir / "fleet-watch.json"


def test_a_burst_of_bans_saves_the_watchers_view_about_once_a_second_not_at_every_look(shared_fleet: Fleet) -> None:
    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents(shared_fleet, 3), timeout=20, what="3 agents")
    path = _watch_file(h1)
    versions: set[tuple[int, int] | None] = {file_version(path)}
    done = threading.Event()

    def watch_the_file() -> None:
        while not done.is_set():
            versions.add(file_version(path))
            time.sleep(0.002)

    burst = [f"198.18.150.{i}" for i in range(1, 61)]
    reader = threading.Thread(target=watch_the_file)
    reader.start()
    try:
        started = time.monotonic()
        for ip in burst:  # fail2ban's own bans, one every 50 ms: something new at nearly every look (0.1 s)
            code, result = sync_call(h1.fail2ban.socket, "set", "sshd", "banip", ip)
            assert code == 0, result
            time.sleep(0.05)
        wait_for(lambda: set(burst) <= h2.banned() and set(burst) <= known_bans(path), timeout=10,
                 what="the burst shared and saved")
        took = time.monotonic() - started
    finally:
        done.set()
        reader.join()
    saves = len(versions - {None}) - 1  # less the version from before the burst
    print(f"{saves} saves of {path.name} in {took:.1f} s of bans")
    assert 1 <= saves <= took + 2, saves  # at every look that saw a ban it was ~30


def test_after_a_crash_fleet_bans_stay_the_fleets_and_own_bans_shared_again_change_nothing(
        shared_fleet: Fleet) -> None:
    """The view is saved at most once a second: a crash loses what changed since. Bans the fleet applied are
    journaled before they reach fail2ban (never published as this host's own); this host's own bans of that
    second are shared again, and the other hosts find them banned already (no new history)."""
    h1, h2, h3 = shared_fleet.hosts
    wait_for(lambda: _agents(shared_fleet, 3), timeout=20, what="3 agents")
    path, auth = _watch_file(h1), shared_fleet.headers()
    mark, own, fleet_ip = "198.18.160.1", "198.18.160.2", "198.18.160.3"
    sync_call(h1.fail2ban.socket, "set", "sshd", "banip", mark)
    before = file_version(path)
    wait_for(lambda: file_version(path) != before and mark in known_bans(path), timeout=10, pause=0.005,
             what="a save of the view")  # the next one comes a second later at the earliest
    sync_call(h1.fail2ban.socket, "set", "sshd", "banip", own)
    r = httpx.post(h2.url + "/api/v1/fleet/bans", json={"ips": [fleet_ip], "jail": "sshd", "hosts": ["web1"]},
                   headers=auth, timeout=10)
    assert r.status_code == 202, r.text
    wait_for(lambda: own in h2.banned() and fleet_ip in h1.banned(), timeout=5, pause=0.01,
             what="web1's own ban shared and the fleet ban applied on web1")
    h1.server.signal_group(signal.SIGKILL)
    assert h1.server.proc is not None
    h1.server.proc.wait()
    print("crashed before saving web1's own ban" if own not in known_bans(path) else "saved before the crash (slow)")
    agents = h1.server.output().count("fleet agent of host web1 started")
    h1.server.start()
    wait_for(lambda: h1.server.output().count("fleet agent of host web1 started") > agents, timeout=20,
             what="web1's new agent")
    wait_for(lambda: own in known_bans(path), timeout=10, what="the new agent's view saved")
    time.sleep(0.5)
    assert _entries_with(shared_fleet, fleet_ip) == [("ban", "web2")]  # never taken for web1's own
    assert set(_entries_with(shared_fleet, own)) == {("auto", "web1")}  # once or twice
    for host in (h2, h3):
        assert own in host.banned()
        items = httpx.get(host.url + "/api/v1/history", params={"ip": own}, headers=auth, timeout=10).json()["items"]
        assert [(i["event"], i["origin"], i["source_host"]) for i in items] == [("ban", "fleet", "web1")], host.name
