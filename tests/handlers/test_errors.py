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
