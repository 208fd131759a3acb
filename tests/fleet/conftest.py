"""3 simulated hosts on one machine: a real redis-server, 3 private fail2ban servers and 3 `bangui serve --workers 2`
with their own data dirs and host names (web1..web3), `sshd` shared. Module-wide for the proofs that do not
break anything; `fresh_fleet` builds one per test for those that kill or stop parts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from f2b.instance import PrivateServer
from tests.fixtures.processes import ServerProcess
from tests.fixtures.redis import RedisServer
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.fleet
PASSWORD = "fleet admin password"
LOGIN = {"username": "admin", "password": PASSWORD}


@dataclass
class Host:
    name: str
    fail2ban: PrivateServer
    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url

    def banned(self, jail: str = "sshd") -> set[str]:
        code, result = sync_call(self.fail2ban.socket, "get", jail, "banned")
        assert code == 0, result
        return set(result)


@dataclass
class Fleet:
    redis: RedisServer
    hosts: list[Host] = field(default_factory=list)
    token: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        for host in self.hosts:
            host.server.stop()
            host.fail2ban.close()
        self.redis.stop()


def add_host(fleet: Fleet, base: Path, i: int, env: dict[str, str] | None = None) -> Host:
    """Start host web<i>: its own fail2ban, data dir and `bangui serve --workers 2` (stopped with the fleet);
    `env`: more settings."""
    f2b = PrivateServer(base / f"f2b{i}")
    f2b.start()
    settings = {"BANGUI_FLEET_URL": fleet.redis.url, "BANGUI_HOST_NAME": f"web{i}",
                "BANGUI_FLEET_SHARE_JAILS": "sshd", "BANGUI_ADMIN_PASSWORD": PASSWORD,
                "BANGUI_LOG_LEVEL": "info", **(env or {})}
    server = ServerProcess(base / f"data{i}", f2b, 2, base, env=settings)
    host = Host(f"web{i}", f2b, server)
    fleet.hosts.append(host)
    server.start()
    return host


def start_fleet(base: Path, persist: bool = False, n: int = 3, env: dict[str, str] | None = None) -> Fleet:
    return fleet_on(RedisServer(base / "redis", persist=persist).start(), base, n, env)


def fleet_on(redis: Any, base: Path, n: int, env: dict[str, str] | None = None) -> Fleet:
    """`n` hosts on a started `redis` (a RedisServer, or one with the same url/client()/stop()), an admin token."""
    fleet = Fleet(redis)
    try:
        for i in range(1, n + 1):
            add_host(fleet, base, i, env)
        cookie = httpx.post(fleet.hosts[0].url + "/api/v1/auth/login", json=LOGIN, timeout=10).cookies
        made = httpx.post(fleet.hosts[0].url + "/api/v1/tokens", json={"name": "ops", "role": "admin"},
                          cookies=cookie, timeout=10)
        assert made.status_code == 201, made.text
        fleet.token = made.json()["token"]
    except BaseException:
        with contextlib.suppress(Exception):
            fleet.stop()
        raise
    return fleet


def fleet_health(host: Host, headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(host.url + "/api/v1/health", headers=headers, timeout=10).json()
    return dict(body["fleet"])


def wait_replicated(fleet: Fleet, after: float) -> None:
    """Every host's replica refreshed after `after` (epoch seconds)."""
    for host in fleet.hosts:
        wait_for(lambda host=host: (age := fleet_health(host, fleet.headers())["replica_age_s"]) is not None
                 and time.time() - age > after, timeout=20, what=f"{host.name}'s replica refreshed")


def dump(fleet: Fleet) -> None:
    for host in fleet.hosts:
        print(f"--- {host.name} ---\n{host.server.output()[-6000:]}")


@pytest.fixture(scope="module")
def shared_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield fleet
    finally:
        dump(fleet)
        fleet.stop()


@pytest.fixture(params=[True], ids=["aof"])
def fresh_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """A fleet for one test; Redis persists (AOF) unless the test parametrizes `fresh_fleet` with False."""
    fleet = start_fleet(tmp_path, persist=request.param)
    try:
        yield fleet
    finally:
        dump(fleet)
        fleet.stop()
