"""A user's preferences live beside the users: in fleet mode, in the fleet's Redis, the same on every host
(issue 23 item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import Settings
from store import Store
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.fleet


def test_preferences_set_on_one_host_are_read_on_another(tmp_path: Path, redis_server: RedisServer) -> None:
    hosts = [Store(Settings.for_tests(data_dir=str(tmp_path / name), fleet_url=redis_server.url))
             for name in ("web1", "web2")]
    try:
        hosts[0].users.create("ana", "a long password 1", "viewer")
        hosts[0].preferences.update("ana", {"time_zone": "Asia/Tokyo", "relative_times": True})
        assert hosts[1].preferences.get("ana") == {"time_zone": "Asia/Tokyo", "date_format": "iso",
                                                   "relative_times": True, "theme": "auto"}
        hosts[1].users.create("admin", "a long password 2", "admin")
        hosts[1].users.delete("ana")
        assert hosts[0].preferences.get("ana")["time_zone"] == "UTC"
    finally:
        for store in hosts:
            store.close()
