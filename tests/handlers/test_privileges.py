"""Issue 8, privileges: changes to a user are all or nothing and reach every credential at once;
deleted users' credentials are dead; CLI tokens have an owner; names fold case and full-match."""

from __future__ import annotations

import getpass
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.fixtures.app import PASSWORD, Api

ROOT = Path(__file__).resolve().parents[2]


def cookie_headers(api: Api, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = api.login(username, password)
    assert r.status_code == 200, r.text
    api.client.cookies.clear()  # keep the session explicit, per request
    return {"Cookie": f"bangui_session={r.cookies['bangui_session']}"}


def test_patch_that_fails_on_the_password_saves_no_role(api: Api) -> None:
    r = api.call("admin", "PATCH", "/users/operator", json={"role": "viewer", "password": "short"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    assert api.store.users.get("operator")["role"] == "operator"


def test_a_demoted_admins_session_and_token_lose_admin_at_once(api: Api) -> None:
    api.call("admin", "POST", "/users", json={"username": "boss", "password": PASSWORD, "role": "admin"})
    session = cookie_headers(api, "boss")
    token = api.client.post("/api/v1/tokens", headers=session, json={"name": "t", "role": "admin"}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/users", headers=session).status_code == 200
    assert api.call("admin", "PATCH", "/users/boss", json={"role": "viewer"}).status_code == 200
    new_admin = {"username": "sneaky", "password": PASSWORD, "role": "admin"}
    assert api.client.post("/api/v1/users", headers=session, json=new_admin).status_code == 403
    assert api.client.post("/api/v1/users", headers=bearer, json=new_admin).status_code == 403
    assert api.client.get("/api/v1/auth/session", headers=session).json()["role"] == "viewer"
    listed = api.call("admin", "GET", "/tokens").json()["tokens"]
    assert [t["role"] for t in listed if t["owner"] == "boss"] == ["viewer"]


def test_a_password_change_ends_every_session_but_keeps_tokens(api: Api) -> None:
    session = cookie_headers(api, "viewer")
    assert api.call("admin", "PATCH", "/users/viewer", json={"password": "a brand new password"}).status_code == 200
    assert api.client.get("/api/v1/auth/session", headers=session).status_code == 401
    assert api.call("viewer", "GET", "/jails").status_code == 200


def test_credentials_of_a_deleted_user_never_work_even_if_the_name_returns(api: Api) -> None:
    api.call("admin", "POST", "/users", json={"username": "bob", "password": PASSWORD, "role": "operator"})
    session = cookie_headers(api, "bob")
    token = api.client.post("/api/v1/tokens", headers=session, json={"name": "t", "role": "operator"}).json()
    assert api.call("admin", "DELETE", "/users/bob").status_code == 204
    api.call("admin", "POST", "/users", json={"username": "bob", "password": PASSWORD, "role": "operator"})
    assert api.client.get("/api/v1/jails", headers=session).status_code == 401
    assert api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {token['token']}"}).status_code == 401
    assert all(t["id"] != token["id"] for t in api.call("admin", "GET", "/tokens").json()["tokens"])


def test_race_token_creation_against_user_deletion_leaves_no_working_token(api: Api) -> None:
    for round_ in range(10):
        name = f"racer{round_}"
        api.call("admin", "POST", "/users", json={"username": name, "password": PASSWORD, "role": "admin"})
        session = cookie_headers(api, name)
        made: list[Any] = []

        def create(session: dict[str, str] = session, made: list[Any] = made) -> None:
            for _ in range(3):
                made.append(api.client.post("/api/v1/tokens", headers=session, json={"name": "r", "role": "admin"}))

        thread = threading.Thread(target=create)
        thread.start()
        api.call("admin", "DELETE", f"/users/{name}")
        thread.join()
        for response in made:
            if response.status_code == 201:
                bearer = {"Authorization": f"Bearer {response.json()['token']}"}
                assert api.client.get("/api/v1/users", headers=bearer).status_code == 401
        assert all(t["owner"] != name for t in api.call("admin", "GET", "/tokens").json()["tokens"])


def _cli(api: Api, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", api.settings.data_dir],
                          input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def test_cli_tokens_have_an_owner_and_a_viewer_cli_token_cannot_manage_admin_ones(api: Api) -> None:
    viewer = _cli(api, "token", "create", "--name", "ro", "--role", "viewer").stdout.strip()
    admin = _cli(api, "token", "create", "--name", "rw", "--role", "admin").stdout.strip()
    owner = f"cli:{getpass.getuser()}"
    tokens = {t["name"]: t for t in api.call("admin", "GET", "/tokens").json()["tokens"]}
    assert tokens["ro"]["owner"] == tokens["rw"]["owner"] == owner
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    seen = api.client.get("/api/v1/tokens", headers=as_viewer).json()["tokens"]
    assert [t["name"] for t in seen] == ["ro"]
    assert api.client.delete(f"/api/v1/tokens/{tokens['rw']['id']}", headers=as_viewer).status_code == 404
    made = api.client.post("/api/v1/tokens", headers=as_viewer, json={"name": "child", "role": "viewer"}).json()
    assert made["owner"] == owner
    assert api.client.post("/api/v1/tokens", headers=as_viewer, json={"name": "up", "role": "admin"}).status_code == 403
    assert api.client.get("/api/v1/users", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    assert api.client.delete("/api/v1/auth/sessions", headers=as_viewer).status_code == 403  # only itself
    assert api.client.delete("/api/v1/auth/sessions", headers={"Authorization": f"Bearer {admin}"}
                             ).json() == {"ended": 0}


def test_cli_changes_are_audited_as_the_os_user(api: Api) -> None:
    assert _cli(api, "user", "add", "carol", "--role", "viewer", stdin=PASSWORD + "\n").returncode == 0
    assert _cli(api, "user", "passwd", "carol", stdin="a new long password\n").returncode == 0
    token = _cli(api, "token", "create", "--name", "t", "--role", "viewer").stdout.strip()
    token_id = next(t["id"] for t in api.store.tokens.list() if t["name"] == "t")
    assert _cli(api, "token", "revoke", token_id).returncode == 0
    assert _cli(api, "user", "delete", "operator").returncode == 0
    entries = list(api.store.audit.iter_all())
    assert [(e["action"], e["outcome"], e["via"]) for e in entries[:5]] == [
        ("user.delete", "ok", "cli"), ("token.revoke", "ok", "cli"), ("token.create", "ok", "cli"),
        ("user.update", "ok", "cli"), ("user.create", "ok", "cli")]
    stored = b"".join(p.read_bytes() for p in api.store.path.glob("audit.db*"))
    assert token.encode() not in stored and b"a new long password" not in stored
    assert entries[0]["actor"] == f"cli:{getpass.getuser()}"
    assert _cli(api, "user", "delete", "nobody").returncode == 1
    assert list(api.store.audit.iter_all())[0]["outcome"] == "failed"
    verify = _cli(api, "audit", "verify")
    assert verify.returncode == 0 and '"ok": true' in verify.stdout


def test_usernames_fold_case_and_names_full_match(api: Api) -> None:
    r = api.call("admin", "POST", "/users", json={"username": "Admin", "password": PASSWORD})
    assert r.status_code == 409 and r.json()["error"]["code"] == "user_exists"
    assert api.login("ADMIN").status_code == 200
    assert api.call("admin", "POST", "/users", json={"username": "eve\n", "password": PASSWORD}).status_code == 400
    assert api.call("operator", "POST", "/jails/sshd%0A/bans", json={"ips": ["192.0.2.1"]}).status_code == 400
    bl = {"name": "bl\n", "url": "https://example.com/x", "jail": "sshd"}
    assert api.call("admin", "POST", "/blocklists", json=bl).status_code == 400


def test_a_failure_on_one_spelling_counts_for_the_user_but_not_against_a_new_address(api: Api) -> None:
    for _ in range(5):
        assert api.login("Admin", "wrong password").status_code == 401
    assert api.login("admin").status_code == 429  # same address: limited, whatever the spelling


def test_setup_refuses_cross_site_requests(bare_client: Any) -> None:
    r = bare_client.post("/api/v1/setup", json={"setup_token": "x", "username": "a", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_rejected"
