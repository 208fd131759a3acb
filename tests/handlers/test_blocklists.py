"""Blocklists through the API: create, run on the elected leader, bans in the jail and in history with
origin "blocklist"; roles; validation at creation; the SSRF guard recorded as the list's error. Lists are
served by a real HTTP server on 127.0.0.1 (the only address tests may reach), so the app's settings allow
private targets, except where the refusal itself is under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from tests.fixtures.app import Api, make_settings
from tests.fixtures.blocklist_server import EXPECTED, ListServer
from tests.fixtures.waiting import wait_for


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, fail2ban: Any) -> Settings:
    """The app's settings: private targets allowed unless a test passes its own changes (indirect)."""
    changes = getattr(request, "param", {"blocklist_allow_private": True})
    return make_settings(tmp_path / "data", str(fail2ban.socket), leader_candidate=True, **changes)


@pytest.fixture
def lists() -> Iterator[ListServer]:
    server = ListServer()  # serving LIST at /list.txt
    yield server
    server.close()


def one(api: Api, name: str) -> dict[str, Any]:
    [record] = [b for b in api.call("viewer", "GET", "/blocklists").json()["blocklists"] if b["name"] == name]
    return record


def run_and_wait(api: Api, name: str) -> dict[str, Any]:
    """POST run, then wait (bounded) until the leader has recorded a newer run; returns the record."""
    runs = one(api, name)["runs"]
    r = api.call("operator", "POST", f"/blocklists/{name}/run")
    assert r.status_code == 202 and r.json()["name"] == name, r.text
    return wait_for(timeout=15.0, predicate=lambda: (rec := one(api, name))["runs"] > runs and rec)


def test_import_bans_every_entry_and_records_history(api: Api, lists: ListServer) -> None:
    # Disabled, so that only our run requests import it (an enabled list is also imported at the job's next look).
    r = api.call("admin", "POST", "/blocklists", json={"name": "drop", "url": lists.url("/list.txt"),
                                                       "jail": "sshd", "interval_s": 3600, "enabled": False})
    assert r.status_code == 201, r.text
    assert (r.json()["interval_s"], r.json()["runs"], r.json()["created_by"]) == (3600, 0, "token:admin-token")
    record = run_and_wait(api, "drop")
    assert (record["last_status"], record["last_error"]) == ("ok", None)
    assert (record["last_count"], record["last_added"], record["last_invalid"]) == (5, 5, 3)
    assert record["last_invalid_examples"] == ["not-an-ip", "999.1.1.1", "0.0.0.0/0"]
    assert record["next_due"] is None  # disabled: runs on request only
    bans = api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"]
    assert sorted(b["ip"] for b in bans) == sorted(EXPECTED)  # CIDR ranges banned as networks, not skipped
    items = api.call("viewer", "GET", "/history?origin=blocklist").json()["items"]
    assert sorted((i["ip"], i["jail"], i["actor"]) for i in items) == sorted(
        (ip, "sshd", "blocklist:drop") for ip in EXPECTED)

    again = run_and_wait(api, "drop")  # same list: nothing new, no second history event
    assert (again["last_status"], again["last_count"], again["last_added"]) == ("ok", 5, 0)
    assert len(api.call("viewer", "GET", "/history?origin=blocklist").json()["items"]) == len(EXPECTED)
    assert {host for _, host in lists.seen} == {f"127.0.0.1:{lists.httpd.server_port}"}


def test_roles(api: Api, lists: ListServer) -> None:
    body = {"name": "drop", "url": lists.url("/list.txt"), "jail": "sshd"}
    for persona in ("viewer", "operator"):
        assert api.call(persona, "POST", "/blocklists", json=body).status_code == 403
    assert api.call("admin", "POST", "/blocklists", json=body).status_code == 201
    assert api.call("viewer", "POST", "/blocklists/drop/run").status_code == 403
    assert api.call("operator", "DELETE", "/blocklists/drop").status_code == 403
    assert api.call("operator", "POST", "/blocklists/drop/run").status_code == 202
    assert [b["name"] for b in api.call("viewer", "GET", "/blocklists").json()["blocklists"]] == ["drop"]
    assert api.call("admin", "DELETE", "/blocklists/drop").status_code == 204
    assert api.call("admin", "DELETE", "/blocklists/drop").status_code == 404
    assert api.call("operator", "POST", "/blocklists/drop/run").json()["error"]["code"] == "blocklist_not_found"


@pytest.mark.parametrize(("changes", "code"), [
    ({"url": "file:///etc/passwd"}, "invalid_url"),
    ({"url": "ftp://127.0.0.1/list.txt"}, "invalid_url"),
    ({"url": "http://user:secret@127.0.0.1/list.txt"}, "invalid_url"),
    ({"url": "http:///list.txt"}, "invalid_url"),
    ({"jail": "ssh d"}, "invalid_jail_name"),
    ({"jail": "no-such-jail"}, "jail_not_found"),
    ({"name": "a/b"}, "invalid_blocklist_name"),
    ({"interval_s": 299}, "invalid_body"),
    ({"bogus": 1}, "invalid_body"),
])
def test_bad_blocklists_are_refused_at_creation(api: Api, changes: dict[str, Any], code: str) -> None:
    body = {"name": "drop", "url": "http://127.0.0.1:9/list.txt", "jail": "sshd", **changes}
    r = api.call("admin", "POST", "/blocklists", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, code), r.text
    assert api.call("viewer", "GET", "/blocklists").json()["blocklists"] == []


def test_a_name_is_taken_once(api: Api) -> None:
    body = {"name": "drop", "url": "http://127.0.0.1:9/list.txt", "jail": "sshd", "enabled": False}
    assert api.call("admin", "POST", "/blocklists", json=body).status_code == 201
    r = api.call("admin", "POST", "/blocklists", json=dict(body, jail="nginx-http-auth"))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "blocklist_exists")
    assert one(api, "drop")["jail"] == "sshd" and one(api, "drop")["next_due"] is None


@pytest.mark.parametrize("settings", [{}], indirect=True)  # the defaults: private targets refused
def test_loopback_target_is_refused_and_recorded(api: Api, lists: ListServer) -> None:
    body = {"name": "inside", "url": lists.url("/list.txt"), "jail": "sshd"}
    assert api.call("admin", "POST", "/blocklists", json=body).status_code == 201  # the form is fine
    record = run_and_wait(api, "inside")
    assert record["last_status"] == "error"
    assert "refused: 127.0.0.1 is a loopback address" in record["last_error"]
    assert "BANGUI_BLOCKLIST_ALLOW_PRIVATE" in record["last_error"]
    assert lists.seen == []  # never connected
    assert api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"] == []


@pytest.mark.parametrize("settings", [{"blocklist_allow_private": True, "blocklist_max_bytes": 100}],
                         indirect=True)
def test_oversize_list_is_refused_and_nothing_banned(api: Api, lists: ListServer) -> None:
    body = {"name": "big", "url": lists.url("/list.txt"), "jail": "sshd"}
    assert api.call("admin", "POST", "/blocklists", json=body).status_code == 201
    record = run_and_wait(api, "big")
    assert record["last_status"] == "error" and "exceeds 100 bytes" in record["last_error"]
    assert api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"] == []


def test_preview_counts_entries_invalid_and_refused_lines_and_bans_nothing(api: Api, lists: ListServer,
                                                                          fail2ban: Any) -> None:
    body = {"name": "drop", "url": lists.url("/list.txt"), "jail": "sshd"}
    assert api.call("operator", "POST", "/blocklists/preview", json=body).status_code == 403
    r = api.call("admin", "POST", "/blocklists/preview", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"entries": len(EXPECTED), "invalid": 2, "refused": 1,
                        "invalid_samples": ["not-an-ip", "999.1.1.1"], "refused_samples": ["0.0.0.0/0"]}
    assert len(lists.seen) == 1  # fetched once, for real
    assert api.call("viewer", "GET", "/blocklists").json()["blocklists"] == []  # nothing stored
    assert api.call("viewer", "GET", "/history").json()["items"] == []  # nothing banned
    assert api.call("viewer", "GET", "/jails/sshd").json()["currently_banned"] == 0
    entry = next(iter(api.store.audit.iter_all()))
    assert (entry["action"], entry["outcome"], entry["details"]["refused"]) == ("blocklist.preview", "ok", 1)
    bad = api.call("admin", "POST", "/blocklists/preview", json=dict(body, jail="no-such-jail"))
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "jail_not_found")


@pytest.mark.parametrize("settings", [{}], indirect=True)  # the defaults: private targets refused
def test_preview_fetches_under_the_ssrf_rules(api: Api, lists: ListServer) -> None:
    r = api.call("admin", "POST", "/blocklists/preview",
                 json={"name": "drop", "url": lists.url("/list.txt"), "jail": "sshd"})
    assert (r.status_code, r.json()["error"]["code"]) == (502, "blocklist_fetch_failed"), r.text
    assert "loopback" in r.json()["error"]["message"] and lists.seen == []
