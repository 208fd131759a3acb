"""One user's slow filter tests cannot starve the others (issue 18): a per-user cap across real workers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest

from settings import Settings
from store import Store
from tests.fixtures.app import PASSWORD
from tests.reliability.helpers import admin_token

pytestmark = pytest.mark.reliability

CATASTROPHIC = {"failregex": [r"^(a+)+$ <HOST>"], "lines": ["a" * 60 + "!"]}  # killed at the deadline
LEGITIMATE = {"failregex": [r"from <HOST>"], "lines": ["Failed password for root from 192.0.2.7 port 22"]}


def test_one_users_concurrent_filter_tests_are_capped_across_workers(bangui_server: Any, fail2ban: Any) -> None:
    server = bangui_server(workers=2, env={"BANGUI_FILTER_TEST_SECONDS": "4"})
    greedy = {"Authorization": f"Bearer {admin_token(server.data_dir, 'operator')}"}
    store = Store(Settings.for_tests(data_dir=str(server.data_dir)))
    try:
        other = store.users.create("bob", PASSWORD, "operator")
        fair = {"Authorization": f"Bearer {store.tokens.create('bob-token', 'operator', 'bob', other['uid'])[0]}"}
    finally:
        store.close()
    url = server.url + "/api/v1/filters/test"
    with ThreadPoolExecutor(8) as pool:
        greedy_runs = [pool.submit(httpx.post, url, json=CATASTROPHIC, headers=greedy, timeout=60) for _ in range(6)]
        answers = [f.result() for f in greedy_runs]
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [422, 429, 429, 429, 429, 429], [(r.status_code, r.text[:200]) for r in answers]
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    # while the greedy user's test runs, another user's test is served at once, whichever worker gets it
    with ThreadPoolExecutor(3) as pool:
        busy = [pool.submit(httpx.post, url, json=CATASTROPHIC, headers=greedy, timeout=60) for _ in range(2)]
        time.sleep(0.5)
        started = time.monotonic()
        r = httpx.post(url, json=LEGITIMATE, headers=fair, timeout=60)
        waited = time.monotonic() - started
        assert r.status_code == 200 and r.json()["matched"] == 1, r.text
        assert sorted(f.result().status_code for f in busy) == [422, 429]
    assert waited < 4.0, waited  # not queued behind the greedy user's tests (each runs 4 s)
    # the slots were given back: the greedy user may test again
    assert httpx.post(url, json=LEGITIMATE, headers=greedy, timeout=60).status_code == 200
