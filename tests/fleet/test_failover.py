"""Fleet failover (issue 21 item 3): a killed fleet leader replaced, a graceful stop handing the lease over, a
dead host shown `stale`, a crashed host restarted on its own data dir taking its name back at once.
Times are printed (bench/takeover.py measures them over many kills); the assertions wait on events."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fixtures.processes import ServerProcess
from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import Fleet, Host

pytestmark = pytest.mark.fleet


def _lease(fleet: Fleet) -> str | None:
    raw = fleet.redis.client().get("bangui:fleet:leader")
    return raw.decode() if raw else None


def _status(fleet: Fleet, via: Host, name: str) -> str | None:
    hosts = httpx.get(via.url + "/api/v1/fleet/hosts", headers=fleet.headers(), timeout=10).json()["hosts"]
    return next((h["status"] for h in hosts if h["name"] == name), None)


def _leader(fleet: Fleet) -> tuple[Host, str]:
    lease = wait_for(lambda: _lease(fleet), timeout=20, what="a fleet leader")
    return next(h for h in fleet.hosts if h.name == lease.rpartition(":")[0]), lease


def test_a_crashed_leader_is_replaced_shown_stale_and_takes_its_name_back_on_its_data_dir(fresh_fleet: Fleet,
                                                                                          tmp_path: Path) -> None:
    leader, lease = _leader(fresh_fleet)
    other = next(h for h in fresh_fleet.hosts if h is not leader)
    wait_for(lambda: _status(fresh_fleet, other, leader.name) == "up", timeout=20, what="the leader up")
    leader.server.signal_group(signal.SIGKILL)  # the whole server: main process and workers
    killed = time.monotonic()
    assert leader.server.proc is not None
    leader.server.proc.wait()
    new = wait_for(lambda: (v := _lease(fresh_fleet)) and v != lease and v, timeout=15, pause=0.02,
                   what="another fleet leader")
    print(f"new fleet leader {new} after {time.monotonic() - killed:.2f} s")
    assert int(new.rpartition(":")[2]) > int(lease.rpartition(":")[2])
    wait_for(lambda: _status(fresh_fleet, other, leader.name) == "stale", timeout=15, pause=0.1,
             what="the dead host stale")
    print(f"{leader.name} stale after {time.monotonic() - killed:.2f} s")
    # restarted at once on the same data dir, even mounted elsewhere (a container's volume, a new hostname): the
    # same host, which takes its name back although its old claim has not expired
    assert fresh_fleet.redis.client().exists(f"bangui:fleet:alive:{leader.name}")
    moved = leader.server.data_dir.with_name(leader.server.data_dir.name + "-moved")
    shutil.move(leader.server.data_dir, moved)
    again = ServerProcess(moved, leader.fail2ban, 1, tmp_path, env=dict(
        (k, v) for k, v in leader.server.env.items() if k.startswith("BANGUI_") and k != "BANGUI_FAIL2BAN_CONFIG_DIR"))
    leader.server = again
    again.start()
    wait_for(lambda: _status(fresh_fleet, other, leader.name) == "up", timeout=20, what="the host up again")
    # another data dir under the same name is another server: refused with exit 2 while the name is held
    twin = ServerProcess(tmp_path / "twin", leader.fail2ban, 1, tmp_path, env={
        "BANGUI_FLEET_URL": fresh_fleet.redis.url, "BANGUI_HOST_NAME": leader.name})
    with pytest.raises(RuntimeError, match="already used by another running bangui"):
        twin.start()
    assert twin.proc is not None and twin.proc.returncode == 2


def test_a_graceful_stop_hands_the_fleet_lease_over_at_once(fresh_fleet: Fleet) -> None:
    leader, lease = _leader(fresh_fleet)
    stopping = time.monotonic()
    leader.server.stop()
    assert "handed the fleet lease over" in leader.server.output()
    new = wait_for(lambda: (v := _lease(fresh_fleet)) and v != lease and v, timeout=15, pause=0.02,
                   what="another fleet leader")
    print(f"new fleet leader {new} {time.monotonic() - stopping:.2f} s after the stop began")
    assert new.rpartition(":")[0] != leader.name
