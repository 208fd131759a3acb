"""First-run setup: only the holder of the one-time token from the data dir can create the first admin."""

from __future__ import annotations

import stat
from pathlib import Path

from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from store import Store

ADMIN = {"username": "root-admin", "password": "a long enough password"}


def token_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "setup-token"


def test_setup_needs_the_token_from_the_data_dir(bare_client: TestClient, settings: Settings) -> None:
    assert bare_client.get("/api/v1/setup").json() == {"complete": False}
    path = token_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(settings.data_dir).stat().st_mode) == 0o700
    wrong = bare_client.post("/api/v1/setup", json={"setup_token": "guess", **ADMIN})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_setup_token"
    missing = bare_client.post("/api/v1/setup", json=ADMIN)
    assert missing.status_code == 400
    ok = bare_client.post("/api/v1/setup", json={"setup_token": path.read_text().strip(), **ADMIN})
    assert ok.status_code == 201 and ok.json()["role"] == "admin"
    assert not path.exists()
    again = bare_client.post("/api/v1/setup", json={"setup_token": "anything", **ADMIN})
    assert again.status_code == 409
    assert bare_client.get("/api/v1/setup").json() == {"complete": True}
    assert bare_client.post("/api/v1/auth/login", json={k: ADMIN[k] for k in ADMIN}).status_code == 200


def test_short_password_is_refused_with_a_clear_message(bare_client: TestClient, settings: Settings) -> None:
    token = token_file(settings).read_text().strip()
    r = bare_client.post("/api/v1/setup", json={"setup_token": token, "username": "a", "password": "short"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    assert "12" in r.json()["error"]["message"]


def test_admin_password_setting_creates_admin_and_no_token(settings: Settings) -> None:
    from dataclasses import replace

    provisioned = replace(settings, admin_password="provisioned password")
    with TestClient(create_app(provisioned)) as client:
        assert client.get("/api/v1/setup").json() == {"complete": True}
        assert not token_file(settings).exists()
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": "provisioned password"})
        assert login.status_code == 200
    store = Store(settings)
    assert [u["name"] for u in store.users.list()] == ["admin"]
    store.close()
