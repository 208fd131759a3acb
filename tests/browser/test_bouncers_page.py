"""The page's CrowdSec bouncers view (issue 22): an admin lists, creates and deletes bouncer keys."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.conftest import DESKTOP, Browser, api_call, login

pytestmark = pytest.mark.browser


def test_admin_creates_sees_and_deletes_a_bouncer_key(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    b: Browser = browser(server.url)
    b.size(DESKTOP)
    login(b)
    b.go("#/bouncers")
    b.fill("Name", "edge")
    b.button("Create key").click()
    key = b.js("return arguments[0].value", b.wait("input[aria-label='New bouncer key']"))
    pulled = httpx.get(server.url + "/v1/decisions/stream?startup=true", headers={"X-Api-Key": key,
                       "User-Agent": "crowdsec-custom-bouncer/-"})
    assert pulled.status_code == 200
    b.button("Done").click()
    b.go("#/jobs")
    b.go("#/bouncers")
    b.wait_text("main td", "crowdsec-custom-bouncer/-")
    b.shot("bouncers")
    b.accept_confirms()
    b.wait("button[aria-label='Delete bouncer edge']").click()
    b.wait_text("main", "No bouncers.")
    assert api_call(server, tokens["admin"], "GET", "/bouncers")["bouncers"] == []
    assert httpx.get(server.url + "/v1/decisions/stream", headers={"X-Api-Key": key}).status_code == 403
    b.check_console()
