"""The page, round two (issue 23 items 5-8): repeat offenders banned in a long jail, preferences kept on the server
and used by every time on the page, the Bans table sorted and filtered at 1366 px, a viewer's "admins only", the
filter tester's verdict per line, the log viewer's line count, jail activation with its own settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.conftest import Browser, api_call, login, report
from tests.browser.test_config_screens import config_server  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser
OFFENDER = "203.0.113.77"


def test_repeat_offenders_are_listed_and_banned_in_the_longest_jail(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    for _ in range(3):  # three bans of one address (each lifted in between), one ban of another
        api_call(server, tokens["operator"], "POST", "/jails/sshd/bans", json={"ips": [OFFENDER]})
        api_call(server, tokens["operator"], "DELETE", f"/jails/sshd/bans/{OFFENDER}")
    api_call(server, tokens["operator"], "POST", "/jails/sshd/bans", json={"ips": ["198.51.100.1"]})
    b: Browser = browser(server.url)
    login(b, "operator")
    b.wait_text("nav a", "Repeat offenders").click()
    table = b.wait_text("main table", OFFENDER)
    assert "198.51.100.1" not in table.text  # banned once: not a repeat offender
    row = b.js("return [...arguments[0].querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))", table)
    assert row[0][0] == OFFENDER and row[0][2] == "3" and row[0][3] == "sshd", row
    # the jails to ban in, longest ban time first: nginx-http-auth (1 h) before sshd (10 min)
    target = b.wait("select option")
    options = b.js("return [...document.querySelector('main .row select').options].map(o => o.textContent)")
    assert options[0].startswith("nginx-http-auth (bans for 1h") and options[1].startswith("sshd"), options
    assert target
    b.wait(f"button[aria-label='Ban {OFFENDER} in the chosen jail']").click()
    b.wait_text(".feedback.ok", "Banned 1 address in nginx-http-auth")
    bans = api_call(server, tokens["viewer"], "GET", "/bans?jail=nginx-http-auth")["bans"]
    assert [x["ip"] for x in bans] == [OFFENDER]
    audit = api_call(server, tokens["admin"], "GET", "/audit?actor=operator")
    entries = audit.get("entries", audit.get("items", []))
    assert any(OFFENDER in str(e) and "nginx-http-auth" in str(e) for e in entries), entries[:3]
    b.shot("offenders")


def test_preferences_are_kept_on_the_server_and_shape_every_time(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": ["8.8.8.8"]})
    b: Browser = browser(server.url)
    login(b, "viewer")
    b.wait_text("nav a", "Preferences").click()
    b.wait("main select[name=theme]")
    b.fill("Time zone", "Asia/Tokyo")
    b.js("const s = document.querySelector('select[name=date_format]'); s.value = 'iso'; s.dispatchEvent(new Event('change'))")
    b.js("const s = document.querySelector('select[name=theme]'); s.value = 'dark'; s.dispatchEvent(new Event('change'))")
    b.button("Save preferences").click()
    b.wait_text(".feedback.ok", "Preferences saved")
    assert b.js("return document.documentElement.dataset.theme") == "dark"
    saved = api_call(server, tokens["viewer"], "GET", "/preferences")
    assert (saved["time_zone"], saved["date_format"], saved["theme"]) == ("Asia/Tokyo", "iso", "dark"), saved
    b.open()  # a new load: the preferences come from the server
    b.wait("main h1")
    assert b.js("return document.documentElement.dataset.theme") == "dark"
    b.go("#/bans")
    cell = b.wait("main table tbody time").text
    assert "GMT+9" in cell and cell[:4].isdigit(), cell  # ISO date, Tokyo time
    b.shot("preferences-dark-tokyo")
    b.go("#/preferences")
    b.wait("main select[name=theme]")
    b.wait("#pref-relative").click()
    b.button("Save preferences").click()
    b.wait_text(".feedback.ok", "times now show relative")
    b.go("#/bans")
    b.wait("main table tbody time")
    expires = b.js("return [...document.querySelectorAll('main table tbody time')].map(t => t.textContent)")
    assert any(x.startswith("in ") for x in expires) and any(x.endswith(" ago") for x in expires), expires


def test_bans_table_is_one_line_per_ban_sortable_and_filterable_at_1366(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": [f"192.0.2.{i}" for i in range(1, 40)]})
    api_call(server, tokens["admin"], "POST", "/jails/nginx-http-auth/bans", json={"ips": ["198.51.100.7"]})
    b: Browser = browser(server.url)
    login(b, "operator")
    b.go("#/bans")
    b.wait_text("main h1", "Current bans (40)")
    heights = b.js("return [...document.querySelectorAll('main table tbody tr')].map(r => r.getBoundingClientRect().height)")
    report("Bans row height at 1366 px (px)", max(heights))
    assert max(heights) < 48, heights  # one line each: no wrapped jail names or dates, no stacked buttons
    assert b.js("return [...document.querySelectorAll('main table button')].every(x => x.offsetParent && "
                "x.getBoundingClientRect().right <= innerWidth)")
    # in address order from the start (aria-sort says so): one click is descending, sorted by the server
    assert b.js("return document.querySelector('main th[aria-sort]').textContent").startswith("Address")
    b.wait_text("main th button", "Address").click()
    b.until(lambda: b.js("return document.querySelector('main table tbody tr a').textContent") == "198.51.100.7",
            "descending address order")
    b.js("const s = [...document.querySelectorAll('main select')].find(x => x.labels[0].textContent === 'Jail');"
         "s.value = 'nginx-http-auth'; s.dispatchEvent(new Event('change'))")
    b.until(lambda: len(b.all("main table tbody tr")) == 1, "filtered to one jail")
    b.shot("bans-1366")


def test_a_viewer_opening_admin_views_sees_admins_only(seeded_server: Any, browser: Any) -> None:
    server, _tokens = seeded_server
    b: Browser = browser(server.url)
    login(b, "viewer")
    for view, title in (("#/config", "Configuration"), ("#/audit", "Audit log"), ("#/notifications", "Notifications"),
                        ("#/users", "Users"), ("#/bouncers", "CrowdSec bouncers")):
        b.go(view)
        b.wait_text("main h1", title)
        note = b.wait_text("main .notice-box", "Admins only").text
        assert "viewer" in note, note
        assert not b.banner()
    b.check_console()  # no 403 in the console: nothing was asked


def test_filter_tester_marks_each_line_and_log_viewer_line_count(config_server: Any, browser: Any) -> None:  # noqa: F811
    server, tokens, _ = config_server
    # fail2ban's log gets a line per ban: well over 50 lines
    api_call(server, tokens["operator"], "POST", "/jails/sshd/bans", json={"ips": [f"192.0.2.{i}" for i in range(1, 81)]})
    b: Browser = browser(server.url)
    login(b, "operator")
    b.go("#/tools")
    b.wait_text("h1", "Tools")
    b.fill("Fail regex", r"login failed for \S+ from <HOST>$")
    b.fill("Ignore regex", r"from 192\.0\.2\.1$")
    b.fill("Log lines", "login failed for bob from 203.0.113.5\nlogin failed for eve from 192.0.2.1\nall good")
    b.button("Test").click()
    section = b.wait_text("section[aria-label='Filter tester']", "1 matched")
    verdicts = b.js("return [...arguments[0].querySelectorAll('tbody tr')].map(r => [r.cells[0].textContent, "
                    "r.cells[1].textContent])", section)
    assert verdicts == [["login failed for bob from 203.0.113.5", "failure"],
                        ["login failed for eve from 192.0.2.1", "ignored"], ["all good", "not a failure"]], verdicts
    b.js("const s = [...document.querySelectorAll('select')].find(x => x.labels[0].textContent === 'Show the last');"
         "s.value = '50'; s.dispatchEvent(new Event('change', {bubbles: true}))")
    b.until(lambda: b.js("return performance.getEntriesByType('resource').some(e => e.name.includes('/logs?lines=50'))"),
            "the log read again with 50 lines")
    log_lines = "return document.querySelector(\"section[aria-label='fail2ban log'] pre\").childNodes.length"
    b.until(lambda: b.js(log_lines) == 50, "the last 50 lines of the log")
    assert "50 lines" in b.wait_text("section[aria-label='fail2ban log'] p", "lines").text
    b.shot("tester-verdicts")


def test_jail_activation_with_its_own_settings(config_server: Any, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    server, tokens, conf = config_server
    catalogue = {j["name"]: j for j in api_call(server, tokens["admin"], "GET", "/config/jails")["jails"]}
    if "apache-auth" not in catalogue:
        pytest.skip("this build's config server has no stock catalogue")
    log = tmp_path / "apache-error.log"
    log.touch()
    b: Browser = browser(server.url)
    login(b)
    b.go("#/config")
    section = b.wait("section[aria-label='Activate a jail with its own settings']")
    b.js("const s = arguments[0].querySelector('select'); s.value = 'apache-auth'; s.dispatchEvent(new Event('change'))", section)
    b.wait_text("section[aria-label='Activate a jail with its own settings']", "Configured: log")
    b.fill("Log paths", str(log))
    b.js("const s = [...arguments[0].querySelectorAll('select')][1]; s.value = 'polling'", section)
    b.fill("Ports", "8080,8443")
    b.fill("Max retry", "4")
    b.button("Activate with these settings").click()
    b.wait_text(".feedback.ok, #notice", "apache-auth activated", timeout=60)
    after = {j["name"]: j for j in api_call(server, tokens["admin"], "GET", "/config/jails")["jails"]}["apache-auth"]
    assert after["active"] and after["logpath"] == [str(log)] and after["backend"] == "polling", after

    def running_with_maxretry_4() -> bool:
        r = httpx.get(server.url + "/api/v1/jails/apache-auth", headers={"Authorization": f"Bearer {tokens['admin']}"},
                      timeout=10)
        return r.status_code == 200 and r.json()["maxretry"] == 4

    b.until(running_with_maxretry_4, "apache-auth running with maxretry 4", timeout=30)
    b.shot("activated-with-settings")
