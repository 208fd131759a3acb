"""The Notifications screen in a real browser against a real server and a real receiver on loopback: add a target
(format and its fields), send a test, see the last delivery, pause, delete (issue 20 item 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from store import Store
from tests.browser.conftest import DESKTOP, Browser, api_call, login
from tests.fixtures.app import seed_users
from tests.fixtures.processes import ServerProcess
from tests.fixtures.webhook import Receiver

pytestmark = pytest.mark.browser


@pytest.fixture
def notify_server(tmp_path: Path, fail2ban: Any) -> Iterator[tuple[ServerProcess, dict[str, str], Receiver]]:
    """`bangui serve` allowed to notify a loopback receiver, with the test cast of users, and that receiver."""
    data = tmp_path / "data"
    store = Store(Settings.for_tests(data_dir=str(data), fail2ban_socket=str(fail2ban.socket)))
    tokens = seed_users(store)
    store.close()
    receiver = Receiver()
    server = ServerProcess(data, fail2ban, 1, tmp_path, env={"BANGUI_NOTIFY_ALLOW_PRIVATE": "1"})
    server.start()
    yield server, tokens, receiver
    server.stop()
    receiver.close()


def test_admin_adds_tests_pauses_and_deletes_a_target_from_the_page(notify_server: Any, browser: Any) -> None:
    server, tokens, receiver = notify_server
    b: Browser = browser(server.url)
    b.size(DESKTOP)
    login(b)
    b.wait_text("nav a", "Notifications").click()
    b.wait("section[aria-label='Add a target'] form")
    b.fill("Name", "ops-chat")
    b.js("const s = document.querySelector('section[aria-label=\"Add a target\"] select'); s.value = 'slack';"
         "s.dispatchEvent(new Event('change'))")
    b.fill("URL", receiver.url + "/hook?token=s3cret")
    b.fill("At most one message every (s)", "0")
    b.js("for (const cb of document.querySelectorAll('fieldset input[type=checkbox]'))"
         " if (cb.value === 'login.failed') cb.click()")
    b.check_labels()
    b.button("Add target").click()
    b.wait("button[aria-label='Send test to ops-chat']")
    made = api_call(server, tokens["admin"], "GET", "/notifications")["notifications"]
    assert [(t["name"], t["format"], t["events"], t["min_interval_s"]) for t in made] == \
        [("ops-chat", "slack", ["ban", "login.failed"], 0)]
    assert "s3cret" not in b.js("return document.querySelector('main').textContent")  # the URL's secret stays hidden

    b.button("Send test").click()
    receiver.wait(lambda: len(receiver.messages) == 1)
    assert receiver.messages[0]["path"] == "/hook?token=s3cret"
    assert "1 test" in json.loads(receiver.messages[0]["body"])["text"]
    b.until(lambda: b.js("return [...document.querySelectorAll('section[aria-label=Targets] .badge')]"
                         ".some(e => e.textContent === 'ok')"), "the last delivery shown as ok", timeout=20)
    b.shot("notifications")

    b.wait("button[aria-label='Pause ops-chat']").click()
    b.wait("button[aria-label='Resume ops-chat']")
    assert api_call(server, tokens["admin"], "GET", "/notifications")["notifications"][0]["enabled"] is False

    b.accept_confirms()
    b.wait("button[aria-label='Delete ops-chat']").click()
    b.wait_text("section[aria-label=Targets]", "No notification targets.")
    assert api_call(server, tokens["admin"], "GET", "/notifications")["notifications"] == []


def test_only_admins_see_the_notifications_screen(notify_server: Any, browser: Any) -> None:
    server, _tokens, _receiver = notify_server
    b: Browser = browser(server.url)
    login(b, "operator")
    labels = [a.text for a in b.all("nav a")]
    assert "Jobs" in labels and "Notifications" not in labels
