"""Sorting current bans on the server (not one page): a click (or Enter) on a header of the Bans view or of a jail's
bans asks the API for that order over every ban and pages through it with the cursor; aria-sort says the order."""

from __future__ import annotations

from typing import Any

import pytest

from f2b.blocking import sync_call
from tests.browser.conftest import Browser, api_call, login

pytestmark = pytest.mark.browser

SOONEST = "203.0.113.5"  # sshd: 600 s, the ban that ends first, and the last address of every ban
LATEST = "10.255.0.1"  # nginx-http-auth, banned last
PERMANENT = "10.0.0.1"  # sshd-dummy with bantime -1: no end


def first_address(b: Browser, section: str = "main") -> str:
    return str(b.js("const a = document.querySelector(arguments[0] + ' tbody tr a'); return a && a.textContent",
                    section))


def addresses(b: Browser, section: str = "main") -> list[str]:
    return [a.text for a in b.all(f"{section} tbody tr td:first-child a")]


def sort_header(b: Browser, label: str, section: str = "main") -> Any:
    return b.wait_text(f"{section} th button.sort", label)


def aria_sort(b: Browser, label: str, section: str = "main") -> str | None:
    return b.js("""for (const th of document.querySelectorAll(arguments[1] + ' th')) {
                     if (th.textContent.startsWith(arguments[0])) return th.getAttribute('aria-sort'); }""",
                label, section)


def test_the_expires_header_sorts_every_ban_and_pages_in_that_order(seeded_server: Any, fail2ban: Any,
                                                                    browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    server, tokens = seeded_server
    admin = tokens["admin"]
    api_call(server, admin, "POST", "/jails/nginx-http-auth/bans",
             json={"ips": [f"10.0.{i // 200}.{i % 200 + 2}" for i in range(150)]})  # 3600 s
    api_call(server, admin, "POST", "/jails/sshd/bans", json={"ips": [SOONEST]})  # 600 s
    sync_call(str(fail2ban.socket), "set", "sshd-dummy", "bantime", "-1")
    api_call(server, admin, "POST", "/jails/sshd-dummy/bans", json={"ips": [PERMANENT]})
    api_call(server, admin, "POST", "/jails/nginx-http-auth/bans", json={"ips": [LATEST]})
    b: Browser = browser(server.url)
    login(b, "viewer")
    b.go("#/bans")
    b.wait_text("main h1", "Current bans (153)")
    assert SOONEST not in addresses(b) and len(addresses(b)) == 100  # not on the first page in address order
    assert aria_sort(b, "Address") == "ascending" and aria_sort(b, "Expires") is None
    # the keyboard, as an operator would: the header's button takes Enter
    expires = sort_header(b, "Expires")
    column = expires.get_attribute("data-col")
    b.js("arguments[0].focus()", expires)
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    b.until(lambda: first_address(b) == SOONEST, "the soonest-ending ban of all first")
    assert aria_sort(b, "Expires") == "ascending" and aria_sort(b, "Address") is None
    assert b.js("return document.activeElement.dataset.col") == column  # the focus stays on the header's button
    b.shot("bans-by-expiry")
    first_page = addresses(b)
    b.button("Next page").click()
    b.until(lambda: len(addresses(b)) == 53, "the second page in expiry order")
    second_page = addresses(b)
    assert second_page[-1] == PERMANENT  # no end: last
    assert len(set(first_page + second_page)) == 153  # every ban once over the two pages
    # again: descending, from the first page
    sort_header(b, "Expires").click()
    b.until(lambda: first_address(b) == PERMANENT, "descending: the ban without an end first")
    assert aria_sort(b, "Expires") == "descending" and len(addresses(b)) == 100
    assert SOONEST not in addresses(b)
    # a jail's bans, the same way: Banned, twice, is the latest ban first (its address is last of 151)
    b.go("#/jails/nginx-http-auth")
    section = "section[aria-label='Banned now']"
    b.wait_text(f"{section} h2", "Banned now (151)")
    assert LATEST not in addresses(b, section) and len(addresses(b, section)) == 100
    sort_header(b, "Banned", section).click()
    b.until(lambda: aria_sort(b, "Banned", section) == "ascending", "sorted by ban time")
    sort_header(b, "Banned", section).click()
    b.until(lambda: first_address(b, section) == LATEST, "the latest ban of the jail first")
    assert aria_sort(b, "Banned", section) == "descending"
    assert b.wait(f"{section} .row.spread").text == "Banned now (151)"  # a viewer: no Unban all, nothing else
    b.button("Next page").click()
    b.until(lambda: len(addresses(b, section)) == 51, "the jail's second page")
    assert LATEST not in addresses(b, section)
    b.shot("jail-bans-by-ban-time")
    # the address filter is the server's too (every ban of the jail, not the page shown), in the same order
    search = b.wait(f"{section} input[type=search]")
    search.send_keys("10.0.0.5")
    b.until(lambda: len(addresses(b, section)) == 11, "10.0.0.5 and 10.0.0.50-59, from the first page")
    assert b.wait_text(f"{section} h2", "Banned now (11)") and aria_sort(b, "Banned", section) == "descending"
    b.check_labels()
