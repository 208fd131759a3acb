"""The web page in a real browser: first-run setup, login, dashboard (status, trend, map), ban and unban,
the IP view, history of 1,000+ events, roles, narrow screens, dark mode, logout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Browser, api_call, login, report
from tests.fixtures.app import PASSWORD

pytestmark = pytest.mark.browser

# public addresses whose registry country is known (see geo.py), one or more per country
SEEDED = ["8.8.8.8", "8.8.4.4", "1.1.1.1", "5.9.1.1", "77.88.8.8", "200.160.2.3", "133.1.1.1", "81.2.69.142",
          "165.21.1.1"]  # the last: Singapore, too small for a 1:110m shape
MAP_SHAPES = len(re.findall(r'^\["[A-Z]{2}"', (Path(__file__).resolve().parents[2] / "handlers/web/worldmap.js")
                            .read_text(), re.M))


def test_first_run_setup_login_and_logout(fresh_server: Any, browser: Any) -> None:
    b: Browser = browser(fresh_server.url)
    b.open()
    b.wait_text("h1", "Welcome to bangui")
    b.shot("setup")
    token = (fresh_server.data_dir / "setup-token").read_text().strip()
    b.fill("Setup token", token)
    b.fill("Password", PASSWORD)
    b.fill("Password again", PASSWORD)
    b.button("Create admin").click()
    b.wait_text("h1", "Dashboard")
    b.wait_text("#notice, .feedback.ok", "Admin admin created")
    b.wait(".map path")
    b.shot("dashboard-after-setup")
    b.wait_text("#who button", "Log out").click()
    b.wait_text("h1", "Log in to bangui")
    b.wait_text("#notice, .feedback.ok", "Logged out")
    b.shot("logged-out")
    login(b, "admin", PASSWORD)
    b.wait_text("h1", "Dashboard")
    b.wait_text("#who button", "Log out").click()
    b.wait_text("h1", "Log in to bangui")
    # the session is gone on the server too: a reload shows the login form again
    b.open()
    b.wait_text("h1", "Log in to bangui")


def test_dashboard_trend_map_and_country_history(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": SEEDED[:5]})
    api_call(server, tokens["admin"], "POST", "/jails/nginx-http-auth/bans", json={"ips": SEEDED[4:]})
    stats = api_call(server, tokens["admin"], "GET", "/stats?range=24h")
    countries = {c["country"]: c["bans"] for c in stats["by_country"]}
    assert len(countries) >= 5, countries

    b: Browser = browser(server.url)
    login(b)
    b.wait_text("h1", "Dashboard")
    b.wait(".map path")
    # one shape per country of the map data, and exactly the seeded countries coloured
    shapes = b.js("return [...document.querySelectorAll('.map path')].map(p => [p.dataset.cc, p.getAttribute('class')])")
    assert len(shapes) == MAP_SHAPES >= 170
    assert len({cc for cc, _ in shapes}) == len(shapes)
    coloured = {cc for cc, cls in shapes if cls != "c0"}
    assert coloured == set(countries) & {cc for cc, _ in shapes}, (coloured, countries)
    if "SG" in countries:  # no shape for it: named under the map
        assert "Singapore" in b.wait(".mapfig").text
    # the trend chart has bars, and they add up to the bans
    bars = b.js("return [...document.querySelectorAll('.chart rect')].map(r => Number(r.dataset.bans))")
    assert sum(bars) == stats["total"] == len(SEEDED) + 1
    assert any(h > 0 for h in b.js("return [...document.querySelectorAll('.chart rect')].map(r => r.getBBox().height)"))
    # top countries by name, not code
    top = b.wait("section[aria-label='Top countries']").text
    assert "United States" in top and "Germany" in top, top
    # the status shows fail2ban up and its counters
    assert "up" in b.wait("section[aria-label='fail2ban']").text
    # a reload while logged in: the dashboard from navigation start (page, modules, session, API calls, drawing)
    b.open()
    b.wait(".map path")
    timings = {"dashboard view, API calls to drawn": b.measure("dashboard"), "map, all countries": b.measure("map"),
               "dashboard drawn, since navigation start": b.measured_at("dashboard"),
               "DOMContentLoaded": b.js("return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")}
    report("dashboard timings (ms)", timings)
    # what the reload cost on the wire: versioned assets come from the cache (immutable), the page revalidates
    assets = b.js("return performance.getEntriesByType('resource').filter(r => r.name.includes('/assets/'))"
                  ".map(r => [r.name.split('/').pop(), r.transferSize, r.encodedBodySize, r.decodedBodySize])")
    report("assets on reload [name, transferred, encoded, decoded]", assets)
    assert assets and all(t == 0 for _, t, _, _ in assets), assets  # nothing fetched again
    assert sum(e for _, _, e, _ in assets) < sum(d for _, _, _, d in assets) / 2  # sent gzipped
    assert timings["map, all countries"] is not None and timings["map, all countries"] < 2000  # generous: the target is 100 ms
    b.shot("dashboard")
    # hover tells country and count
    b.driver.execute_script("document.querySelector('.map path[data-cc=\"DE\"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
    b.wait_text(".maptip", "Germany: ")
    # every range draws
    for rg in ("7d", "30d", "365d"):
        b.wait_text("button", rg).click()
        b.until(lambda rg=rg: b.js("return document.querySelector('[aria-pressed=true]').textContent") == rg, "range " + rg)
        b.until(lambda: sum(b.js("return [...document.querySelectorAll('.chart rect')].map(r => Number(r.dataset.bans))")) > 0,
                "bars in " + rg)
    b.shot("dashboard-365d")
    # click a country: its history
    b.js("document.querySelector('.map path[data-cc=\"US\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    b.wait_text("h1", "History")
    b.until(lambda: len(b.all("section[aria-label='Events'] tbody tr")) == countries["US"], "US events")
    assert all("United States" in tr.text for tr in b.all("section[aria-label='Events'] tbody tr"))
    b.shot("history-united-states")
    # dark mode and a phone
    b.dark()
    b.go("#/")
    b.wait(".map path")
    b.shot("dashboard-dark")
    b.size(PHONE)
    b.dark(False)
    b.go("#/history")
    b.go("#/")
    b.wait(".map path")
    header = b.js("return document.querySelector('header.top').getBoundingClientRect().height")
    report("header height at 390 px", header)
    assert header <= PHONE[1] / 6, header
    assert b.js("return document.documentElement.scrollWidth") <= PHONE[0] + 1
    b.shot("dashboard-390px")


def test_ban_unban_and_ip_view(seeded_server: Any, browser: Any) -> None:
    server, _ = seeded_server
    b: Browser = browser(server.url)
    login(b, "operator")
    b.go("#/jails/sshd")
    b.wait_text("h1", "sshd")
    b.fill("Addresses or networks to ban, one per line", "8.8.8.8\n5.9.1.1\n198.51.100.0/24")
    b.button("Ban in sshd").click()
    b.wait_text("#notice, .feedback.ok", "Banned 3")
    b.wait_text("section[aria-label='Banned now'] h2", "Banned now (3)")
    cards = b.wait(".cards").text
    assert "3\nbanned now" in cards, cards
    rows = [r.text for r in b.all("section[aria-label='Banned now'] tbody tr")]
    assert any("5.9.1.1" in r and "Germany" in r for r in rows), rows  # country names, not codes
    b.shot("jail-after-ban")
    # unban one: the list AND the counters follow
    b.wait("button[aria-label='Unban 8.8.8.8 in sshd']").click()
    b.wait_text("#notice, .feedback.ok", "Unbanned 8.8.8.8 in sshd")
    b.wait_text("section[aria-label='Banned now'] h2", "Banned now (2)")
    b.until(lambda: "2\nbanned now" in b.wait(".cards").text, "counter after unban")
    b.shot("jail-after-unban")
    # the IP view in words
    b.go("#/ips/5.9.1.1")
    summary = b.wait_text("section[aria-label='Summary']", "Times banned").text
    assert "Germany" in summary and "bancount" not in summary and "ends_at" not in b.wait("main").text
    assert re.search(r"\b20\d\d\b", summary), summary  # 4-digit years
    b.shot("ip-view")
    # a network: the lookup answers (from the API, or from bans + history on builds that refuse networks)
    b.go("#/ips/198.51.100.0/24")
    b.wait_text("main h2", "198.51.100.0/24")
    b.wait_text("section[aria-label='Current bans']", "sshd")
    b.shot("network-view")
    # bans across jails, then logout
    b.go("#/bans")
    b.wait_text("h1", "Current bans (2)")
    b.shot("bans")
    # the same screens on a phone
    b.size(PHONE)
    for route, ready in (("#/jails/sshd", "section[aria-label='Banned now']"), ("#/bans", "main table"),
                         ("#/history", "section[aria-label='Events'] tbody tr"), ("#/ips/5.9.1.1", "section[aria-label='Summary']")):
        b.go(route)
        b.wait(ready)
        assert b.js("return document.documentElement.scrollWidth") <= PHONE[0] + 1, route
        b.shot("390px-" + route.strip("#/").replace("/", "-"))
    b.size(DESKTOP)
    b.dark()
    for route, ready in (("#/jails/sshd", "section[aria-label='Banned now']"), ("#/history", "section[aria-label='Events'] tbody tr")):
        b.go(route)
        b.wait(ready)
        b.shot("dark-" + route.strip("#/").replace("/", "-"))
    b.dark(False)
    b.wait_text("#who button", "Log out").click()
    b.wait_text("h1", "Log in to bangui")


def test_keyboard_reaches_the_map_and_opens_a_country(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ["5.9.1.1"]})
    b: Browser = browser(server.url)
    login(b)
    b.wait(".map path.c5")
    from selenium.webdriver.common.keys import Keys

    body = b.wait("body")
    for _ in range(80):  # Tab through the page until the one country with bans has the focus
        body = b.driver.switch_to.active_element
        if body.get_attribute("data-cc") == "DE":
            break
        body.send_keys(Keys.TAB)
    assert b.driver.switch_to.active_element.get_attribute("data-cc") == "DE"
    b.wait_text(".maptip", "Germany: 1 ban")
    b.shot("map-keyboard-focus")
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    b.wait_text("h1", "History")
    b.until(lambda: len(b.all("section[aria-label='Events'] tbody tr")) == 1, "the German event")


def test_roles_show_only_usable_controls(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ["8.8.8.8"]})
    b: Browser = browser(server.url)
    login(b, "viewer")
    nav = b.wait("nav").text
    assert "Users" not in nav and "Configuration" not in nav and "Audit" not in nav
    b.go("#/jails/sshd")
    b.wait_text("section[aria-label='Banned now'] h2", "Banned now (1)")
    main = b.wait("main")
    buttons = [x.text for x in main.find_elements("css selector", "button") if x.is_displayed()]
    assert not [t for t in buttons if t in ("Unban", "Unban all", "Stop", "Start", "Reload", "Remove", "Add to ignore list")], buttons
    assert not b.all("#ban-ips")
    b.shot("viewer-jail")
    paths = api_call(server, tokens["admin"], "GET", "/openapi.json")["paths"]
    if "/api/v1/logs" in paths:  # a viewer reads fail2ban's log, but the filter tester is for operators
        b.wait_text("nav a", "Tools").click()
        b.wait("section[aria-label='fail2ban log']")
        assert not b.all("section[aria-label='Filter tester']")
    b.wait_text("#who button", "Log out").click()
    login(b, "operator")
    nav = b.wait("nav").text
    assert "Users" not in nav and "Configuration" not in nav
    b.go("#/jails/sshd")
    b.wait("button[aria-label='Unban 8.8.8.8 in sshd']")
    b.wait("#ban-ips")
    assert not [x for x in b.all("main button") if x.text in ("Stop", "Start", "Reload")]
    b.shot("operator-jail")


def test_history_of_a_thousand_events_renders_fast(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    ips = [f"10.{i // 250}.{i % 250}.{1 + i % 7}" for i in range(1200)]
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ips})
    b: Browser = browser(server.url)
    login(b)
    b.go("#/history")
    b.wait("section[aria-label='Events'] tbody tr")
    b.fill("Rows", "1000")
    b.button("Apply").click()
    b.until(lambda: len(b.all("section[aria-label='Events'] tbody tr")) == 1000, "1000 rows drawn")
    first = b.until(lambda: b.measure("history-render"), "render measured")
    sort = b.driver.execute_async_script(
        "const done = arguments[0], t0 = performance.now();"
        "document.querySelector('section[aria-label=Events] th button').click();"
        "const first = (document.body.offsetHeight, performance.now() - t0);"
        "requestAnimationFrame(() => setTimeout(() => done([first, performance.now() - t0])));")
    report("history render (ms)", {"1000 rows, DOM built": b.measure("history-build"),
                                   "1000 rows, DOM + layout + next frame": first,
                                   "sort 1000 rows: DOM + layout": sort[0], "sort: to the next frame": sort[1]})
    assert first is not None and first < 3000  # generous: the target is 300 ms for 1,000 rows
    b.shot("history-1000", full=False)


def test_blocklists_fit_at_1366(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/blocklists", json={
        "name": "long-list", "url": "https://lists.example.org/some/very/long/path/to/a/blocklist/file-of-addresses.txt",
        "jail": "sshd", "interval_s": 86400, "enabled": True})
    b: Browser = browser(server.url)
    b.size(DESKTOP)
    login(b)
    b.go("#/blocklists")
    delete = b.wait("button[aria-label='Delete blocklist long-list']")
    right = b.js("return arguments[0].getBoundingClientRect().right", delete)
    wrap = b.js("const w = document.querySelector('section[aria-label=Blocklists] .tablewrap'); return [w.scrollWidth, w.clientWidth, w.getBoundingClientRect().right]")
    b.shot("blocklists-1366")
    assert right <= wrap[2] + 0.5 and wrap[0] <= wrap[1], (right, wrap)


def test_audit_view_filters_csv_and_chain(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    paths = api_call(server, tokens["admin"], "GET", "/openapi.json")["paths"]
    if "/api/v1/audit" not in paths:
        pytest.skip("this build has no audit log (issue 9)")
    api_call(server, tokens["operator"], "POST", "/jails/sshd/bans", json={"ips": ["8.8.8.8"]})
    b: Browser = browser(server.url)
    login(b)
    b.wait_text("nav a", "Audit").click()
    b.wait_text("h1", "Audit log")
    rows = b.until(lambda: [r.text for r in b.all("section[aria-label='Entries'] tbody tr")], "audit rows")
    assert any("jail.ban" in r and "token:operator-token" in r for r in rows), rows
    assert any("auth.login" in r for r in rows), rows
    b.shot("audit")
    b.fill("Action", "jail.")
    b.button("Apply").click()
    b.until(lambda: all("jail." in r.text for r in b.all("section[aria-label='Entries'] tbody tr")), "only jail actions")
    href = b.wait("a[download='bangui-audit.csv']").get_attribute("href")
    assert "format=csv" in href and "action=jail." in href, href
    csv_text = b.driver.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => r.text()).then(done, e => done(String(e)))", href)
    assert csv_text.splitlines()[0].startswith("id,") and "jail.ban" in csv_text and "auth.login" not in csv_text, csv_text[:300]
    b.button("Verify the chain").click()
    b.wait_text("section[aria-label='Integrity']", "The chain verifies")
    b.shot("audit-filtered-verified")
    # operators do not see it
    b.wait_text("#who button", "Log out").click()
    login(b, "operator")
    assert "Audit" not in b.wait("nav").text


def test_banner_when_fail2ban_is_unreachable(seeded_server: Any, fail2ban: Any, browser: Any) -> None:
    server, _ = seeded_server
    b: Browser = browser(server.url)
    login(b)
    b.wait_text("section[aria-label='fail2ban']", "up")
    assert not b.wait("#f2b", visible=False).is_displayed()
    b.expect_5xx = True
    fail2ban.kill()
    banner = b.wait_text("#f2b", "fail2ban is unreachable", timeout=20)
    assert "cannot be shown or changed" in banner.text
    b.wait_text("section[aria-label='fail2ban']", "down", timeout=20)
    b.shot("fail2ban-down")
    b.go("#/history")  # the banner stays on every page
    b.wait("section[aria-label='Events']")
    assert b.wait("#f2b").is_displayed()
