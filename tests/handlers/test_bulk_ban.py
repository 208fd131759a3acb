"""Issue 8 items 8 and 9: a bulk ban that takes fail2ban longer than the socket timeout (a jail whose shell action
sleeps) is answered with what happened, other calls are not 503 meanwhile, and history counts each ban once
(bangui's `manual` record and the sync's copy of fail2ban's rows are one event), in stats too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from f2b.instance import DEFAULT_JAILS, JailSpec, PrivateServer, started
from settings import Settings
from store import Store
from store.fail2ban_copy import sync_once
from tests.fixtures.app import Api, seed_users

COUNT = 700


@pytest.fixture
def slow_api(tmp_path: Path) -> Iterator[tuple[Api, PrivateServer]]:
    jails = (*DEFAULT_JAILS, JailSpec("slow", action="slow", bantime=3600))
    with started(tmp_path / "fail2ban", jails) as server:
        # A 1 s socket timeout: the 700-address ban below takes fail2ban ~2-4 s (a forked `sleep` per address).
        settings = Settings.for_tests(data_dir=str(tmp_path / "data"), fail2ban_socket=server.socket,
                                      fail2ban_timeout=1.0, leader_candidate=False)  # the tests run the sync
        store = Store(settings)
        tokens = seed_users(store)
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            yield Api(client, settings, store, tokens), server
        store.close()


def _addresses(n: int) -> list[str]:
    return [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(n)]


def test_bulk_ban_longer_than_the_socket_timeout_is_not_503(slow_api: tuple[Api, PrivateServer]) -> None:
    api, server = slow_api
    ips = _addresses(COUNT)
    others: list[int] = []

    def meanwhile() -> None:  # another caller while fail2ban is busy with the bulk ban
        time.sleep(0.5)
        others.append(api.call("viewer", "GET", "/jails/sshd").status_code)

    other = Thread(target=meanwhile)
    started_at = time.monotonic()
    other.start()
    r = api.call("operator", "POST", "/jails/slow/bans", json={"ips": ips})
    took = time.monotonic() - started_at
    other.join()
    assert took > api.settings.fail2ban_timeout, f"the ban took {took:.2f}s: not slow enough to test anything"
    assert r.status_code == 200, r.text
    assert sorted(r.json()["banned"]) == sorted(ips)
    assert others == [200]
    items = _history(api)
    assert len(items) == len(ips)
    [actor] = {i["actor"] for i in items}
    assert "operator" in actor


def _history(api: Api) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = api.call("viewer", "GET", "/history?limit=1000&jail=slow" + (f"&cursor={cursor}" if cursor else ""))
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def test_bulk_ban_lasting_seconds_is_counted_once_in_history(slow_api: tuple[Api, PrivateServer]) -> None:
    api, server = slow_api
    ips = _addresses(COUNT)
    t0 = time.monotonic()
    assert api.call("operator", "POST", "/jails/slow/bans", json={"ips": ips}).status_code == 200
    assert time.monotonic() - t0 > 2.0, "the ban must outlast the old 2 s merge window to test anything"
    result = sync_once(api.store.history, server.dbfile)  # fail2ban's own rows of the same bans
    assert result.status == "ok" and result.inserted == 0
    items = _history(api)
    assert len(items) == len(ips)
    [(origin, actor)] = {(i["origin"], i["actor"]) for i in items}
    assert origin == "manual" and "operator" in actor
    stats = api.call("viewer", "GET", "/stats?range=24h&jail=slow").json()
    assert sum(b["bans"] for b in stats["trend"]) == len(ips)


def test_bulk_ban_synced_before_it_is_recorded_is_claimed_not_doubled(slow_api: tuple[Api, PrivateServer]) -> None:
    """The sync may copy fail2ban's rows while the ban call is still running: the record claims them."""
    api, server = slow_api
    ips = _addresses(COUNT)
    synced: list[Any] = []

    def sync_midway() -> None:
        time.sleep(1.5)
        synced.append(sync_once(api.store.history, server.dbfile))

    syncer = Thread(target=sync_midway)
    syncer.start()
    assert api.call("operator", "POST", "/jails/slow/bans", json={"ips": ips}).status_code == 200
    syncer.join()
    assert synced[0].inserted > 0, "the sync ran after the ban: nothing to claim"
    sync_once(api.store.history, server.dbfile)
    items = _history(api)
    assert len(items) == len(ips)
    [(origin, actor)] = {(i["origin"], i["actor"]) for i in items}
    assert origin == "manual" and "operator" in actor
    stats = api.call("viewer", "GET", "/stats?range=24h&jail=slow").json()
    assert sum(b["bans"] for b in stats["trend"]) == len(ips)
