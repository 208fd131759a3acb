"""GET/PATCH /preferences (issue 23 item 6): each user's display preferences, kept server-side and audited."""

from __future__ import annotations

from tests.fixtures.app import Api

DEFAULTS = {"time_zone": "UTC", "date_format": "iso", "relative_times": False, "theme": "auto"}


def test_defaults_then_any_subset_is_kept_per_user(api: Api) -> None:
    assert api.call("viewer", "GET", "/preferences").json() == DEFAULTS
    r = api.call("viewer", "PATCH", "/preferences", json={"time_zone": "Europe/Paris", "theme": "dark"})
    assert r.status_code == 200, r.text
    assert r.json() == dict(DEFAULTS, time_zone="Europe/Paris", theme="dark")
    r = api.call("viewer", "PATCH", "/preferences", json={"relative_times": True, "date_format": "locale"})
    assert r.json() == {"time_zone": "Europe/Paris", "date_format": "locale", "relative_times": True,
                        "theme": "dark"}
    assert api.call("operator", "GET", "/preferences").json() == DEFAULTS  # another user's are their own
    assert api.store.preferences.get("viewer")["theme"] == "dark"  # in the shared store, for every worker


def test_a_session_and_a_token_of_one_user_share_them(api: Api) -> None:
    api.call("admin", "PATCH", "/preferences", json={"theme": "light"})
    assert api.login().status_code == 200
    assert api.client.get("/api/v1/preferences").json()["theme"] == "light"  # the cookie session of admin


def test_bad_values_are_400_and_change_nothing(api: Api) -> None:
    for body, field in (({"time_zone": "Mars/Olympus"}, "time_zone"), ({"time_zone": "../etc/passwd"}, "time_zone"),
                        ({"time_zone": "Europe"}, "time_zone"), ({"theme": "neon"}, None),
                        ({"date_format": "us"}, None), ({"relative_times": "yes"}, None), ({"colour": "red"}, None)):
        r = api.call("viewer", "PATCH", "/preferences", json=body)
        assert r.status_code == 400, (body, r.text)
        if field:
            assert r.json()["error"]["code"] == "invalid_time_zone"
    assert api.call("viewer", "GET", "/preferences").json() == DEFAULTS


def test_roles_and_audit(api: Api) -> None:
    assert api.call("anonymous", "GET", "/preferences").status_code == 401
    assert api.call("metrics", "GET", "/preferences").status_code == 403
    api.call("viewer", "PATCH", "/preferences", json={"theme": "dark"})
    entry = next(iter(api.store.audit.iter_all()))
    assert (entry["action"], entry["actor"], entry["target"], entry["outcome"]) == (
        "preferences.update", "token:viewer-token", "viewer", "ok")
    assert entry["details"]["changes"] == {"theme": "dark"}


def test_a_deleted_user_takes_their_preferences_along(api: Api) -> None:
    api.call("operator", "PATCH", "/preferences", json={"theme": "dark"})
    assert api.call("admin", "DELETE", "/users/operator").status_code == 204
    assert api.store.preferences.get("operator") == DEFAULTS
