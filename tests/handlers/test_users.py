"""User management: create, list, change role/password, delete; the last admin stays."""

from __future__ import annotations

from tests.fixtures.app import Api


def test_create_list_and_delete_a_user(api: Api) -> None:
    r = api.call("admin", "POST", "/users", json={"username": "dana", "password": "a long password!", "role": "operator"})
    assert r.status_code == 201
    assert "hash" not in r.json()
    names = [u["name"] for u in api.call("admin", "GET", "/users").json()["users"]]
    assert "dana" in names
    assert api.call("admin", "POST", "/users", json={"username": "dana", "password": "a long password!"}).status_code == 409
    assert api.call("admin", "DELETE", "/users/dana").status_code == 204
    assert api.call("admin", "DELETE", "/users/dana").status_code == 404


def test_last_admin_cannot_be_deleted_or_demoted(api: Api) -> None:
    r = api.call("admin", "DELETE", "/users/admin")
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
    r = api.call("admin", "PATCH", "/users/admin", json={"role": "viewer"})
    assert r.status_code == 409
    api.call("admin", "POST", "/users", json={"username": "second", "password": "a long password!", "role": "admin"})
    assert api.call("admin", "PATCH", "/users/admin", json={"role": "viewer"}).status_code == 200


def test_demotion_caps_the_users_tokens(api: Api) -> None:
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]}).status_code == 200
    api.call("admin", "PATCH", "/users/operator", json={"role": "viewer"})
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.2"]})
    assert r.status_code == 403


def test_deleting_a_user_revokes_their_tokens(api: Api) -> None:
    assert api.call("viewer", "GET", "/jails").status_code == 200
    api.call("admin", "DELETE", "/users/viewer")
    assert api.call("viewer", "GET", "/jails").status_code == 401


def test_bad_role_and_weak_password(api: Api) -> None:
    r = api.call("admin", "POST", "/users", json={"username": "x1", "password": "a long password!", "role": "root"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_role"
    r = api.call("admin", "POST", "/users", json={"username": "x2", "password": "short"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
