"""Issue 8 item 7: what must never be banned is refused (400 `refused_address`, nothing banned), the
caller's own address only unless an admin insists with "force" (audited)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from tests.fixtures.app import Api

NEVER = ["0.0.0.0/0", "::/0", "128.0.0.0/1", "::/1", "127.0.0.1", "::1", "127.0.0.0/8", "224.0.0.1",
         "255.255.255.255", "fe80::1%eth0", "1.2.3.4/0.0.0.0", "::ffff:127.0.0.1", "10.0.0.0/7"]
CALLER = "203.0.113.77"


@pytest.mark.parametrize("entry", NEVER)
def test_addresses_that_must_never_be_banned_are_refused(api: Api, entry: str) -> None:
    r = api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", entry], "force": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "refused_address", r.text
    assert entry in r.json()["error"]["details"]["refused"]
    assert api.call("viewer", "GET", "/bans").json()["bans"] == []  # all or nothing


@pytest.fixture
def remote(settings: Settings, api: Api) -> Iterator[TestClient]:
    """The app as a client at CALLER would reach it (the TCP peer is that address)."""
    with TestClient(create_app(settings), client=(CALLER, 40000)) as client:
        yield client


def test_the_callers_own_address_needs_an_admins_force(api: Api, remote: TestClient) -> None:
    def ban(persona: str, **extra: object) -> object:
        return remote.post("/api/v1/jails/sshd/bans", json={"ips": ["203.0.113.0/24"], **extra},
                           headers=api.as_(persona))

    refused = ban("operator")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "refused_address"  # type: ignore[attr-defined]
    assert ban("operator", force=True).status_code == 403  # type: ignore[attr-defined]
    assert ban("admin", force=True).status_code == 200  # type: ignore[attr-defined]
    entry = next(e for e in api.store.audit.iter_all() if e["action"] == "jail.ban" and e["outcome"] == "ok")
    assert entry["details"]["force"] is True and entry["source_ip"] == CALLER
