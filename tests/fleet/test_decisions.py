"""CrowdSec bouncers in fleet mode (issue 22): every host answers with the fleet's shared jails, bouncer keys live
in the fleet's identity store (made on one host, working on every host, deleted once for all), and a ban made on
another host reaches the real crowdsec-custom-bouncer polling this host; its fleet unban becomes `del`.

Needs Debian's crowdsec-custom-bouncer (`./dev fleet` installs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.waiting import wait_for
from tests.fleet.conftest import dump, start_fleet
from tests.test_crowdsec import Bouncer

pytestmark = pytest.mark.fleet


def test_a_ban_on_another_host_reaches_a_real_bouncer_polling_this_host(tmp_path: Path) -> None:
    fleet = start_fleet(tmp_path, n=2, env={"BANGUI_DECISIONS_SECONDS": "0.5"})
    bouncer = None
    try:
        web1, web2 = fleet.hosts
        made = httpx.post(web2.url + "/api/v1/bouncers", json={"name": "edge"}, headers=fleet.headers(), timeout=10)
        assert made.status_code == 201, made.text
        key = made.json()["api_key"]  # made on web2, polled on web1: one identity store
        (tmp_path / "bouncer").mkdir()
        bouncer = Bouncer(tmp_path / "bouncer", web1.url, key).start()
        web2.fail2ban.append_failures("sshd", "203.0.113.50", 5)  # fail2ban's own ban on web2, a shared jail
        bouncer.wait("add", "203.0.113.50", timeout=60)
        r = httpx.post(web2.url + "/api/v1/fleet/bans", json={"ips": ["198.51.100.77"], "jail": "sshd"},
                       headers=fleet.headers(), timeout=30)
        assert r.status_code == 202, r.text
        bouncer.wait("add", "198.51.100.77", timeout=60)
        web1.fail2ban.append_failures("nginx-http-auth", "192.0.2.60", 5)  # a jail the fleet does not share
        r = httpx.post(web2.url + "/api/v1/fleet/unbans", json={"ips": ["198.51.100.77"], "jail": "sshd"},
                       headers=fleet.headers(), timeout=30)
        assert r.status_code == 202, r.text
        bouncer.wait("del", "198.51.100.77", timeout=60)

        def stream(host_url: str) -> set[str]:
            got = httpx.get(host_url + "/v1/decisions/stream?startup=true", headers={"X-Api-Key": key}, timeout=10)
            assert got.status_code == 200, got.text
            return {d["value"] for d in got.json()["new"] or []}

        wait_for(lambda: stream(web1.url) == stream(web2.url) == {"203.0.113.50"}, 30,
                 "the same decisions on every host, of the shared jails only")
        assert not any(call[1] == "192.0.2.60" for call in bouncer.seen())
        gone = httpx.delete(web2.url + "/api/v1/bouncers/edge", headers=fleet.headers(), timeout=10)
        assert gone.status_code in (200, 204), gone.text
        refused = httpx.get(web1.url + "/v1/decisions/stream", headers={"X-Api-Key": key}, timeout=10)
        assert refused.status_code == 403  # at once, on the other host too
    except BaseException:
        dump(fleet)
        if bouncer is not None:
            print(f"--- bouncer ---\n{bouncer.output()[-4000:]}")
        raise
    finally:
        if bouncer is not None:
            bouncer.stop()
        fleet.stop()


def test_a_bouncer_moving_to_another_host_is_told_what_the_fleet_unbanned_meanwhile(tmp_path: Path) -> None:
    """Each host keeps its own positions; a bouncer behind a balancer that polls web1, then web2, must get the fleet
    unban it missed in web2's answer (`deleted`), not only web2's current decisions."""
    fleet = start_fleet(tmp_path, n=2, env={"BANGUI_DECISIONS_SECONDS": "0.5"})
    try:
        web1, web2 = fleet.hosts
        made = httpx.post(web1.url + "/api/v1/bouncers", json={"name": "edge"}, headers=fleet.headers(), timeout=10)
        assert made.status_code == 201, made.text
        key = {"X-Api-Key": made.json()["api_key"]}

        def poll(host_url: str, startup: bool = False) -> dict[str, set[str]]:
            got = httpx.get(f"{host_url}/v1/decisions/stream?startup={str(startup).lower()}", headers=key, timeout=10)
            assert got.status_code == 200, got.text
            return {part: {d["value"] for d in got.json()[part] or []} for part in ("new", "deleted")}

        r = httpx.post(web1.url + "/api/v1/fleet/bans", json={"ips": ["198.51.100.78"], "jail": "sshd"},
                       headers=fleet.headers(), timeout=30)
        assert r.status_code == 202, r.text
        def live(host_url: str) -> list[Any] | None:  # a live query moves no stream position
            got = httpx.get(host_url + "/v1/decisions?ip=198.51.100.78", headers=key, timeout=10)
            assert got.status_code == 200, got.text
            return got.json()  # type: ignore[no-any-return]

        wait_for(lambda: live(web2.url) is not None, 30, "the fleet ban in web2's view")
        wait_for(lambda: "198.51.100.78" in poll(web1.url, startup=True)["new"], 30, "the fleet ban on web1")
        r = httpx.post(web1.url + "/api/v1/fleet/unbans", json={"ips": ["198.51.100.78"], "jail": "sshd"},
                       headers=fleet.headers(), timeout=30)
        assert r.status_code == 202, r.text
        wait_for(lambda: live(web2.url) is None, 30, "the fleet unban in web2's view")
        assert "198.51.100.78" in poll(web2.url)["deleted"]  # the bouncer's first poll on web2 since web1's
        assert poll(web2.url) == {"new": set(), "deleted": set()}
    except BaseException:
        dump(fleet)
        raise
    finally:
        fleet.stop()
