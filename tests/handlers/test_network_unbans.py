"""Issue 18 §5: an unban of a network never lifts bans unrecorded. Too wide: 400 `refused_address`, nothing
lifted; allowed: the bans inside it are lifted, each recorded as an unban, with the count in the answer and
the audit entry; a network holding no ban is `not_banned`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.app import Api

INSIDE = ["198.51.100.7", "198.51.100.9", "198.51.100.128/25"]
OUTSIDE = ["192.0.2.1", "203.0.113.5"]
TOO_WIDE = ["0.0.0.0/0", "::/0", "10.0.0.0/7", "::ffff:0:0/96", "2001::/15"]


def _ban(api: Api, jail: str, ips: list[str]) -> None:
    r = api.call("operator", "POST", f"/jails/{jail}/bans", json={"ips": ips})
    assert r.status_code == 200, r.text


def _banned(api: Api, jail: str) -> list[str]:
    return sorted(b["ip"] for b in api.call("viewer", "GET", f"/bans?jail={jail}").json()["bans"])


def _unbans(api: Api, ip: str) -> list[dict[str, Any]]:
    return [e for e in api.call("viewer", "GET", f"/ips/{ip}").json()["events"] if e["event"] == "unban"]


def _audit(api: Api, action: str) -> dict[str, Any]:
    return [e for e in api.store.audit.iter_all() if e["action"] == action][-1]


@pytest.mark.parametrize("network", TOO_WIDE)
def test_a_network_wider_than_the_ban_limits_is_refused_on_every_unban_path(api: Api, network: str) -> None:
    _ban(api, "sshd", OUTSIDE)
    for path in [f"/jails/sshd/bans/{network}", f"/bans/{network}"]:
        r = api.call("operator", "DELETE", path)
        assert r.status_code == 400 and r.json()["error"]["code"] == "refused_address", r.text
        assert "limit" in r.json()["error"]["message"]
    assert _banned(api, "sshd") == sorted(OUTSIDE)  # nothing lifted


def test_a_network_unban_in_a_jail_lifts_and_records_each_ban_inside_it(api: Api) -> None:
    _ban(api, "sshd", INSIDE + OUTSIDE)
    r = api.call("operator", "DELETE", "/jails/sshd/bans/198.51.100.0/24")
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 3 and sorted(r.json()["lifted"]) == sorted(INSIDE)
    assert _banned(api, "sshd") == sorted(OUTSIDE)
    for ip in INSIDE:
        body = api.call("viewer", "GET", f"/ips/{ip}").json()
        assert not body["banned_now"] and len(_unbans(api, ip)) == 1, body
    for ip in OUTSIDE:
        assert _unbans(api, ip) == []
    entry = _audit(api, "jail.unban")
    assert entry["details"]["unbanned"] == 3 and sorted(entry["details"]["lifted"]) == sorted(INSIDE)


def test_a_banned_network_entry_is_lifted_alone(api: Api) -> None:
    """fail2ban keeps a banned network as one entry: unbanning exactly it lifts that ban, not those inside."""
    _ban(api, "sshd", ["198.51.100.0/24", "198.51.100.7"])
    r = api.call("operator", "DELETE", "/jails/sshd/bans/198.51.100.0/24")
    assert r.status_code == 200 and r.json()["lifted"] == ["198.51.100.0/24"], r.text
    assert _banned(api, "sshd") == ["198.51.100.7"]


def test_a_network_holding_no_ban_answers_not_banned(api: Api) -> None:
    _ban(api, "sshd", OUTSIDE)
    for path in ["/jails/sshd/bans/198.51.100.0/24", "/bans/198.51.100.0/24"]:
        r = api.call("operator", "DELETE", path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_banned", r.text
    assert _banned(api, "sshd") == sorted(OUTSIDE)


def test_a_network_unban_everywhere_lifts_and_records_in_every_jail(api: Api) -> None:
    _ban(api, "sshd", INSIDE[:2] + OUTSIDE)
    _ban(api, "nginx-http-auth", INSIDE[2:])
    r = api.call("operator", "DELETE", "/bans/198.51.100.0/24")
    assert r.status_code == 200, r.text
    assert sorted(r.json()["unbanned_from"]) == ["nginx-http-auth", "sshd"] and r.json()["count"] == 3
    assert _banned(api, "sshd") == sorted(OUTSIDE) and _banned(api, "nginx-http-auth") == []
    for ip in INSIDE:
        assert len(_unbans(api, ip)) == 1
    assert _audit(api, "ban.unban_everywhere")["details"]["unbanned"] == 3


@pytest.mark.anyio
async def test_unban_many_refuses_wide_networks_and_records_each_ban_a_network_lifts(api: Api) -> None:
    from actions.bans import unban_many
    from core.actor import job
    from core.deps import Deps
    from errors import InvalidInput
    from f2b.client import Fail2Ban

    _ban(api, "sshd", INSIDE + OUTSIDE)
    client = Fail2Ban(api.settings.fail2ban_socket)
    deps = Deps(api.settings, api.store, client)
    try:
        with pytest.raises(InvalidInput) as refused:
            await unban_many(deps, job("test"), "sshd", ["192.0.2.1", "0.0.0.0/0"])
        assert refused.value.code == "refused_address" and "0.0.0.0/0" in refused.value.details["refused"]
        assert _banned(api, "sshd") == sorted(INSIDE + OUTSIDE)  # all or nothing
        result = await unban_many(deps, job("test"), "sshd", ["198.51.100.0/24", "192.0.2.1", "192.0.2.99"])
        assert sorted(result["unbanned"]) == sorted([*INSIDE, "192.0.2.1"]) and result["count"] == 4
        assert result["not_banned"] == ["192.0.2.99"]
        assert _banned(api, "sshd") == ["203.0.113.5"]
        for ip in INSIDE:
            assert len(_unbans(api, ip)) == 1
    finally:
        await client.aclose()
