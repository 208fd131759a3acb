"""Bad input never yields a 500: malformed JSON, wrong types, unknown fields, oversized bodies, bad jail
names, bad IPs, unknown routes and wrong methods all answer the one error envelope."""

from __future__ import annotations

import pytest

from tests.fixtures.app import Api


def envelope(r) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("content", "code"), [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b'{"ips": "192.0.2.1"}', "invalid_body"),
    (b'{"ips": [1, 2]}', "invalid_body"),
    (b'{"ips": ["192.0.2.1"], "extra": true}', "invalid_body"),
    (b'{"ips": []}', "invalid_body"),
    (b"[]", "invalid_body"),
])
def test_malformed_ban_bodies(api: Api, content: bytes, code: str) -> None:
    r = api.call("operator", "POST", "/jails/sshd/bans", content=content,
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert envelope(r)["code"] == code


def test_oversized_body_is_413(api: Api) -> None:
    big = b'{"ips": ["' + b"1" * (api.settings.max_body_bytes + 10) + b'"]}'
    r = api.call("operator", "POST", "/jails/sshd/bans", content=big)
    assert r.status_code == 413 and envelope(r)["code"] == "body_too_large"


@pytest.mark.parametrize("jail", ["bad name", "x" * 65, "sshd;rm", "%00"])
def test_bad_jail_names(api: Api, jail: str) -> None:
    r = api.call("viewer", "GET", f"/jails/{jail}")
    assert r.status_code == 400 and envelope(r)["code"] == "invalid_jail_name"


@pytest.mark.parametrize("ip", ["999.1.1.1", "not-an-ip", "1.2.3.4/99", "::g"])
def test_bad_ips_in_paths(api: Api, ip: str) -> None:
    r = api.call("operator", "DELETE", f"/bans/{ip}")
    assert r.status_code == 400 and envelope(r)["code"] == "invalid_ip"


def test_unknown_route_and_wrong_method(api: Api) -> None:
    r = api.call("viewer", "GET", "/nope")
    assert r.status_code == 404 and envelope(r)["code"] == "not_found"
    r = api.call("viewer", "PUT", "/jails")
    assert r.status_code == 405 and envelope(r)["code"] == "method_not_allowed"
    r = api.client.get("/totally/elsewhere")
    assert r.status_code == 404 and envelope(r)["code"] == "not_found"


def test_exception_group_unknown_jail_in_bans_is_404(api: Api) -> None:
    r = api.call("viewer", "GET", "/bans?jail=AAA")
    assert r.status_code == 404 and envelope(r)["code"] == "jail_not_found"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_exception_group_fail2ban_down_in_bans_is_503(api: Api, fail2ban) -> None:  # type: ignore[no-untyped-def]
    fail2ban.kill()
    r = api.call("viewer", "GET", "/bans?jail=sshd")
    assert r.status_code == 503 and envelope(r)["code"] == "fail2ban_unavailable"
    r = api.call("viewer", "GET", "/bans")
    assert r.status_code == 503 and envelope(r)["code"] == "fail2ban_unavailable"


def test_security_headers_on_500(settings) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from app import create_app

    async def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("unexpected")

    app = create_app(settings)
    app.add_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and envelope(r)["code"] == "internal_error"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"


def test_history_csv_with_bad_filter_is_400_before_the_first_byte(api: Api) -> None:
    r = api.call("viewer", "GET", "/history?event=AAA&format=csv")
    assert r.status_code == 400 and envelope(r)["code"]
    r = api.call("viewer", "GET", "/history?origin=AAA", headers={"Accept": "text/csv"})
    assert r.status_code == 400
    r = api.call("viewer", "GET", "/history?format=csv")
    assert r.status_code == 200 and r.text.startswith("time,event,")


def test_405_allow_lists_every_method_of_the_path(api: Api) -> None:
    r = api.call("viewer", "PUT", "/blocklists")
    assert r.status_code == 405 and envelope(r)["code"] == "method_not_allowed"
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    r = api.call("viewer", "OPTIONS", "/jails/sshd/bans")  # ban (POST) and unban everything (DELETE)
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"DELETE", "POST"}
