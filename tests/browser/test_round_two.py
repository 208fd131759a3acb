"""The page, round two (issue 23): live updates over the event stream, messages beside the control, scroll and
focus kept, the paged Bans view at 1366 and 390 px, the Jails list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from store import Store
from tests.browser.conftest import PHONE, Browser, api_call, login, report
from tests.fixtures.app import seed_users
from tests.fixtures.processes import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture
def two_workers(tmp_path: Path, fail2ban: Any) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """`bangui serve --workers 2`: the page's stream and the API calls that change things may meet different workers."""
    data = tmp_path / "data"
    store = Store(Settings.for_tests(data_dir=str(data), fail2ban_socket=str(fail2ban.socket)))
    tokens = seed_users(store)
    store.close()
    server = ServerProcess(data, fail2ban, 2, tmp_path)
    server.start()
    yield server, tokens
    server.stop()


def test_bans_and_unbans_from_elsewhere_reach_the_open_page_and_focus_stays(two_workers: Any, browser: Any) -> None:
    server, tokens = two_workers
    b: Browser = browser(server.url)
    login(b)
    b.until(lambda: b.js("return document.querySelector('.stamp-live, p.muted.small') && "
                         "document.body.textContent.includes('; live.')"), "the dashboard says it is live", 15)
    # keyboard focus on the map's country stays through live redraws
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ["8.8.8.8"]})
    b.wait(".map path.c5, .map path.c1, .map path.c2, .map path.c3, .map path.c4")
    b.js("document.querySelector('.map path[data-cc=\"US\"]').focus()")
    before = b.wait("section[aria-label='fail2ban']").text
    api_call(server, tokens["admin"], "POST", "/jails/nginx-http-auth/bans", json={"ips": ["5.9.1.1"]})
    b.until(lambda: b.wait("section[aria-label='fail2ban']").text != before, "the counters follow the ban", 10)
    b.until(lambda: b.js("return document.querySelector('.map path[data-cc=\"DE\"]').getAttribute('class') !== 'c0'"),
            "the map follows the ban", 10)
    assert b.js("return document.activeElement.dataset.cc") == "US"
    # the Bans view, which never refreshed before: a ban made by another client appears within a second or so
    b.go("#/bans")
    b.wait_text("main h1", "Current bans (2)")
    delays = []
    for ip in ("1.1.1.1", "77.88.8.8", "200.160.2.3"):
        t0 = time.monotonic()
        api_call(server, tokens["operator"], "POST", "/jails/sshd/bans", json={"ips": [ip]})
        b.wait_text("main table", ip, timeout=10)
        delays.append(round(time.monotonic() - t0, 3))
    report("ban made through the API -> row on the open Bans page (s)", delays)
    assert min(delays) < 2.0, delays  # 1 s is the target; the shared machine adds its noise
    t0 = time.monotonic()
    api_call(server, tokens["operator"], "DELETE", "/jails/sshd/bans/1.1.1.1")
    b.until(lambda: "1.1.1.1" not in b.wait("main").text, "the unban reaches the page", 10)
    report("unban through the API -> row gone (s)", round(time.monotonic() - t0, 3))
    b.shot("bans-live")


def test_ban_errors_show_beside_the_form_and_name_the_entries(seeded_server: Any, browser: Any) -> None:
    server, _tokens = seeded_server
    b: Browser = browser(server.url)
    b.size((1366, 700))
    login(b)
    b.go("#/jails/sshd")
    form_box = b.wait("section[aria-label='Ban']")
    b.js("arguments[0].scrollIntoView()", form_box)
    y = b.js("return scrollY")
    assert y > 0
    b.fill("Addresses or networks to ban, one per line", "not-an-ip")
    b.button("Ban in sshd").click()
    msg = b.wait("section[aria-label='Ban'] .feedback.bad")
    assert "not-an-ip" in msg.text, msg.text
    assert b.banner() == ""
    assert abs(b.js("return scrollY") - y) < 40
    b.fill("Addresses or networks to ban, one per line", "10.0.0.0/4")
    b.button("Ban in sshd").click()
    b.wait_text("section[aria-label='Ban'] .feedback.bad", "10.0.0.0/4")
    # read out too: the assertive live region carries the same text
    b.until(lambda: "10.0.0.0/4" in b.js("return document.getElementById('live-alert').textContent"), "announced")
    b.fill("Addresses or networks to ban, one per line", "192.0.2.55")
    b.button("Ban in sshd").click()
    b.wait_text("section[aria-label='Ban'] .feedback.ok", "Banned 1: 192.0.2.55")
    assert abs(b.js("return scrollY") - y) < 40
    assert b.js("return document.activeElement.textContent") == "Ban in sshd"
    b.shot("ban-feedback")


def test_unbanning_row_41_keeps_the_place_and_the_focus(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    ips = [f"192.0.2.{i}" for i in range(1, 66)]
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ips})
    b: Browser = browser(server.url)
    login(b, "operator")
    b.go("#/bans")
    b.wait_text("main h1", "Current bans (65)")
    height = b.js("return document.documentElement.scrollHeight")
    report("Bans page height with 65 bans at 1366 px", height)
    assert height < 3000, height  # one line per ban (was 4,500 px)
    buttons = b.all("main table tbody tr button")
    unban = [x for x in buttons if x.text == "Unban"][40]
    ip = b.js("return arguments[0].closest('tr').querySelector('a').textContent", unban)
    b.js("arguments[0].scrollIntoView({block: 'center'})", unban)
    y = b.js("return scrollY")
    assert y > 500
    unban.click()
    b.wait_text(".feedback.ok", "Unbanned " + ip)
    b.until(lambda: ip not in b.wait("main table").text, "the row is gone")
    time.sleep(1.5)  # let the live update that follows redraw the table: the place and focus must survive it
    assert abs(b.js("return scrollY") - y) < 60, (y, b.js("return scrollY"))
    focused = b.js("const a = document.activeElement; return [a.tagName, a.textContent, !!a.closest('table')]")
    assert focused == ["BUTTON", "Unban", True], focused
    b.shot("after-unban-41")


def test_bans_are_paged_and_usable_at_390_px(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": [f"198.51.100.{i}" for i in range(1, 120)]})
    b: Browser = browser(server.url)
    b.size(PHONE)
    login(b, "operator")
    b.go("#/bans")
    b.wait_text("main h1", "Current bans (119)")
    rows = b.all("main table tbody tr")
    assert len(rows) == 100, len(rows)  # one page, never every ban
    b.button("Next page").click()
    b.until(lambda: len(b.all("main table tbody tr")) == 19, "the second page")
    assert b.js("return document.documentElement.scrollWidth <= innerWidth")
    # every Unban button is on screen horizontally (no hidden horizontal scroll)
    assert b.js("return [...document.querySelectorAll('main table button')].filter(x => x.offsetParent)"
                ".every(x => x.getBoundingClientRect().right <= innerWidth)")
    b.fill("Address starts with, or network", "198.51.100.11")
    b.until(lambda: len(b.all("main table tbody tr")) == 11, "filtered to 198.51.100.11x")
    b.shot("bans-390")


def test_the_jails_view_lists_every_jail(seeded_server: Any, browser: Any) -> None:
    server, _tokens = seeded_server
    b: Browser = browser(server.url)
    login(b, "viewer")
    b.wait_text("nav a", "Jails").click()
    table = b.wait_text("main table", "sshd")
    assert "nginx-http-auth" in table.text and "running" in table.text
    b.wait_text("main a", "Settings").click()
    b.wait_text("main h1", "Jail")
    b.shot("jails")
