"""Current bans across jails, unban everywhere, one address, the server overview."""

from __future__ import annotations

from tests.fixtures.app import Api


def test_bans_across_jails_and_filtered_by_jail(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    every = api.call("viewer", "GET", "/bans").json()["bans"]
    assert sorted((b["ip"], b["jail"]) for b in every) == [
        ("192.0.2.1", "nginx-http-auth"), ("192.0.2.1", "sshd"), ("192.0.2.2", "nginx-http-auth")]
    only = api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"]
    assert [(b["ip"], b["jail"]) for b in only] == [("192.0.2.1", "sshd")]


def test_unban_everywhere_lists_jails_then_404(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.1"]})
    r = api.call("operator", "DELETE", "/bans/192.0.2.1")
    assert r.status_code == 200
    assert sorted(r.json()["unbanned_from"]) == ["nginx-http-auth", "sshd"]
    again = api.call("operator", "DELETE", "/bans/192.0.2.1")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_banned"


def test_ip_shows_where_it_is_banned_now(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["2001:db8::7"]})
    body = api.call("viewer", "GET", "/ips/2001:db8::7").json()
    assert body["ip"] == "2001:db8::7"
    assert [b["jail"] for b in body["current_bans"]] == ["sshd"]
    assert api.call("viewer", "GET", "/ips/192.0.2.99").json()["current_bans"] == []


def test_server_overview_counts(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    body = api.call("viewer", "GET", "/server").json()
    assert body["jail_count"] == 3
    assert body["currently_banned"] == 2 and body["total_banned"] == 2
    assert body["version"].startswith("1.")


def test_current_bans_carry_the_country(api: Api) -> None:
    r = api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ["8.8.8.8", "192.0.2.1"]})
    assert r.status_code == 200, r.text
    by_ip = {b["ip"]: b for b in api.call("viewer", "GET", "/bans").json()["bans"]}
    assert by_ip["8.8.8.8"]["country"] == "US" and by_ip["192.0.2.1"]["country"] is None
    by_ip = {b["ip"]: b for b in api.call("viewer", "GET", "/jails/sshd").json()["banned"]}
    assert by_ip["8.8.8.8"]["country"] == "US" and by_ip["192.0.2.1"]["country"] is None



def test_ip_lookup_of_a_network(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["198.51.100.0/24", "198.51.100.7"]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["198.51.100.9", "192.0.2.1"]})
    r = api.call("viewer", "GET", "/ips/198.51.100.0/24")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ip"] == "198.51.100.0/24" and body["banned_now"] is True
    assert [(b["ip"], b["jail"]) for b in body["current_bans"]] == [("198.51.100.0/24", "sshd")]
    assert sorted(e["ip"] for e in body["events"]) == ["198.51.100.0/24", "198.51.100.7", "198.51.100.9"]
    assert body["totals"] == {"bans": 3, "unbans": 0, "jails": {"sshd": 2, "nginx-http-auth": 1}}
    assert body["first_seen"] and body["last_seen"] and body["truncated"] is False
    other = api.call("viewer", "GET", "/ips/203.0.113.0/24").json()
    assert other["banned_now"] is False and other["events"] == [] and other["first_seen"] is None
    assert api.call("viewer", "GET", "/ips/198.51.100.0/99").status_code == 400
