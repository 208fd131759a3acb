"""The fleet store over TLS and through Redis Sentinel (issue 21 item 2), with real redis-servers and sentinels."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest

from settings import ConfigError, Settings
from store.redis_backend import FleetUnavailable, RedisCache, connect
from tests.fixtures.redis_ha import SentinelRedis, TlsRedis
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet, dump, fleet_on

pytestmark = pytest.mark.fleet


def test_the_client_factory_speaks_tls_with_the_ca_and_client_certificate(tmp_path: Path) -> None:
    redis = TlsRedis(tmp_path / "tls", auth_clients=True).start()
    try:
        env = redis.env()
        settings = Settings.for_tests(fleet_url=env["BANGUI_FLEET_URL"], fleet_tls_ca_file=env[
            "BANGUI_FLEET_TLS_CA_FILE"], fleet_tls_cert_file=env["BANGUI_FLEET_TLS_CERT_FILE"],
            fleet_tls_key_file=env["BANGUI_FLEET_TLS_KEY_FILE"])
        cache = RedisCache(connect(settings))
        cache.set("k", {"v": 1})
        assert cache.get("k") == {"v": 1}

        async def through_asyncio() -> bytes:
            client = connect(settings, 0.5, asyncio=True)
            try:
                return bytes(await client.get("bangui:kv:k"))
            finally:
                await client.aclose()

        assert json.loads(anyio.run(through_asyncio)) == {"v": 1}
        # Redis checks clients' certificates: without one bangui is refused, as 503 fleet_unavailable
        anonymous = RedisCache(connect(Settings.for_tests(fleet_url=env["BANGUI_FLEET_URL"],
                                                          fleet_tls_ca_file=env["BANGUI_FLEET_TLS_CA_FILE"])))
        with pytest.raises(FleetUnavailable):
            anonymous.get("k")
        # and a CA that did not sign Redis' certificate is not trusted
        other = TlsRedis(tmp_path / "other-ca")  # only its certificates are used
        untrusted = RedisCache(connect(Settings.for_tests(
            fleet_url=env["BANGUI_FLEET_URL"], fleet_tls_ca_file=str(other.certs["ca"]),
            fleet_tls_cert_file=env["BANGUI_FLEET_TLS_CERT_FILE"], fleet_tls_key_file=env["BANGUI_FLEET_TLS_KEY_FILE"])))
        with pytest.raises(FleetUnavailable):
            untrusted.get("k")
    finally:
        redis.stop()


@pytest.mark.parametrize(("changes", "message"), [
    ({"fleet_url": "redis://127.0.0.1/0", "fleet_tls_ca_file": "/etc/hostname"}, "is not rediss://"),
    ({"fleet_url": "rediss://127.0.0.1/0", "fleet_tls_cert_file": "/etc/hostname"}, "both BANGUI_FLEET_TLS_CERT"),
    ({"fleet_url": "rediss://127.0.0.1/0", "fleet_tls_ca_file": "/nonexistent/ca.pem"}, "cannot be read"),
    ({"fleet_url": "redis://127.0.0.1/0", "fleet_sentinels": "127.0.0.1:26379"}, "BANGUI_FLEET_SENTINEL_SERVICE"),
    ({"fleet_url": "redis://127.0.0.1/0", "fleet_sentinels": "sentinel-one", "fleet_sentinel_service": "m"},
     "is not host:port"),
])
def test_wrong_tls_or_sentinel_settings_say_how_to_fix_them(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        connect(Settings.for_tests(**changes))


def _fleet(redis: TlsRedis | SentinelRedis, base: Path, n: int) -> Fleet:
    return fleet_on(redis, base, n, redis.env())


def test_a_fleet_over_tls_with_client_certificates_shares_bans(tmp_path: Path) -> None:
    fleet = _fleet(TlsRedis(tmp_path / "tls", auth_clients=True).start(), tmp_path, 2)
    try:
        h1, h2 = fleet.hosts
        h1.fail2ban.append_failures("sshd", "203.0.113.51", 3)
        wait_for(lambda: "203.0.113.51" in h2.banned(), timeout=20, what="web1's shared ban on web2 over TLS")
        hosts = httpx.get(h2.url + "/api/v1/fleet/hosts", headers=fleet.headers(), timeout=10).json()["hosts"]
        assert {h["name"] for h in hosts} == {"web1", "web2"}
    finally:
        dump(fleet)
        fleet.stop()


def _ban_events(host_url: str, headers: dict[str, str], ip: str) -> int:
    items = httpx.get(host_url + "/api/v1/history", params={"ip": ip}, headers=headers, timeout=10).json()["items"]
    return sum(1 for i in items if i["event"] == "ban")


def test_sigkill_of_the_primary_while_hosts_ban_sentinels_promote_and_nothing_is_lost(tmp_path: Path) -> None:
    ha = SentinelRedis(tmp_path / "ha").start()
    fleet = _fleet(ha, tmp_path, 3)
    try:
        hosts = fleet.hosts
        wait_for(lambda: (c := ha.client()).exists("bangui:fleet:log") and len(c.xinfo_groups("bangui:fleet:log"))
                 == 3, timeout=30, what="3 agents")
        ips = {0: [f"198.51.100.{i}" for i in range(40, 48)], 1: [f"198.51.100.{i}" for i in range(50, 58)]}
        killed_at = None
        for step in range(8):  # web1 and web2 ban one address each per step; the primary dies after the 3rd
            for h, batch in ips.items():
                hosts[h].fail2ban.append_failures("sshd", batch[step], 3)
            if step == 3:
                old = ha.kill_primary()
                killed_at = time.monotonic()
            for h, batch in ips.items():
                wait_for(lambda h=h, ip=batch[step]: ip in hosts[h].banned(), timeout=15, what="a local ban")
        assert killed_at is not None
        wait_for(lambda: ha.primary_port() != old, timeout=30, what="the sentinels promoting the replica")
        print(f"replica promoted {time.monotonic() - killed_at:.1f} s after the SIGKILL")
        every = set(ips[0] + ips[1])
        try:
            wait_for(lambda: all(every <= h.banned() for h in hosts), timeout=60, what="every ban on every host")
        except AssertionError:
            for h in hosts:
                print(h.name, "lacks", sorted(every - h.banned()))
            print("log:", [(i, f[b"source"], f[b"ips"]) for i, f in ha.client().xrange("bangui:fleet:log")])
            raise
        print(f"every ban on every host {time.monotonic() - killed_at:.1f} s after the SIGKILL")
        for host in hosts:  # every host reconnected by itself: its outbox is empty and it heartbeats again
            outbox = host.server.data_dir / "fleet-outbox.jsonl"
            wait_for(lambda outbox=outbox: not outbox.exists() or not outbox.read_text().strip(), timeout=30,
                     what=f"{host.name}'s outbox published")

        def every_host_up() -> bool:  # while web3 reconnects it may answer 503 fleet_unavailable: not yet
            r = httpx.get(hosts[2].url + "/api/v1/fleet/hosts", headers=fleet.headers(), timeout=10)
            return r.status_code == 200 and all(h["status"] == "up" for h in r.json()["hosts"])

        wait_for(every_host_up, timeout=30, what="every host up on the new primary")
        for host in hosts:
            for ip in sorted(every):
                assert wait_for(lambda host=host, ip=ip: _ban_events(host.url, fleet.headers(), ip), timeout=30,
                                what=f"{ip} in {host.name}'s history") == 1, (host.name, ip)
    finally:
        dump(fleet)
        fleet.stop()
