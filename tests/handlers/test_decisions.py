"""CrowdSec's LAPI for bouncers (issue 22): decisions from a real private fail2ban, published as the leader's
`decisions` job does, answered to bouncer keys only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from core.deps import Deps
from f2b.client import Fail2Ban
from jobs.decisions import sync
from store import Store
from store.decisions import go_duration
from tests.fixtures.app import Api, make_settings

ROOT = Path(__file__).resolve().parents[2]
GO_DURATION = re.compile(r"(\d+h)?(\d+m)?\d+s")


def publish(api: Api) -> None:
    """One full sync of the view of current bans, as the `decisions` job runs it (without the election)."""
    async def run() -> None:
        client = Fail2Ban(api.settings.fail2ban_socket)
        try:
            await sync(Deps(api.settings, api.store, client), full=True)
        finally:
            await client.aclose()
    anyio.run(run)


def f2b(api: Api, *args: str) -> Any:
    """One command straight to fail2ban, behind bangui's back."""
    async def run() -> Any:
        client = Fail2Ban(api.settings.fail2ban_socket)
        try:
            return await client.call(*args)
        finally:
            await client.aclose()
    return anyio.run(run)


def bouncer(api: Api, name: str = "edge") -> str:
    made = api.call("admin", "POST", "/bouncers", json={"name": name})
    assert made.status_code == 201, made.text
    return str(made.json()["api_key"])


def poll(api: Api, key: str, query: str = "", startup: bool = False) -> Any:
    url = f"/v1/decisions/stream?startup={'true' if startup else 'false'}" + (f"&{query}" if query else "")
    r = api.client.get(url, headers={"X-Api-Key": key, "User-Agent": "crowdsec-custom-bouncer/-"})
    assert r.status_code == 200, r.text
    return r.json()


def values(decisions: list[dict[str, Any]] | None) -> set[str]:
    return {d["value"] for d in decisions or []}


def test_startup_answers_every_current_ban_as_a_lapi_decision(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "198.51.100.0/24"]})
    publish(api)
    got = poll(api, bouncer(api), startup=True)
    assert got["deleted"] is None
    by_value = {d["value"]: d for d in got["new"]}
    assert set(by_value) == {"192.0.2.1", "198.51.100.0/24"}
    one = by_value["192.0.2.1"]
    assert set(one) == {"id", "origin", "type", "scope", "value", "duration", "scenario"}
    assert isinstance(one["id"], int) and one["origin"] == "manual" and one["type"] == "ban"
    assert one["scope"] == "Ip" and by_value["198.51.100.0/24"]["scope"] == "Range"
    assert one["scenario"] == "fail2ban/sshd" and GO_DURATION.fullmatch(one["duration"])


def test_later_polls_answer_only_what_changed_with_stable_ids(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    publish(api)
    key = bouncer(api)
    first = {d["value"]: d["id"] for d in poll(api, key, startup=True)["new"]}
    assert poll(api, key) == {"new": None, "deleted": None}
    api.call("operator", "DELETE", "/bans/192.0.2.1")
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.3"]})
    publish(api)
    got = poll(api, key)
    assert values(got["new"]) == {"192.0.2.3"} and values(got["deleted"]) == {"192.0.2.1"}
    assert got["deleted"][0]["id"] == first["192.0.2.1"]
    assert poll(api, key) == {"new": None, "deleted": None}
    again = {d["value"]: d["id"] for d in poll(api, key, startup=True)["new"]}
    assert again["192.0.2.2"] == first["192.0.2.2"]  # stable for one ban


def test_each_bouncer_has_its_own_position(api: Api) -> None:
    publish(api)
    a, b = bouncer(api, "a"), bouncer(api, "b")
    poll(api, a, startup=True), poll(api, b, startup=True)
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.9"]})
    publish(api)
    assert values(poll(api, a)["new"]) == {"192.0.2.9"}
    assert values(poll(api, b)["new"]) == {"192.0.2.9"}
    assert poll(api, a)["new"] is None


def expire_changes(api: Api) -> None:
    """What the retention does to changes nobody pulled in time (store/decisions.py `trim`)."""
    api.store.decisions.retention_s = 0.0
    api.store.decisions.trim(force=True)


def test_a_bouncer_away_longer_than_the_retention_gets_a_full_resync_with_what_ended(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.3"]})
    publish(api)
    key = bouncer(api)
    poll(api, key, startup=True)
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.2"]})
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.1")
    publish(api)
    expire_changes(api)
    got = poll(api, key)
    assert values(got["new"]) == {"192.0.2.2", "192.0.2.3"}  # everything, as at startup: never a silent gap
    assert values(got["deleted"]) == {"192.0.2.1"}  # and what ended meanwhile: not enforced forever
    assert poll(api, key) == {"new": None, "deleted": None}


def test_a_bouncer_whose_previous_poll_another_fleet_host_answered_is_resynced_with_what_ended_since(
        api: Api) -> None:
    """Fleet mode keeps positions per host: a bouncer that moved here (handlers/decisions.py reads the host of its
    previous poll from the fleet's store) gets every current decision and what this host saw end since then."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    publish(api)
    polled_elsewhere = api.store.clock()
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.1")
    publish(api)
    new, deleted = api.store.decisions.pull("edge", startup=False, moved_since=polled_elsewhere)
    assert {row[2] for row in new} == {"192.0.2.2"} and {row[2] for row in deleted} == {"192.0.2.1"}
    assert api.store.decisions.pull("edge", startup=False) == ([], [])  # from then on, this host's position


def test_a_bouncer_away_longer_than_the_retention_that_moved_hosts_still_gets_what_ended(api: Api) -> None:
    """Fleet mode: this host's positions do not know a bouncer that polled other hosts; the lifted bans since the
    fleet's oldest bouncer poll survive the trim, so that bouncer, back here after more than the retention, is told
    to delete them (store/decisions.py `trim`, jobs/decisions.py)."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    publish(api)
    polled_elsewhere = api.store.clock()
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.1")
    publish(api)
    api.store.decisions.retention_s = 0.0
    api.store.decisions.trim(force=True, fleet_pulled_since=polled_elsewhere)
    new, deleted = api.store.decisions.pull("edge", startup=False, moved_since=polled_elsewhere)
    assert {row[2] for row in new} == {"192.0.2.2"} and {row[2] for row in deleted} == {"192.0.2.1"}
    # without the fleet's oldest poll (one host), a lifted ban nobody here needs is trimmed
    api.store.decisions.trim(force=True)
    _, deleted = api.store.decisions.pull("other", startup=False, moved_since=polled_elsewhere)
    assert deleted == []


def test_unbans_and_expiries_are_deleted_in_every_path(api: Api) -> None:
    """Through bangui (at once), behind bangui's back (fail2ban unbans or expires: at the next sync), polled
    incrementally, and after a resync for a second bouncer that was away."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]})
    publish(api)
    near, far = bouncer(api, "near"), bouncer(api, "far")
    poll(api, near, startup=True)
    poll(api, far, startup=True)
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.1")
    assert values(poll(api, near)["deleted"]) == {"192.0.2.1"}  # no sync needed
    f2b(api, "set", "sshd", "unbanip", "192.0.2.2")  # what an expiry looks like to the sync
    publish(api)
    assert values(poll(api, near)["deleted"]) == {"192.0.2.2"}
    expire_changes(api)
    got = poll(api, far)
    assert values(got["deleted"]) == {"192.0.2.1", "192.0.2.2"} and values(got["new"]) == {"192.0.2.3"}


def test_a_prolonged_ban_is_a_new_decision_and_never_a_delete_of_its_address(api: Api) -> None:
    """The old decision is not sent as deleted: a bouncer deletes by value (crowdsec-custom-bouncer runs `del`
    first, then skips an `add` of a value it added within its cache time), so the address would go unenforced."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    publish(api)
    key = bouncer(api)
    first = poll(api, key, startup=True)["new"][0]
    f2b(api, "set", "sshd", "bantime", "7200")
    f2b(api, "set", "sshd", "unbanip", "192.0.2.1")
    f2b(api, "set", "sshd", "banip", "192.0.2.1")
    publish(api)
    got = poll(api, key)
    assert got["deleted"] is None
    assert values(got["new"]) == {"192.0.2.1"} and got["new"][0]["id"] != first["id"]
    assert got["new"][0]["duration"].startswith(("1h59m", "2h0m"))


def test_an_address_another_jail_still_bans_is_never_sent_as_deleted(api: Api) -> None:
    """sshd and a longer jail (recidive's case) ban one address: one decision per address in `new` (the longest),
    and the shorter one's end is no `del` while the other holds; the last end is, and a filter that hides the
    other jail's decision lets the delete through (that bouncer does not enforce it)."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7"]})
    publish(api)
    key, narrow = bouncer(api, "all"), bouncer(api, "narrow")
    assert values(poll(api, key, startup=True)["new"]) == {"192.0.2.7"}
    poll(api, narrow, "scenarios_containing=sshd", startup=True)
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.7"]})  # bantime 3600
    publish(api)
    got = poll(api, key)
    assert [d["scenario"] for d in got["new"]] == ["fail2ban/nginx-http-auth"] and got["deleted"] is None
    startup = poll(api, bouncer(api, "late"), startup=True)["new"]
    assert [(d["value"], d["scenario"]) for d in startup] == [("192.0.2.7", "fail2ban/nginx-http-auth")]
    api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.7")
    assert poll(api, key) == {"new": None, "deleted": None}  # nginx-http-auth still bans it
    assert values(poll(api, narrow, "scenarios_containing=sshd")["deleted"]) == {"192.0.2.7"}
    api.call("operator", "DELETE", "/jails/nginx-http-auth/bans/192.0.2.7")
    assert values(poll(api, key)["deleted"]) == {"192.0.2.7"}


def test_a_head_request_answers_without_moving_the_stream_position(api: Api) -> None:
    """As the LAPI: HEAD checks the key and moves nothing (its answer has no body: what it consumed was lost)."""
    publish(api)
    key = bouncer(api)
    poll(api, key, startup=True)
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.50"]})
    publish(api)
    for url in ("/v1/decisions/stream", "/v1/decisions?ip=192.0.2.50"):
        head = api.client.head(url, headers={"X-Api-Key": key})
        assert head.status_code == 200 and head.content == b""
        assert api.client.head(url, headers={"X-Api-Key": "nope"}).status_code == 403
    assert values(poll(api, key)["new"]) == {"192.0.2.50"}


def test_stream_filters_by_scope_origin_and_scenario(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "198.51.100.0/24"]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.5"]})
    publish(api)
    key = bouncer(api)
    assert values(poll(api, key, "scopes=range", startup=True)["new"]) == {"198.51.100.0/24"}
    assert values(poll(api, key, "scopes=ip,range&origins=fail2ban", startup=True)["new"]) == set()
    assert values(poll(api, key, "scenarios_containing=nginx", startup=True)["new"]) == {"192.0.2.5"}
    assert values(poll(api, key, "scenarios_not_containing=nginx", startup=True)["new"]) == {
        "192.0.2.1", "198.51.100.0/24"}


def test_live_mode_answers_matching_decisions_or_null(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "198.51.100.0/24"]})
    publish(api)
    key = {"X-Api-Key": bouncer(api)}
    assert values(api.client.get("/v1/decisions?ip=198.51.100.7", headers=key).json()) == {"198.51.100.0/24"}
    assert values(api.client.get("/v1/decisions?ip=192.0.2.1", headers=key).json()) == {"192.0.2.1"}
    assert api.client.get("/v1/decisions?ip=203.0.113.1", headers=key).json() is None
    inside = api.client.get("/v1/decisions?range=192.0.2.0/24&contains=false", headers=key).json()
    assert values(inside) == {"192.0.2.1"}
    assert values(api.client.get("/v1/decisions?scope=Range&value=198.51.100.0/24", headers=key).json()) == {
        "198.51.100.0/24"}


def test_live_mode_reads_contains_value_and_type_as_the_lapi_does(api: Api) -> None:
    """`contains` is Go's ParseBool (0/f/FALSE..., anything else 400), `value` is that exact value (no containment:
    that is `ip`/`range`), `type` is exact, an address of the other family matches nothing."""
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["198.51.100.0/24", "2001:db8::1",
                                                                   "2001:db8:1::/48"]})
    publish(api)
    key = {"X-Api-Key": bouncer(api)}

    def live(query: str) -> Any:
        r = api.client.get(f"/v1/decisions?{query}", headers=key)
        assert r.status_code == 200, r.text
        return r.json()

    assert live("value=198.51.100.7") is None
    assert values(live("value=198.51.100.0/24")) == {"198.51.100.0/24"}
    assert values(live("scope=ip&value=2001:DB8:0::1")) == {"2001:db8::1"}  # written as decisions are
    assert values(live("ip=2001:db8:1::5")) == {"2001:db8:1::/48"}
    assert values(live("range=2001:db8::/32&contains=0")) == {"2001:db8::1", "2001:db8:1::/48"}
    assert live("range=198.51.100.0/25&contains=F") is None
    assert values(live("range=198.51.100.0/25&contains=TRUE")) == {"198.51.100.0/24"}
    assert live("ip=::ffff:198.51.100.7") is None
    assert live("type=Ban") is None and values(live("type=ban&scope=Range")) == {"198.51.100.0/24",
                                                                                 "2001:db8:1::/48"}
    refused = api.client.get("/v1/decisions?ip=198.51.100.7&contains=maybe", headers=key)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_filter"


def test_wrong_or_missing_key_is_403_and_no_other_credential_works(api: Api) -> None:
    publish(api)
    for headers in ({}, {"X-Api-Key": "nope"}, api.as_("admin")):
        for url in ("/v1/decisions/stream?startup=true", "/v1/decisions?ip=192.0.2.1"):
            refused = api.client.get(url, headers=headers)
            assert refused.status_code == 403
            # the LAPI's `message` (CrowdSec's Go client reads it unchecked) beside the one error envelope
            assert refused.json()["message"].startswith("access forbidden")
            assert refused.json()["error"]["code"] == "bouncer_key_refused"


def test_a_bouncer_key_works_nowhere_else(api: Api) -> None:
    key = bouncer(api)
    for headers in ({"X-Api-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert api.client.get("/api/v1/jails", headers=headers).status_code == 401
        assert api.client.get("/metrics", headers=headers).status_code == 401


def test_a_deleted_key_is_refused_at_once(api: Api) -> None:
    publish(api)
    key = bouncer(api)
    poll(api, key, startup=True)
    assert api.call("admin", "DELETE", "/bouncers/edge").status_code == 204
    assert api.client.get("/v1/decisions/stream", headers={"X-Api-Key": key}).status_code == 403
    assert "decisions:pos:edge" not in api.store.cache


def test_bouncer_keys_are_admin_only_hashed_listed_and_audited(api: Api) -> None:
    assert api.call("operator", "POST", "/bouncers", json={"name": "x"}).status_code == 403
    assert api.call("operator", "GET", "/bouncers").status_code == 403
    key = bouncer(api)
    assert api.call("admin", "POST", "/bouncers", json={"name": "edge"}).status_code == 409
    assert key not in str([(k, api.store.cache.get(k)) for k in api.store.cache.iterkeys()])
    publish(api)
    poll(api, key, startup=True)
    (listed,) = api.call("admin", "GET", "/bouncers").json()["bouncers"]
    assert listed["name"] == "edge" and listed["last_pull"] is not None and "api_key" not in listed
    assert listed["user_agent"] == "crowdsec-custom-bouncer/-" and listed["last_address"]
    api.call("admin", "DELETE", "/bouncers/edge")
    entries, _ = api.store.audit.page(action="bouncer.")
    assert [(e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("bouncer.delete", "edge", "ok"), ("bouncer.create", "edge", "failed"), ("bouncer.create", "edge", "ok"),
        ("bouncer.create", None, "denied")]


def test_decisions_jails_narrows_the_published_jails(api: Api, tmp_path: Any) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.5"]})
    publish(api)
    narrowed = Store(make_settings(api.settings.data_dir, api.settings.fail2ban_socket,
                                   decisions_jails="nginx-http-auth"))  # a worker of a server started so
    try:
        assert [row[2] for row in narrowed.decisions.pull("edge", startup=True)[0]] == ["192.0.2.5"]
        assert narrowed.decisions.count() == 1 and api.store.decisions.count() == 2
    finally:
        narrowed.close()


def test_fail2ban_bans_from_log_lines_have_origin_fail2ban(api: Api, fail2ban: Any) -> None:
    fail2ban.append_failures("sshd", "192.0.2.77", 5)
    key = bouncer(api)
    for _ in range(50):
        publish(api)
        got = poll(api, key, startup=True)["new"] or []
        if got:
            break
        anyio.run(anyio.sleep, 0.1)
    assert [(d["value"], d["origin"], d["scenario"]) for d in got] == [("192.0.2.77", "fail2ban", "fail2ban/sshd")]


def test_a_fail2ban_that_is_down_lifts_no_decision(api: Api, fail2ban: Any) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    publish(api)
    key = bouncer(api)
    poll(api, key, startup=True)
    fail2ban.stop()
    with pytest.raises(Exception, match="fail2ban"):
        publish(api)
    assert poll(api, key) == {"new": None, "deleted": None}  # a poll never asks fail2ban: it still answers
    assert values(poll(api, key, startup=True)["new"]) == {"192.0.2.1"}


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (60, "1m0s"), (14352, "3h59m12s"),
                                               (-5, "0s"), (36 * 3600, "36h0m0s")])
def test_durations_are_written_in_go_syntax(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_cli_bouncer_add_prints_a_working_key_once(api: Api) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "bouncer", *args, "--data-dir", api.settings.data_dir],
                              capture_output=True, text=True, cwd=ROOT, timeout=60, env={"PATH": "/usr/bin:/bin"})

    made = cli("add", "edge")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    publish(api)
    assert poll(api, key, startup=True) == {"new": None, "deleted": None}
    assert [b["name"] for b in json.loads(cli("list").stdout)] == ["edge"]
    assert cli("add", "edge").returncode == 1  # one key per name
    assert cli("delete", "edge").returncode == 0
    assert api.client.get("/v1/decisions/stream", headers={"X-Api-Key": key}).status_code == 403
    entries, _ = api.store.audit.page(action="bouncer.")
    assert [(e["action"], e["via"]) for e in entries][::2] == [("bouncer.delete", "cli"), ("bouncer.create", "cli")]


def test_metrics_show_each_bouncers_last_pull_and_the_decisions_count(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    publish(api)
    bouncer(api, "idle")
    poll(api, bouncer(api, "edge"), startup=True)
    text = api.client.get("/metrics", headers=api.as_("metrics")).text
    pulls = [line for line in text.splitlines() if line.startswith("bangui_bouncer_last_pull_timestamp_seconds{")]
    assert len(pulls) == 1 and pulls[0].startswith('bangui_bouncer_last_pull_timestamp_seconds{bouncer="edge"} ')
    assert float(pulls[0].rsplit(" ", 1)[1]) > 1.7e9
    assert "\nbangui_decisions 2.0\n" in text


def quick_sync(api: Api) -> None:
    """A run of the `decisions` job: counters first, the ban lists only when they moved."""
    async def run() -> None:
        client = Fail2Ban(api.settings.fail2ban_socket)
        try:
            await sync(Deps(api.settings, api.store, client))
        finally:
            await client.aclose()
    anyio.run(run)


def test_an_unchanged_fail2ban_is_recognised_by_its_counters_without_reading_ban_lists(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    publish(api)
    view = api.store.bans
    full_at, as_of = view.full_at(), view.as_of()
    quick_sync(api)
    assert view.full_at() == full_at and view.as_of() > as_of  # newer, and no ban list was read
    f2b(api, "set", "sshd", "banip", "192.0.2.2")  # behind bangui's back: the counters move
    quick_sync(api)
    assert view.full_at() > full_at
    assert {row[2] for row in api.store.decisions.rows()} == {"192.0.2.1", "192.0.2.2"}


def test_another_process_on_the_data_dir_continues_each_bouncers_stream(api: Api) -> None:
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    publish(api)
    key = bouncer(api)
    poll(api, key, startup=True)
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.2"]})
    publish(api)
    other = Store(api.settings)  # what another worker, or the server after a restart, opens
    try:
        assert other.bouncers.lookup(key) is not None
        new, deleted = other.decisions.pull("edge", startup=False)
        assert [row[2] for row in new] == ["192.0.2.2"] and deleted == []
    finally:
        other.close()
    assert poll(api, key) == {"new": None, "deleted": None}  # nothing repeated
