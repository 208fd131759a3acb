"""Health endpoints, and fail2ban going away and coming back as seen through the API."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from tests.fixtures.app import Api
from tests.fixtures.waiting import wait_for


def test_liveness_and_readiness_are_public(api: Api) -> None:
    assert api.client.get("/api/v1/health/live").json() == {"status": "ok"}
    ready = api.client.get("/api/v1/health/ready")
    assert ready.status_code == 200
    assert ready.json()["fail2ban"]["reachable"] is True


@pytest.mark.with_jobs
def test_health_names_this_worker_and_fail2ban(api: Api) -> None:
    # the in-process app is the only candidate; its election runs beside the first requests
    body = wait_for(lambda: (got := api.call("viewer", "GET", "/health").json())["leader"] and got, 10,
                    "the in-process app leading")
    assert body["worker_pid"] == os.getpid()
    assert body["fail2ban"]["reachable"] is True and body["fail2ban"]["version"].startswith("1.")
    assert body["fail2ban"]["socket"] == api.settings.fail2ban_socket
    assert body["leader"]["pid"] == os.getpid()
    assert body["leader"]["epoch"] >= 1


@pytest.mark.with_jobs
def test_health_shows_the_leaders_snapshot(api: Api) -> None:
    import time

    deadline = time.monotonic() + 10
    while (snap := api.call("viewer", "GET", "/health").json()["snapshot"]) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snap is not None and snap["reachable"] is True
    assert sorted(snap["jails"]) == ["nginx-http-auth", "sshd", "sshd-dummy"]


def test_stopped_fail2ban_is_503_then_recovers(api: Api, fail2ban: Any) -> None:
    fail2ban.stop()
    r = api.call("viewer", "GET", "/jails")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "fail2ban_unavailable"
    assert api.settings.fail2ban_socket in error["message"]
    assert api.call("viewer", "GET", "/health").json()["status"] == "degraded"
    fail2ban.start()
    assert api.call("viewer", "GET", "/jails").status_code == 200


def test_wrong_socket_path_says_how_to_fix_it(settings: Settings) -> None:
    wrong = replace(settings, fail2ban_socket="/nonexistent/fail2ban.sock")
    with TestClient(create_app(wrong)) as client:
        r = client.get("/api/v1/health/ready")
        assert r.status_code == 200 and r.json()["fail2ban"]["reachable"] is False
        assert "/nonexistent/fail2ban.sock" in r.json()["fail2ban"]["error"]
