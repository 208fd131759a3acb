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


@pytest.mark.anyio
async def test_only_a_list_screened_against_the_protected_addresses_skips_the_second_check(api: Api) -> None:
    """A blocklist's parser screens each entry (refused ones count as invalid) and the ban action does not screen
    them again; a list screened against fewer addresses than the action protects is checked as any other."""
    from actions.bans import ban, protected_addresses
    from core.actor import job
    from core.deps import Deps
    from core.refusals import Screened
    from errors import InvalidInput
    from f2b.client import Fail2Ban

    deps = Deps(api.settings, api.store, Fail2Ban(api.settings.fail2ban_socket))
    protected = frozenset(protected_addresses(api.settings))
    assert protected, "bangui's own addresses (loopback at least) are protected"
    with pytest.raises(InvalidInput) as refused:
        await ban(deps, job("blocklist:forged"), "sshd", Screened(["192.0.2.1", "127.0.0.1"], frozenset()))
    assert "127.0.0.1" in refused.value.details["refused"]
    from jobs.blocklists import parse
    parsed = parse("192.0.2.2\n127.0.0.1\n192.0.2.3 # ok\n", protected=protected)
    assert (parsed.entries, parsed.invalid) == (["192.0.2.2", "192.0.2.3"], 1)
    result = await ban(deps, job("blocklist:real"), "sshd", parsed.entries)
    assert result["banned"] == ["192.0.2.2", "192.0.2.3"]
    await deps.fail2ban.aclose()
