"""The snapshot job's reading of a real private fail2ban, reachable or not."""

from __future__ import annotations

from typing import Any

import pytest

from f2b.client import Fail2Ban
from jobs.snapshot import fail2ban_snapshot

pytestmark = pytest.mark.anyio


async def test_snapshot_reads_version_jails_and_counters(fail2ban: Any, fail2ban_client: Fail2Ban) -> None:
    await fail2ban_client.ban("sshd", ["192.0.2.1", "192.0.2.2"])
    snap = await fail2ban_snapshot(fail2ban_client, lambda: 5.0)
    assert snap["reachable"] is True and snap["error"] is None and snap["at"] == 5.0
    assert snap["version"].startswith("1.")
    jails = {j["name"]: j for j in snap["jails"]}
    assert set(jails) == {"sshd", "nginx-http-auth", "sshd-dummy"}
    config = await fail2ban_client.jail_config("sshd")
    assert jails["sshd"] == {"name": "sshd", "currently_failed": 0, "total_failed": 0, "currently_banned": 2,
                             "total_banned": 2, "bantime": config.bantime, "findtime": config.findtime,
                             "maxretry": config.maxretry}


async def test_snapshot_reads_each_jails_ban_time_find_time_and_max_retries(fail2ban_client: Fail2Ban) -> None:
    await fail2ban_client.call("set", "sshd", "bantime", "1234")
    await fail2ban_client.call("set", "sshd", "findtime", "567")
    await fail2ban_client.call("set", "sshd", "maxretry", "8")
    jails = {j["name"]: j for j in (await fail2ban_snapshot(fail2ban_client, lambda: 5.0))["jails"]}
    assert (jails["sshd"]["bantime"], jails["sshd"]["findtime"], jails["sshd"]["maxretry"]) == (1234, 567, 8)
    assert all({"bantime", "findtime", "maxretry"} <= set(j) for j in jails.values())


async def test_snapshot_of_an_unreachable_fail2ban_says_why(tmp_path: Any) -> None:
    client = Fail2Ban(str(tmp_path / "missing.sock"), timeout=1.0)
    snap = await fail2ban_snapshot(client, lambda: 5.0)
    assert snap["reachable"] is False and "missing.sock" in snap["error"]
    await client.aclose()
