"""The Hosts view (issue 14's fleet mode) in a real browser, against real parts: a redis-server, three private
fail2ban servers and three `bangui serve` in fleet mode (web1..web3, started like the fleet suite's), a headless
Chromium on web1. What a user sees and does: every host up with its fail2ban version and jails; a ban sent to two
hosts through the form (fail2ban's own socket says who banned), the unban the same way; a host whose bangui stops
turning stale then down, and applying the ban it missed when it is back; a host whose fail2ban dies; a Redis outage;
a viewer (no form; the sort kept across refreshes); a phone without sideways scrolling; and on a single-host server,
"fleet mode is off" without a failing call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from tests.browser.conftest import PHONE, Browser, login, report
from tests.fleet.conftest import PASSWORD as FLEET_PASSWORD
from tests.fleet.conftest import Fleet, dump, start_fleet

pytestmark = pytest.mark.browser

ADDRESS = "203.0.113.50"  # sent to web1 and web2 through the form
LATER = "203.0.113.51"  # sent to web1 and web3 while web3's bangui is stopped
PRESET = "192.0.2.10"  # banned on web2 by fail2ban itself before the page opens (its count must show)
HOSTS_ROWS = "section[aria-label='Hosts'] tbody tr"
STATE_ROWS = "section[aria-label='Ban or unban on several hosts'] tbody tr"


@pytest.fixture
def web_fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path, n=3)
    try:
        yield fleet
    finally:
        dump(fleet)
        fleet.stop()


def banned(fleet: Fleet, i: int, jail: str) -> set[str]:
    code, result = sync_call(fleet.hosts[i].fail2ban.socket, "get", jail, "banned")
    assert code == 0, result
    return set(result)


def rows(b: Browser, css: str) -> dict[str, list[str]]:
    """A table's rows by their first cell: {"web1": [cell texts...]}."""
    found = b.js("return [...document.querySelectorAll(arguments[0])].map(tr => [...tr.cells].map(td => td.innerText.trim()))", css)
    return {r[0]: r for r in found}


def counts(cell: str) -> dict[str, int]:
    """The Jails cell, one "name count" a line -> {"sshd": 0, ...}."""
    pairs = [line.rsplit(" ", 1) for line in cell.splitlines() if line.strip()]
    return {name: int(n.replace(",", "")) for name, n in pairs}


def column(b: Browser, css: str, label: str) -> int:
    heads = b.js("const t = document.querySelector(arguments[0]); "
                 "return t ? [...t.closest('table').tHead.rows[0].cells].map(th => th.innerText.replace(/[▲▼]/g, '').trim()) : []", css)
    assert label in heads, (label, heads)
    return int(heads.index(label))


def choose_hosts(b: Browser, names: set[str]) -> None:
    for box in b.all("section[aria-label='Ban or unban on several hosts'] fieldset input[type=checkbox]"):
        if box.is_selected() != (box.get_attribute("value") in names):
            box.click()


def choose(b: Browser, label: str, option: str) -> None:
    from selenium.webdriver.support.ui import Select

    field = b.js("for (const l of document.querySelectorAll('label')) if (l.textContent.trim() === arguments[0] && l.control) "
                 "return l.control; return null", label)
    assert field is not None, f"no field labelled {label!r}"
    Select(field).select_by_visible_text(option)


def send_to_web1_and_web2(b: Browser, form: str, verb: str) -> float:
    """The user's steps: ADDRESS in sshd, hosts web1 and web2 ticked, `verb` ("Ban" or "Unban") clicked; seconds
    until the page shows both hosts applied it."""
    b.fill("Addresses or networks, one per line", ADDRESS)
    choose(b, "Jail", "sshd")
    choose_hosts(b, {"web1", "web2"})
    t0 = time.monotonic()
    b.button(verb, form).click()
    b.wait_text("#notice, .feedback.ok", f"{verb} sent to 2 hosts")
    b.until(lambda: (r := rows(b, STATE_ROWS)) and sorted(r) == ["web1", "web2"] and
            all("applied" in x for x in r.values()), f"web1 and web2 applied the {verb.lower()}", timeout=30)
    return time.monotonic() - t0


def no_sideways_scroll(b: Browser) -> tuple[int, int]:
    return b.js("return [document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.timeout(300)  # a stopped host is "down" only after 30 s unseen; the machine is shared
def test_hosts_view_bans_on_two_hosts_and_sees_a_host_go_down(web_fleet: Fleet, browser: Any) -> None:
    fleet = web_fleet
    code, version = sync_call(fleet.hosts[0].fail2ban.socket, "version")
    assert code == 0, version
    code, result = sync_call(fleet.hosts[1].fail2ban.socket, "set", "nginx-http-auth", "banip", PRESET)
    assert code == 0, result

    b: Browser = browser(fleet.hosts[0].url)
    login(b, "admin", FLEET_PASSWORD)
    b.wait_text("nav a", "Hosts").click()
    b.wait_text("h1", "Hosts")
    b.wait(HOSTS_ROWS, timeout=30)  # "No host has reported yet" until the first heartbeat
    status, f2b, banned_now, jails = (column(b, HOSTS_ROWS, c) for c in ("Status", "fail2ban", "Banned now", "Jails"))

    # every host up with its fail2ban version and jails (hosts publish every 2 s, their fail2ban snapshot every 5 s;
    # the page refreshes every 5 s)
    def all_reported() -> dict[str, list[str]] | None:
        r = rows(b, HOSTS_ROWS)
        ok = (sorted(r) == ["web1", "web2", "web3"] and all(x[status] == "up" and version in x[f2b] for x in r.values())
              and counts(r["web2"][jails]).get("nginx-http-auth") == 1)
        return r if ok else None

    seen = b.until(all_reported, "three hosts up with their fail2ban version and web2's ban", timeout=40)
    report("hosts view rows", seen)
    for name, row in seen.items():
        assert counts(row[jails]) == {"sshd": 0, "nginx-http-auth": int(name == "web2"), "sshd-dummy": 0}, (name, row)
        assert row[banned_now] == ("1" if name == "web2" else "0"), (name, row)
    b.shot("hosts")

    # what the form refuses: no host chosen (said on the page), a word that is no address (said by the server)
    form = "section[aria-label='Ban or unban on several hosts']"
    b.fill("Addresses or networks, one per line", ADDRESS)
    choose_hosts(b, set())
    b.button("Ban", form).click()
    b.wait_text(".feedback.bad", "Choose at least one host")  # beside the form (issue 23 item 1)
    b.fill("Addresses or networks, one per line", "not-an-address")
    choose_hosts(b, {"web1"})
    b.button("Ban", form).click()
    b.wait_text(".feedback.bad", "not an IP address or network: not-an-address")
    b.shot("refused")
    assert not b.all(STATE_ROWS)

    # a ban of one address in sshd, sent to web1 and web2 only
    figures = {"ban sent to 2 hosts: click to 'applied' on the page": send_to_web1_and_web2(b, form, "Ban")}
    b.shot("ban-applied")
    assert ADDRESS in banned(fleet, 0, "sshd") and ADDRESS in banned(fleet, 1, "sshd")
    # the hosts' counters follow (next snapshot), and by then web3 has had every chance to get it: it did not
    b.until(lambda: (r := rows(b, HOSTS_ROWS)) and counts(r["web1"][jails])["sshd"] == counts(r["web2"][jails])["sshd"] == 1,
            "web1's and web2's sshd counts", timeout=30)
    assert counts(rows(b, HOSTS_ROWS)["web3"][jails])["sshd"] == 0
    assert ADDRESS not in banned(fleet, 2, "sshd")
    b.shot("hosts-after-ban")

    # the unban, the same way
    figures["unban sent to 2 hosts: click to 'applied' on the page"] = send_to_web1_and_web2(b, form, "Unban")
    assert not {ADDRESS} & (banned(fleet, 0, "sshd") | banned(fleet, 1, "sshd") | banned(fleet, 2, "sshd"))
    b.until(lambda: (r := rows(b, HOSTS_ROWS)) and all(counts(x[jails])["sshd"] == 0 for x in r.values()),
            "sshd counts back to 0", timeout=30)
    b.shot("unban-applied")

    # a phone: nothing wider than the screen
    b.size(PHONE)
    b.wait(HOSTS_ROWS)
    width = no_sideways_scroll(b)
    b.shot("hosts-390px")
    assert width[0] <= PHONE[0] + 1, width
    b.dark()
    b.shot("hosts-390px-dark")
    b.dark(False)
    b.size((1366, 900))

    # web3's bangui stops: its row turns stale (3 missed heartbeats), then down (30 s)
    t0 = time.monotonic()
    fleet.hosts[2].server.stop()
    b.until(lambda: rows(b, HOSTS_ROWS)["web3"][status] == "stale", "web3 stale", timeout=30)
    figures["web3's bangui stopped: 'stale' on the page after"] = time.monotonic() - t0
    assert [rows(b, HOSTS_ROWS)[n][status] for n in ("web1", "web2")] == ["up", "up"]
    b.shot("web3-stale")
    b.until(lambda: rows(b, HOSTS_ROWS)["web3"][status] == "down", "web3 down", timeout=60)
    figures["web3's bangui stopped: 'down' on the page after"] = time.monotonic() - t0
    b.shot("web3-down")

    # a ban for web1 and web3 while web3 is down: web1 applies it, web3 stays pending until its bangui is back
    assert "(down)" in b.wait_text(f"{form} fieldset label", "web3").text
    b.fill("Addresses or networks, one per line", LATER)
    choose(b, "Jail", "sshd")
    choose_hosts(b, {"web1", "web3"})
    b.button("Ban", form).click()
    b.until(lambda: (r := rows(b, STATE_ROWS)) and sorted(r) == ["web1", "web3"] and "applied" in r["web1"]
            and "pending" in r["web3"], "web1 applied, web3 pending", timeout=30)
    b.wait_text(form, "1 host pending")
    b.shot("web3-pending")
    assert LATER not in banned(fleet, 2, "sshd")
    t0 = time.monotonic()
    fleet.hosts[2].server.start()
    b.until(lambda: "applied" in rows(b, STATE_ROWS)["web3"], "web3 applied the ban it missed", timeout=60)
    figures["web3's bangui started again: its missed ban 'applied' on the page after"] = time.monotonic() - t0
    assert LATER in banned(fleet, 2, "sshd") and LATER not in banned(fleet, 1, "sshd")
    b.until(lambda: rows(b, HOSTS_ROWS)["web3"][status] == "up", "web3 up again", timeout=30)
    b.shot("web3-back")

    # web2's fail2ban dies (its bangui stays): web2 is up, its fail2ban unreachable
    fleet.hosts[1].fail2ban.kill()
    b.until(lambda: rows(b, HOSTS_ROWS)["web2"][f2b] == "unreachable", "web2's fail2ban unreachable", timeout=30)
    assert rows(b, HOSTS_ROWS)["web2"][status] == "up"
    assert rows(b, HOSTS_ROWS)["web2"][banned_now] == "—"  # unknown, not 0
    assert b.wait_text(HOSTS_ROWS + " td .bad", "unreachable")  # in red
    b.shot("web2-fail2ban-down")
    report("hosts view (s)", {k: round(v, 2) for k, v in figures.items()})


@pytest.mark.timeout(240)
def test_hosts_view_through_a_redis_outage(tmp_path: Path, browser: Any) -> None:
    """Redis stops (AOF on, so sessions survive) and comes back: the view says its list is not fresh and why, then
    recovers by itself: no reload, no message left behind."""
    fleet = start_fleet(tmp_path, persist=True, n=2)
    try:
        b: Browser = browser(fleet.hosts[0].url)
        login(b, "admin", FLEET_PASSWORD)
        b.wait_text("nav a", "Hosts").click()
        b.until(lambda: (r := rows(b, HOSTS_ROWS)) and sorted(r) == ["web1", "web2"], "two hosts", timeout=30)
        b.expect_5xx = True  # 503 fleet_unavailable while Redis is away
        fleet.redis.stop()
        message = b.until(b.banner, "an error banner while Redis is away", timeout=20)
        report("banner while Redis is away", message.strip(" \n×"))
        b.wait_text("section[aria-label='Hosts'] p.warn", "Not refreshed since", timeout=20)
        # issue 21: on every view, since when the fleet is degraded and how old this host's replica of the
        # fleet's identity is (revocations after its last refresh are not in it)
        degraded = b.wait_text("#fleet-state", "Fleet degraded since", timeout=40).text
        assert "last refreshed" in degraded and " ago" in degraded, degraded
        report("fleet degraded line", degraded)
        assert b.js("return !document.getElementById('fleet-state').closest('main')")  # above every view
        b.shot("redis-down")
        fleet.redis.start()
        b.until(lambda: not b.banner(), "the banner gone after Redis is back", timeout=30)
        b.until(lambda: not b.js("const e = document.getElementById('fleet-state'); return e && !e.hidden"),
                "the degraded line gone after Redis is back", timeout=40)
        b.until(lambda: not b.all("section[aria-label='Hosts'] p.warn:not([hidden])"), "the warning gone", timeout=30)
        assert [x[column(b, HOSTS_ROWS, "Status")] for x in rows(b, HOSTS_ROWS).values()] == ["up", "up"]
        b.shot("redis-back")
    finally:
        dump(fleet)
        fleet.stop()


def test_viewer_sees_hosts_without_the_form(web_fleet: Fleet, browser: Any) -> None:
    fleet = web_fleet
    made = httpx.post(fleet.hosts[0].url + "/api/v1/users", headers=fleet.headers(), timeout=10,
                      json={"username": "watcher", "password": "watcher password", "role": "viewer"})
    assert made.status_code == 201, made.text
    b: Browser = browser(fleet.hosts[1].url)  # one login for the whole fleet: the user was made on web1
    login(b, "watcher", "watcher password")
    b.wait_text("nav a", "Hosts").click()
    b.until(lambda: sorted(rows(b, HOSTS_ROWS)) == ["web1", "web2", "web3"], "three hosts", timeout=30)
    assert not b.all("section[aria-label='Ban or unban on several hosts']")
    assert not b.all("main textarea")
    # the user's order outlives the refreshes (every 5 s the table is drawn again)
    for _ in range(2):
        b.wait_text("section[aria-label='Hosts'] th button", "Host").click()
    order = b.js("return [...document.querySelectorAll(arguments[0])].map(tr => tr.cells[0].innerText)", HOSTS_ROWS)
    assert order == ["web3", "web2", "web1"], order
    b.js("document.querySelector(\"section[aria-label='Hosts'] table\").dataset.old = '1'")
    b.until(lambda: b.js("const t = document.querySelector(\"section[aria-label='Hosts'] table\"); return t && !t.dataset.old"),
            "a refresh", timeout=20)
    order = b.js("return [...document.querySelectorAll(arguments[0])].map(tr => tr.cells[0].innerText)", HOSTS_ROWS)
    assert order == ["web3", "web2", "web1"], order
    assert b.wait("section[aria-label='Hosts'] th[aria-sort]").get_attribute("aria-sort") == "descending"
    b.shot("viewer-hosts")


def test_single_host_server_says_fleet_mode_is_off(seeded_server: Any, browser: Any) -> None:
    server, _ = seeded_server
    b: Browser = browser(server.url)
    login(b)
    b.go("#/hosts")
    b.wait_text("main", "Fleet mode is off")
    assert not [a for a in b.all("nav a") if a.text == "Hosts" and a.is_displayed()]  # no link to a view of nothing
    assert not b.all("main table, main form")
    b.shot("fleet-off")
    b.check_console()
    fleet_calls = [m for m in b.network_errors if "/fleet/" in m]
    assert not fleet_calls, fleet_calls  # a failed load is a console error too
    b.size(PHONE)
    b.go("#/")
    b.go("#/hosts")
    b.wait_text("main", "Fleet mode is off")
    width = no_sideways_scroll(b)
    b.shot("fleet-off-390px")
    assert width[0] <= PHONE[0] + 1, width
