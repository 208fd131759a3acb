"""Pages of current bans from the view of current bans (issue 25 item 3): cursors, filters by address prefix or
network, totals and the view's age; bangui's bans visible at once, fail2ban's own within one sync interval."""

from __future__ import annotations

import ipaddress
from typing import Any

from f2b.blocking import sync_call
from tests.fixtures.app import Api
from tests.fixtures.waiting import wait_for

V4 = [f"10.64.{i // 10}.{i % 10 + 1}" for i in range(20)] + ["10.65.0.1", "192.0.2.1"]
V6 = ["2001:db8::1", "2001:db8:1::1"]


def ban_all(api: Api, jail: str = "sshd") -> None:
    r = api.call("operator", "POST", f"/jails/{jail}/bans", json={"ips": V4 + V6})
    assert r.status_code == 200, r.text


def pages(api: Api, url: str, key: str = "bans") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of `url` (its bans, and each answer)."""
    bans: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = api.call("viewer", "GET", url + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        answers.append(r.json())
        bans += answers[-1][key]
        cursor = answers[-1]["next_cursor"]
        if cursor is None:
            return bans, answers


def by_address(ips: list[str]) -> list[str]:
    return sorted(ips, key=lambda ip: (ipaddress.ip_address(ip).version, ipaddress.ip_address(ip)))


def test_bans_page_with_cursors_in_address_order_with_total_and_age(api: Api) -> None:
    ban_all(api)
    bans, answers = pages(api, "/bans?jail=sshd&limit=10")
    assert [b["ip"] for b in bans] == by_address(V4 + V6)  # each once, in address order
    assert [len(a["bans"]) for a in answers] == [10, 10, 4]
    assert {a["total"] for a in answers} == {24}
    assert all(a["as_of"] > 1.7e9 and 0 <= a["age_s"] <= api.settings.decisions_seconds + 5 for a in answers)
    assert set(bans[0]) == {"ip", "jail", "banned_at", "expires_at", "country"}


def test_without_a_limit_the_answer_is_complete(api: Api) -> None:
    ban_all(api)
    ban_all(api, "nginx-http-auth")
    body = api.call("viewer", "GET", "/bans").json()
    assert len(body["bans"]) == body["total"] == 48 and body["next_cursor"] is None
    assert len(pages(api, "/bans?limit=7")[0]) == 48  # across jails, pages too


def test_bans_filter_by_prefix_and_by_network(api: Api) -> None:
    ban_all(api)
    prefixed, answers = pages(api, "/bans?jail=sshd&limit=5&prefix=10.64.1")
    assert [b["ip"] for b in prefixed] == sorted(ip for ip in V4 if ip.startswith("10.64.1"))  # text order
    assert answers[0]["total"] == 10
    inside, answers = pages(api, "/bans?jail=sshd&limit=3&network=10.64.0.0/16")
    assert [b["ip"] for b in inside] == by_address([ip for ip in V4 if ip.startswith("10.64.")])
    assert answers[0]["total"] == 20
    six = api.call("viewer", "GET", "/bans?network=2001:db8::/64").json()
    assert [b["ip"] for b in six["bans"]] == ["2001:db8::1"] and six["total"] == 1
    assert api.call("viewer", "GET", "/bans?prefix=2001:DB8:1").json()["total"] == 1


def test_bad_paging_queries_are_clear_400s(api: Api) -> None:
    ban_all(api)
    cases = {"limit=0": "invalid_limit", "limit=1001": "invalid_limit", "limit=ten": "invalid_limit",
             "limit=5&cursor=nonsense": "invalid_cursor", "network=10.64.0.1": "invalid_network",
             "network=10.64.0.0/99": "invalid_network", "prefix=10.64;drop": "invalid_prefix"}
    for query, code in cases.items():
        r = api.call("viewer", "GET", f"/bans?{query}")
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (query, r.text)
    cursor = api.call("viewer", "GET", "/bans?limit=5").json()["next_cursor"]
    r = api.call("viewer", "GET", f"/bans?limit=5&prefix=10.&cursor={cursor}")  # a cursor of another order
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
    r = api.call("viewer", "GET", "/bans?jail=nojail")
    assert r.status_code == 404 and r.json()["error"]["code"] == "jail_not_found"


def test_a_jail_pages_its_bans_100_at_a_time_by_default(api: Api) -> None:
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(150)]
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips}).status_code == 200
    body = api.call("viewer", "GET", "/jails/sshd").json()
    assert len(body["banned"]) == 100 and body["bans_total"] == 150 and body["currently_banned"] == 150
    assert body["next_cursor"] and body["as_of"] > 1.7e9
    rest = api.call("viewer", "GET", f"/jails/sshd?limit=100&cursor={body['next_cursor']}").json()
    assert len(rest["banned"]) == 50 and rest["next_cursor"] is None
    assert {b["ip"] for b in body["banned"] + rest["banned"]} == set(ips)


def test_bangui_bans_and_unbans_are_visible_at_once(api: Api) -> None:
    ban_all(api)
    api.call("viewer", "GET", "/bans")  # the view is fresh now: the next reads do not sync
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["198.51.100.7"]})
    assert [b["jail"] for b in api.call("viewer", "GET", "/ips/198.51.100.7").json()["current_bans"]] == ["sshd"]
    assert api.call("viewer", "GET", "/bans?prefix=198.51.100.7").json()["total"] == 1
    api.call("operator", "DELETE", "/bans/198.51.100.7")
    assert api.call("viewer", "GET", "/ips/198.51.100.7").json()["current_bans"] == []
    assert api.call("viewer", "GET", "/bans?prefix=198.51.100.7").json()["total"] == 0


def test_fail2ban_s_own_bans_appear_within_one_sync_interval(api: Api, fail2ban: Any) -> None:
    api.call("viewer", "GET", "/bans")
    fail2ban.append_failures("sshd", "203.0.113.9", 5)
    wait_for(lambda: api.call("viewer", "GET", "/bans?jail=sshd").json()["total"] == 1, timeout=15,
             what="fail2ban's ban in the view")
    assert api.call("viewer", "GET", "/ips/203.0.113.9").json()["banned_now"] is True


def test_sorted_pages_order_every_ban_not_one_page(api: Api, fail2ban: Any) -> None:
    """?sort=expires_at&order= over every page, across jails and in a jail (GET /bans and GET /jails/{jail}): the ban
    that ends soonest comes first though its address is last; a permanent ban (fail2ban's bantime -1) comes last
    ascending, first descending; a cursor keeps its sort and order."""
    ban_all(api, "nginx-http-auth")  # 3600 s, addresses first
    sync_call(str(fail2ban.socket), "set", "sshd-dummy", "bantime", "-1")
    assert api.call("operator", "POST", "/jails/sshd-dummy/bans", json={"ips": ["10.0.0.1"]}).status_code == 200
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["203.0.113.5"]}).status_code == 200
    wait_for(lambda: [b["expires_at"] for b in api.call("viewer", "GET", "/bans?prefix=10.0.0.1").json()["bans"]]
             == [None], timeout=15, what="the permanent ban confirmed by a sync")
    everything = api.call("viewer", "GET", "/bans").json()["bans"]
    assert [b["ip"] for b in everything].index("203.0.113.5") >= 20  # on the last page of 5 in address order
    for order in ("asc", "desc"):
        bans, answers = pages(api, f"/bans?limit=5&sort=expires_at&order={order}")
        assert len(bans) == len(everything) == answers[0]["total"] == 26 and len(answers) == 6
        assert len({(b["ip"], b["jail"]) for b in bans}) == 26
        ends = [b["expires_at"] or "~" for b in bans]  # ISO times sort as text; none after every time
        assert ends == sorted(ends, reverse=order == "desc")
        soonest, permanent = (0, -1) if order == "asc" else (-1, 0)
        assert (bans[soonest]["ip"], bans[soonest]["jail"]) == ("203.0.113.5", "sshd")
        assert (bans[permanent]["ip"], bans[permanent]["expires_at"]) == ("10.0.0.1", None)
    jail, _ = pages(api, "/jails/nginx-http-auth?limit=10&sort=address&order=desc", key="banned")
    assert [b["ip"] for b in jail] == by_address(V4 + V6)[::-1]
    banned_at, _ = pages(api, "/jails/nginx-http-auth?limit=10&sort=banned_at", key="banned")
    assert {b["ip"] for b in banned_at} == set(V4 + V6) and len(banned_at) == 24
    cursor = api.call("viewer", "GET", "/bans?limit=5&sort=expires_at").json()["next_cursor"]
    for other in ("sort=expires_at&order=desc", "sort=banned_at", ""):
        r = api.call("viewer", "GET", f"/bans?limit=5&{other}&cursor={cursor}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor", other
        assert "sort=expires_at&order=asc" in r.json()["error"]["message"]


def test_an_unknown_sort_or_order_is_a_400_naming_the_allowed_values(api: Api) -> None:
    for url in ("/bans?sort=jail", "/bans?limit=5&order=up", "/jails/sshd?sort=country", "/jails/sshd?order=DESC"):
        r = api.call("viewer", "GET", url)
        error = r.json()["error"]
        field = "sort" if "sort=" in url else "order"
        assert r.status_code == 400 and error["code"] == f"invalid_{field}", url
        allowed = ["address", "banned_at", "expires_at"] if field == "sort" else ["asc", "desc"]
        assert error["details"] == {"field": field, "allowed": allowed}
    spec = api.call("viewer", "GET", "/openapi.json").json()
    for path in ("/api/v1/bans", "/api/v1/jails/{jail}"):
        params = {p["name"]: p["schema"] for p in spec["paths"][path]["get"]["parameters"]}
        assert params["sort"]["enum"] == ["address", "banned_at", "expires_at"]
        assert params["order"]["enum"] == ["asc", "desc"]
