"""Fleet mode under faults: a host name taken twice, the fleet leader killed, Redis away for 20 s."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from fleet.lease import Lease
from tests.fixtures.processes import ServerProcess
from tests.fixtures.redis import RedisServer
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet, Host, wait_replicated

pytestmark = pytest.mark.fleet


def test_a_second_server_under_a_taken_host_name_refuses_to_start(shared_fleet: Fleet, tmp_path: Path) -> None:
    h1 = shared_fleet.hosts[0]
    twin = ServerProcess(tmp_path / "twin", h1.fail2ban, 1, tmp_path,
                         env={"BANGUI_FLEET_URL": shared_fleet.redis.url, "BANGUI_HOST_NAME": "web1"})
    with pytest.raises(RuntimeError, match="already used by another running bangui"):
        twin.start()


def test_cli_beside_its_own_server_works_on_the_fleet_store(shared_fleet: Fleet) -> None:
    import subprocess
    import sys

    h2 = shared_fleet.hosts[1]
    env = dict(h2.server.env, BANGUI_DATA_DIR=str(h2.server.data_dir))
    out = subprocess.run([sys.executable, "-m", "cli", "user", "list"], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == 0 and "admin" in out.stdout, out.stderr


def test_fencing_refuses_a_deposed_leaders_writes(redis_server: RedisServer) -> None:
    import redis.asyncio

    async def main() -> None:
        ra, rb = (redis.asyncio.Redis.from_url(redis_server.url) for _ in range(2))
        clock = [0.0]
        old = Lease(ra, "web1", lease_s=0.3, clock=lambda: clock[0])
        assert await old.step() and old.acting()
        clock[0] = 0.2  # half the lease passed without a renewal: the holder stops acting by itself
        assert not old.acting()
        await anyio.sleep(0.4)  # the lease expired in Redis
        new = Lease(rb, "web2", lease_s=5)
        assert await new.step() and new.token is not None and new.token > (old.token or 0)
        assert await old.fenced_trim("bangui:fleet:log", "0-0") == -1  # Redis refuses the old token
        assert not await old.step() or old.token != new.token  # its renewal fails; it claims nothing
        assert await new.fenced_trim("bangui:fleet:log", "0-0") >= 0
        # a fleet job's publication (a fleet blocklist): statuses and log entry, or nothing at all
        item = {"kind": "ban", "jail": "sshd", "ips": '["192.0.2.1"]', "list": "drop"}
        assert not await old.fenced_publish("bangui:fleet:log", "bangui:fleet:ban:x", {"web1": "pending"}, item,
                                            "0-0", 60)
        assert await rb.xlen("bangui:fleet:log") == 0 and not await rb.exists("bangui:fleet:ban:x")
        assert await new.fenced_publish("bangui:fleet:log", "bangui:fleet:ban:y", {"web1": "pending", "web2": "pending"},
                                        item, "0-0", 60)
        [(_, fields)] = await rb.xrange("bangui:fleet:log")
        assert fields[b"list"] == b"drop" and await rb.hgetall("bangui:fleet:ban:y") == {
            b"web1": b"pending", b"web2": b"pending"}
        assert 0 < await rb.ttl("bangui:fleet:ban:y") <= 60
        await ra.aclose()
        await rb.aclose()

    anyio.run(main)


def _lease(fleet: Fleet) -> str | None:
    raw = fleet.redis.client().get("bangui:fleet:leader")
    return raw.decode() if raw else None


def test_killing_the_fleet_leader_hands_the_lease_over(fresh_fleet: Fleet) -> None:
    lease = wait_for(lambda: _lease(fresh_fleet), timeout=20, what="a fleet leader")
    name, _, token = lease.rpartition(":")
    leader = next(h for h in fresh_fleet.hosts if h.name == name)
    health = httpx.get(leader.url + "/api/v1/health", headers=fresh_fleet.headers(), timeout=10).json()
    os.kill(health["leader"]["pid"], signal.SIGKILL)  # the host leader: it runs that host's fleet agent
    killed = time.monotonic()
    new = wait_for(lambda: (v := _lease(fresh_fleet)) and v != lease and v, timeout=15, pause=0.05,
                   what="another fleet leader")
    print(f"new fleet leader {new} after {time.monotonic() - killed:.2f} s (lease 1 s)")
    assert int(new.rpartition(":")[2]) > int(token)


def outboxed(host: Host) -> set[str]:
    """The addresses waiting in the host's outbox (fleet/outbox.py) for Redis to return."""
    path = host.server.data_dir / "fleet-outbox.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return {ip for line in lines if line.strip() for ip in json.loads(json.loads(line).get("ips", "[]"))}


def test_redis_away_during_automatic_bans_loses_none_and_publishes_each_once(fresh_fleet: Fleet) -> None:
    hosts = fresh_fleet.hosts
    wait_for(lambda: len(fresh_fleet.redis.client().xinfo_groups("bangui:fleet:log")) == 3
             if fresh_fleet.redis.client().exists("bangui:fleet:log") else False, timeout=20, what="3 agents")
    wait_replicated(fresh_fleet, time.time())
    fresh_fleet.redis.stop()
    stopped = time.monotonic()
    started = time.monotonic()
    r = httpx.get(hosts[1].url + "/api/v1/jails", headers=fresh_fleet.headers(), timeout=10)
    print(f"authenticated request with Redis down: {r.status_code} in {time.monotonic() - started:.3f} s")
    assert r.status_code == 200, r.text  # served from the host's replica of the fleet's identity (issue 21)
    ready = httpx.get(hosts[1].url + "/api/v1/health/ready", timeout=10).json()
    assert ready["fleet"]["status"] == "degraded" and ready["fail2ban"]["reachable"] is True
    ips = {0: [f"198.51.100.{i}" for i in range(10, 14)], 1: [f"198.51.100.{i}" for i in range(20, 24)]}
    for step in range(4):  # automatic bans on web1 and web2 while Redis is away, one after the other
        for h, batch in ips.items():
            hosts[h].fail2ban.append_failures("sshd", batch[step], 3)
        for h, batch in ips.items():
            wait_for(lambda h=h, ip=batch[step]: ip in hosts[h].banned(), timeout=10, what="a local ban")
    # Redis returns once every ban waits in its host's outbox (the event), not after a fixed time
    for h, batch in ips.items():
        wait_for(lambda h=h, batch=batch: set(batch) <= outboxed(hosts[h]), timeout=30, what="the outbox")
    print(f"Redis was away {time.monotonic() - stopped:.1f} s")
    fresh_fleet.redis.start()
    every = set(ips[0] + ips[1])
    wait_for(lambda: all(every <= h.banned() for h in hosts), timeout=30, what="every ban on every host")
    log = fresh_fleet.redis.client().xrange("bangui:fleet:log")
    published = [ip for _, f in log for ip in __import__("json").loads(f[b"ips"])]
    assert sorted(published) == sorted(every)  # each ban published once: none twice
    r = httpx.get(hosts[1].url + "/api/v1/jails", headers=fresh_fleet.headers(), timeout=10)
    assert r.status_code == 200  # users and tokens survived: this Redis persists (AOF)


def test_a_server_starting_while_redis_is_away_serves_and_finishes_setup_later(
        redis_server: RedisServer, bangui_server: Any) -> None:
    """CI once saw a second worker start just after Redis stopped: its first-start check raised and took the
    whole server down. A host must come up without Redis (fail2ban never depends on bangui) and catch up."""
    redis_server.stop()
    server = bangui_server(workers=2, env={"BANGUI_FLEET_URL": redis_server.url, "BANGUI_HOST_NAME": "late",
                                           "BANGUI_ADMIN_PASSWORD": "fleet admin password"})
    wait_for(lambda: "first-start check postponed" in server.output(), timeout=20, what="the postponed check")
    ready = httpx.get(server.url + "/api/v1/health/ready", timeout=10).json()
    assert ready["fleet"]["connected"] is False and ready["fail2ban"]["reachable"] is True
    assert ready["fleet"]["replica_refreshed"] is None  # it never reached Redis: no identity to fall back on
    login = {"username": "admin", "password": "fleet admin password"}
    assert httpx.post(server.url + "/api/v1/auth/login", json=login, timeout=10).status_code == 503
    redis_server.start()
    wait_for(lambda: httpx.post(server.url + "/api/v1/auth/login", json=login, timeout=10).status_code == 200,
             timeout=20, what="the admin created once Redis answers")
    assert server.proc is not None and server.proc.poll() is None and len(server.worker_pids()) == 2


@pytest.mark.parametrize("fresh_fleet", [False], ids=["no-persistence"], indirect=True)
def test_redis_restarted_empty_hosts_republish_and_rejoin(fresh_fleet: Fleet) -> None:
    h1, h2, h3 = fresh_fleet.hosts
    client = fresh_fleet.redis.client()
    wait_for(lambda: client.exists("bangui:fleet:log") and len(client.xinfo_groups("bangui:fleet:log")) == 3,
             timeout=20, what="3 agents")
    h1.fail2ban.append_failures("sshd", "198.51.100.31", 3)
    wait_for(lambda: "198.51.100.31" in h3.banned(), timeout=10, what="the first ban everywhere")
    fresh_fleet.redis.stop()
    fresh_fleet.redis.start()  # empty: no AOF, no RDB
    wait_for(lambda: client.scard("bangui:fleet:hosts") == 3, timeout=15, what="hosts published again")
    wait_for(lambda: any(b"198.51.100.31" in f[b"ips"] for _, f in client.xrange("bangui:fleet:log")),
             timeout=15, what="web1 republishing its own shared ban")
    h2.fail2ban.append_failures("sshd", "198.51.100.32", 3)  # consumer groups joined again: bans flow
    wait_for(lambda: "198.51.100.32" in h1.banned() and "198.51.100.32" in h3.banned(), timeout=15,
             what="a new ban everywhere after the empty restart")


def test_a_stalled_redis_is_fleet_unavailable_not_a_hang(redis_server: RedisServer) -> None:
    """SIGSTOP: connections are accepted by the kernel but never answered (a blackholed Redis)."""
    from store.redis_backend import FleetUnavailable, RedisCache, connect

    cache = RedisCache(connect(redis_server.url))
    cache.set("k", 1)
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(FleetUnavailable):
            cache.get("k")
        print(f"stalled Redis: 503 fleet_unavailable after {time.monotonic() - started:.3f} s")
        with pytest.raises(FleetUnavailable), cache.transact():  # the breaker: refused at once now
            pass
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    time.sleep(1.1)  # past the breaker
    assert cache.get("k") == 1


def test_a_deposed_fleet_leader_does_not_record_a_blocklist_outcome(redis_server: RedisServer) -> None:
    import types

    import redis.asyncio

    from jobs.fleet.blocklists import record_if_leading
    from store.blocklists import Blocklists
    from store.redis_backend import RedisCache, connect

    cache = RedisCache(connect(redis_server.url))
    lists = Blocklists(cache, time.time)
    record = lists.create("drop", "https://example.com/l.txt", "sshd")
    lease = Lease(redis.asyncio.Redis.from_url(redis_server.url), "web1", lease_s=0.3)

    async def claim() -> None:
        assert await lease.step()
        await lease.redis.aclose()

    anyio.run(claim)
    agent = types.SimpleNamespace(deps=types.SimpleNamespace(store=types.SimpleNamespace(blocklists=lists)),
                                  sync=cache.redis, lease=lease)
    outcome = {"last_run": time.time(), "last_status": "ok", "last_count": 5}
    time.sleep(0.4)  # the lease expired; another host takes it over
    cache.redis.set("bangui:fleet:leader", "web2:99")
    assert record_if_leading(agent, record, outcome, None) is False  # type: ignore[arg-type]
    assert (lists.get("drop") or {})["runs"] == 0
    cache.redis.set("bangui:fleet:leader", lease.value)  # (only to show the same call writes for the holder)
    assert record_if_leading(agent, record, outcome, None) is True  # type: ignore[arg-type]
    assert (lists.get("drop") or {})["runs"] == 1


def test_a_wrong_redis_password_read_from_the_url_file_is_reported_as_refused_naming_that_setting(
        tmp_path: Path, bangui_server: Any) -> None:
    """Redis answered and refused the login: saying "does not answer, check that Redis is running" sent operators
    the wrong way, and named BANGUI_FLEET_URL when the URL came from BANGUI_FLEET_URL_FILE (issue 20 item 14)."""
    redis_server = RedisServer(tmp_path / "redis", requirepass="the right one").start()
    try:
        url_file = tmp_path / "fleet-url"
        url_file.write_text(f"redis://:a-wrong-one@127.0.0.1:{redis_server.port}/0\n")
        server = bangui_server(workers=1, env={"BANGUI_FLEET_URL_FILE": str(url_file), "BANGUI_HOST_NAME": "pw",
                                               "BANGUI_ADMIN_PASSWORD": "fleet admin password"})
        login = {"username": "admin", "password": "fleet admin password"}
        reply = httpx.post(server.url + "/api/v1/auth/login", json=login, timeout=10)
        assert reply.status_code == 503, reply.text
        message = reply.json()["error"]["message"]
        assert "(Redis at BANGUI_FLEET_URL_FILE) answered but refused bangui's login (WRONGPASS" in message
        assert "password in BANGUI_FLEET_URL_FILE is wrong" in message and "does not answer" not in message
        time.sleep(2.5)  # a notifications run or two, each reading the fleet's blocklists from Redis
        assert "Traceback" not in server.output(), server.output()
    finally:
        redis_server.stop()


def test_a_missing_redis_password_is_reported_as_noauth(tmp_path: Path) -> None:
    from store.redis_backend import FleetUnavailable, RedisCache, connect

    redis_server = RedisServer(tmp_path / "redis", requirepass="the right one").start()
    try:
        cache = RedisCache(connect(redis_server.url), "BANGUI_FLEET_URL")  # no password in the URL
        with pytest.raises(FleetUnavailable) as refused:
            cache.get("k")
        assert "(Redis at BANGUI_FLEET_URL) answered but refused bangui's login (NOAUTH" in str(refused.value)
        assert "password in BANGUI_FLEET_URL is missing" in str(refused.value)
        assert refused.value.details == {"reason": "auth"}
        with pytest.raises(FleetUnavailable, match="NOAUTH"):  # the breaker repeats the same diagnosis
            cache.get("k")
    finally:
        redis_server.stop()
