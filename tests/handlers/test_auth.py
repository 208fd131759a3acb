"""Login, sessions, cookie flags, log out everywhere, CSRF and login rate limits."""

from __future__ import annotations

import logging

import pytest

from tests.fixtures.app import PASSWORD, Api


def test_login_sets_a_strict_httponly_session_cookie(api: Api) -> None:
    r = api.login()
    assert r.status_code == 200
    assert r.json()["username"] == "admin" and r.json()["role"] == "admin"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("bangui_session=")
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 43  # >= 256 bits, urlsafe base64
    for flag in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http, no proxy, BANGUI_COOKIE_SECURE unset
    assert api.client.get("/api/v1/auth/session").json()["username"] == "admin"


def test_cookie_is_secure_behind_a_trusted_https_proxy(api: Api) -> None:
    r = api.client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD},
                        headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in r.headers["set-cookie"].lower()  # the test client's peer is not trusted


def test_logout_ends_the_session(api: Api) -> None:
    api.login()
    assert api.client.post("/api/v1/auth/logout").status_code == 204
    r = api.client.get("/api/v1/auth/session")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_wrong_password_is_401_and_logs_one_parseable_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bangui.auth"):
        r = api.login(password="wrong password!")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    [line] = [rec.getMessage() for rec in caplog.records if "login failed" in rec.getMessage()]
    assert line == 'bangui login failed: client=testclient user="admin" reason=bad_credentials'
    assert PASSWORD not in caplog.text and "wrong password!" not in caplog.text


def test_logout_everywhere_ends_all_sessions_of_the_user(api: Api) -> None:
    first = api.login().cookies["bangui_session"]
    assert api.login().status_code == 200  # a second session, now in the client's jar
    r = api.client.delete("/api/v1/auth/sessions")
    assert r.status_code == 200 and r.json()["ended"] == 2
    api.client.cookies.clear()
    assert api.client.get("/api/v1/auth/session", headers={"Cookie": f"bangui_session={first}"}).status_code == 401


def test_a_viewer_token_cannot_end_its_owners_sessions(api: Api) -> None:
    made = api.call("admin", "POST", "/tokens", json={"name": "grafana", "role": "viewer"}).json()
    assert api.login().status_code == 200  # the admin's session, in the client's jar
    r = api.client.delete("/api/v1/auth/sessions", headers={"Authorization": f"Bearer {made['token']}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_cannot_end_sessions"
    assert api.client.get("/api/v1/auth/session").status_code == 200  # still logged in
    refused = [e for e in api.store.audit.iter_all(action="auth.logout_everywhere")]
    assert [(e["actor"], e["outcome"]) for e in refused] == [("token:grafana", "denied")]


def test_an_admin_token_may_end_its_owners_sessions(api: Api) -> None:
    assert api.login().status_code == 200
    r = api.client.delete("/api/v1/auth/sessions", headers=api.as_("admin"))
    assert r.status_code == 200 and r.json() == {"ended": 1}
    assert api.client.get("/api/v1/auth/session").status_code == 401


def test_password_change_ends_that_users_sessions(api: Api) -> None:
    api.login("viewer")
    assert api.client.get("/api/v1/auth/session").status_code == 200
    r = api.call("admin", "PATCH", "/users/viewer", json={"password": "another long password"})
    assert r.status_code == 200
    assert api.client.get("/api/v1/auth/session").status_code == 401
    assert api.login("viewer", "another long password").status_code == 200


def test_rate_limit_after_five_failures_with_retry_after(api: Api) -> None:
    codes = [api.login(password=f"wrong-{i}").status_code for i in range(7)]
    assert codes == [401] * 5 + [429] * 2
    r = api.login()
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 0 < int(r.headers["retry-after"]) <= 900


def test_success_resets_the_username_counter(api: Api) -> None:
    for _ in range(3):
        api.login(password="wrong")
    assert api.login().status_code == 200
    assert api.store.cache.get("ratelimit:login:user:admin") is None


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
])
def test_cross_origin_cookie_requests_are_refused(api: Api, headers: dict[str, str]) -> None:
    api.login("operator")
    r = api.client.post("/api/v1/jails/sshd/bans", json={"ips": ["192.0.2.1"]}, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_rejected"
    assert api.call("viewer", "GET", "/bans").json()["bans"] == []


def test_same_origin_and_headerless_cookie_requests_pass(api: Api) -> None:
    api.login("operator")
    ok = api.client.post("/api/v1/jails/sshd/bans", json={"ips": ["192.0.2.1"]},
                         headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200, ok.text
    assert api.client.post("/api/v1/jails/sshd/bans", json={"ips": ["192.0.2.2"]}).status_code == 200


def test_bearer_requests_ignore_cross_site_headers(api: Api) -> None:
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]},
                 headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200


def test_unknown_or_malformed_credentials_are_401(api: Api) -> None:
    for headers in ({"Authorization": "Bearer bgt_nope"}, {"Authorization": "Basic YTpi"},
                    {"Cookie": "bangui_session=forged"}):
        assert api.client.get("/api/v1/jails", headers=headers).status_code == 401
