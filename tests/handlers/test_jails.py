"""Jails and per-jail bans against a real private fail2ban-server."""

from __future__ import annotations

import time

from tests.fixtures.app import Api


def test_list_jails_shows_every_jail_with_counters(api: Api) -> None:
    r = api.call("viewer", "GET", "/jails")
    assert r.status_code == 200
    jails = {j["name"]: j for j in r.json()["jails"]}
    assert set(jails) == {"sshd", "nginx-http-auth", "sshd-dummy"}
    assert jails["sshd"] == {"name": "sshd", "currently_banned": 0, "total_banned": 0,
                             "currently_failed": 0, "total_failed": 0}


def test_jail_detail_has_settings_and_bans_with_times(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7"]})
    r = api.call("viewer", "GET", "/jails/sshd")
    assert r.status_code == 200
    body = r.json()
    assert (body["bantime"], body["findtime"], body["maxretry"]) == (600, 600, 3)
    assert body["currently_banned"] == 1
    assert any(p.endswith("sshd.log") for p in body["logpaths"])
    [ban] = body["banned"]
    assert ban["ip"] == "192.0.2.7"
    assert ban["banned_at"].endswith("Z") and ban["expires_at"].endswith("Z")
    assert ban["banned_at"] < ban["expires_at"]


def test_ban_ipv4_ipv6_and_cidr_then_see_them_in_bans(api: Api) -> None:
    ips = ["192.0.2.7", "2001:DB8::1", "198.51.100.9/24"]
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips})
    assert r.status_code == 200, r.text
    assert r.json() == {"banned": ["192.0.2.7", "2001:db8::1", "198.51.100.0/24"], "already_banned": []}
    current = api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"]
    assert {b["ip"] for b in current} == {"192.0.2.7", "2001:db8::1", "198.51.100.0/24"}


def test_banning_again_reports_already_banned(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7"]})
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7", "192.0.2.8"]})
    assert r.json() == {"banned": ["192.0.2.8"], "already_banned": ["192.0.2.7"]}


def test_bulk_ban_of_500_addresses(api: Api) -> None:
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(500)]
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips})
    assert len(r.json()["banned"]) == 500
    jails = {j["name"]: j for j in api.call("viewer", "GET", "/jails").json()["jails"]}
    assert jails["sshd"]["currently_banned"] == 500


def test_one_invalid_entry_bans_nothing(api: Api) -> None:
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7", "not-an-ip", "300.1.1.1"]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_ip"
    assert r.json()["error"]["details"]["invalid"] == ["not-an-ip", "300.1.1.1"]
    assert api.call("viewer", "GET", "/bans").json()["bans"] == []


def test_unban_in_jail_and_not_banned(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["2001:db8::5"]})
    r = api.call("operator", "DELETE", "/jails/sshd/bans/2001:db8::5")
    assert r.status_code == 200
    assert r.json() == {"unbanned": "2001:db8::5", "jail": "sshd", "count": 1, "lifted": ["2001:db8::5"],
                        "applies": "here", "fleet": None}  # single-host mode: here only
    again = api.call("operator", "DELETE", "/jails/sshd/bans/2001:db8::5")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_banned"


def test_unban_cidr_through_path(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["198.51.100.0/24"]})
    r = api.call("operator", "DELETE", "/jails/sshd/bans/198.51.100.0/24")
    assert r.status_code == 200, r.text


def test_unknown_jail_is_404_jail_not_found(api: Api) -> None:
    for method, path, kw in [("GET", "/jails/nope", {}), ("POST", "/jails/nope/bans", {"json": {"ips": ["192.0.2.1"]}}),
                             ("DELETE", "/jails/nope/bans/192.0.2.1", {})]:
        r = api.call("admin", method, path, **kw)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "jail_not_found"


def test_automatic_ban_from_log_lines_is_seen_through_the_api(api: Api, fail2ban) -> None:  # type: ignore[no-untyped-def]
    fail2ban.append_failures("sshd", "203.0.113.9", 3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        bans = api.call("viewer", "GET", "/bans").json()["bans"]
        if bans:
            break
        time.sleep(0.05)
    assert [(b["ip"], b["jail"]) for b in bans] == [("203.0.113.9", "sshd")]
    assert api.call("viewer", "GET", "/jails/sshd").json()["total_failed"] >= 3
