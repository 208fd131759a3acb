"""The shared jails' watcher (fleet/watch.py) in-process against a real private fail2ban and a real data dir: its
view is saved at most once a second, always when it stops, and the fleet's bans it is applying are on disk before
they reach fail2ban. No Redis involved: in the default run (tests/fleet/test_catch_up.py proves the same through
real servers and Redis, crashes included, under `./dev fleet`)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.deps import Deps
from f2b.client import Fail2Ban
from fleet.watch import Watcher
from store import Store
from tests.fixtures.app import make_settings
from tests.fixtures.fleet_watch import file_version, known_bans
from tests.fixtures.waiting import wait_for_async

pytestmark = pytest.mark.anyio


class Shared:
    """What the watcher publishes (the agent's `share`, jobs/fleet/agent.py, publishes it to Redis)."""

    def __init__(self) -> None:
        self.ips: list[str] = []
        self.lock = threading.Lock()  # the watcher calls it from a worker thread

    def __call__(self, jail: str, ips: list[str]) -> None:
        with self.lock:
            self.ips.extend(ips)


async def test_the_view_is_saved_when_the_watcher_stops_and_a_restarted_one_shares_nothing_again(
        tmp_path: Path, fail2ban: Any) -> None:
    settings = make_settings(tmp_path / "data", str(fail2ban.socket), fleet_share_jails="sshd")
    store = Store(settings)
    client = Fail2Ban(fail2ban.socket, timeout=5.0)
    deps = Deps(settings, store, client)
    path, shared = store.path / "fleet-watch.json", Shared()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(Watcher(deps, shared).watch)
            await wait_for_async(lambda: path.exists(), within=5, what="the baseline saved")
            await client.ban("sshd", ["192.0.2.50"])
            before = file_version(path)
            await wait_for_async(lambda: file_version(path) != before and "192.0.2.50" in known_bans(path), within=5,
                                 what="a save")  # the next one a second later at the earliest
            await client.ban("sshd", ["192.0.2.51"])
            await wait_for_async(lambda: "192.0.2.51" in shared.ips, within=0.8, what="the new ban shared")
            assert "192.0.2.51" not in known_bans(path)  # not saved yet: at most one save a second
            tg.cancel_scope.cancel()  # the agent stops (host leader stepping down, server shutdown)
        assert {"192.0.2.50", "192.0.2.51"} <= known_bans(path)  # saved on the way out
        assert shared.ips == ["192.0.2.50", "192.0.2.51"]

        again = Shared()
        async with anyio.create_task_group() as tg:
            tg.start_soon(Watcher(deps, again).watch)
            await anyio.sleep(0.5)  # five looks
            tg.cancel_scope.cancel()
        assert again.ips == []
    finally:
        await client.aclose()
        store.close()


async def test_a_fleet_ban_being_applied_is_on_disk_before_fail2ban_gets_it(tmp_path: Path, fail2ban: Any) -> None:
    settings = make_settings(tmp_path / "data", str(fail2ban.socket), fleet_share_jails="sshd")
    store = Store(settings)
    client = Fail2Ban(fail2ban.socket, timeout=5.0)
    deps = Deps(settings, store, client)
    try:
        await Watcher(deps, Shared()).mark_applied("sshd", ["192.0.2.60"])
        # the agent dies here, before its view's next save: the next agent knows the ban is the fleet's
        shared, path = Shared(), store.path / "fleet-watch.json"
        before = file_version(path)
        async with anyio.create_task_group() as tg:
            tg.start_soon(Watcher(deps, shared).watch)
            await wait_for_async(lambda: file_version(path) != before, within=5, what="the baseline saved")
            await client.ban("sshd", ["192.0.2.60", "192.0.2.61"])
            await wait_for_async(lambda: "192.0.2.61" in shared.ips, within=5, what="this host's own ban shared")
            tg.cancel_scope.cancel()
        assert shared.ips == ["192.0.2.61"]
    finally:
        await client.aclose()
        store.close()
