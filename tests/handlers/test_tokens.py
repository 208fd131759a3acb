"""API tokens: shown once, hashed at rest, role capped by the creator, revocable, last_used tracked."""

from __future__ import annotations

from tests.fixtures.app import Api


def test_token_is_shown_once_and_works(api: Api) -> None:
    r = api.call("operator", "POST", "/tokens", json={"name": "ci", "role": "viewer", "expires_in_days": 7})
    assert r.status_code == 201
    token = r.json()["token"]
    assert token.startswith("bgt_")
    listed = api.call("operator", "GET", "/tokens").json()["tokens"]
    assert all("token" not in t for t in listed)
    assert token not in str(list(api.store.cache.iterkeys()))  # only its digest is stored
    got = api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    mine = {t["name"]: t for t in api.call("operator", "GET", "/tokens").json()["tokens"]}
    assert mine["ci"]["last_used"] is not None and mine["ci"]["expires_at"] is not None


def test_token_role_cannot_exceed_creator(api: Api) -> None:
    r = api.call("operator", "POST", "/tokens", json={"name": "x", "role": "admin"})
    assert r.status_code == 403


def test_viewer_token_cannot_ban(api: Api) -> None:
    token = api.call("admin", "POST", "/tokens", json={"name": "ro", "role": "viewer"}).json()["token"]
    r = api.client.post("/api/v1/jails/sshd/bans", json={"ips": ["192.0.2.1"]},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_revoke_ends_the_token(api: Api) -> None:
    made = api.call("admin", "POST", "/tokens", json={"name": "tmp", "role": "viewer"}).json()
    assert api.call("admin", "DELETE", f"/tokens/{made['id']}").status_code == 204
    assert api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 401


def test_users_cannot_revoke_others_tokens(api: Api) -> None:
    made = api.call("admin", "POST", "/tokens", json={"name": "admins", "role": "viewer"}).json()
    assert api.call("viewer", "DELETE", f"/tokens/{made['id']}").status_code == 404


def test_a_token_may_revoke_itself_but_not_its_owners_other_tokens(api: Api) -> None:
    first = api.call("admin", "POST", "/tokens", json={"name": "grafana", "role": "viewer"}).json()
    second = api.call("admin", "POST", "/tokens", json={"name": "scraper", "role": "viewer"}).json()
    as_first = {"Authorization": f"Bearer {first['token']}"}
    r = api.client.delete(f"/api/v1/tokens/{second['id']}", headers=as_first)
    assert r.status_code == 403 and r.json()["error"]["code"] == "token_cannot_revoke_others"
    admins = next(t for t in api.store.tokens.list() if t["name"] == "admin-token")
    assert api.client.delete(f"/api/v1/tokens/{admins['id']}", headers=as_first).status_code == 404  # unseen
    assert api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {second['token']}"}).status_code == 200
    assert api.client.delete(f"/api/v1/tokens/{first['id']}", headers=as_first).status_code == 204
    assert api.client.get("/api/v1/jails", headers=as_first).status_code == 401


def test_a_session_or_an_admin_token_may_revoke_the_owners_tokens(api: Api) -> None:
    made = api.call("operator", "POST", "/tokens", json={"name": "ci", "role": "viewer"}).json()
    assert api.login("operator").status_code == 200
    assert api.client.delete(f"/api/v1/tokens/{made['id']}").status_code == 204  # the owner's session
    made = api.call("operator", "POST", "/tokens", json={"name": "ci2", "role": "viewer"}).json()
    assert api.call("admin", "DELETE", f"/tokens/{made['id']}").status_code == 204


def test_expired_token_is_refused(api: Api) -> None:
    token, record = api.store.tokens.create("old", "viewer", "admin", api.store.users.get("admin")["uid"], 1)
    key = next(k for k in api.store.cache.iterkeys() if k.startswith("token:") and api.store.cache.get(k)["id"] == record["id"])
    api.store.cache.set(key, dict(record, expires_at=record["created"] - 1))
    assert api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {token}"}).status_code == 401
