"""Answers over 1 KB are gzip-compressed when the client accepts it (issue 23 item 9), against a real server
process: the OpenAPI document and a streamed CSV are, small answers and the server-sent log stream are not (the
stream's lines still arrive one by one, not buffered)."""

from __future__ import annotations

import gzip
from typing import Any

import httpx2 as httpx
import pytest

from f2b.instance import PrivateServer
from tests.handlers.test_logs import ADMIN_ENV, Events, ban


def login(url: str) -> dict[str, str]:
    r = httpx.post(url + "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_ENV["BANGUI_ADMIN_PASSWORD"]},
                   timeout=10)
    return {"Cookie": f"bangui_session={r.cookies['bangui_session']}"}


@pytest.mark.processes
def test_large_answers_are_gzipped_small_ones_and_the_log_stream_are_not(bangui_server: Any,
                                                                         fail2ban: PrivateServer) -> None:
    server = bangui_server(workers=1, env=ADMIN_ENV)
    cookie = login(server.url)
    with httpx.Client(timeout=httpx.Timeout(30)) as client:
        gz = {**cookie, "Accept-Encoding": "gzip"}
        plain = client.get(server.url + "/api/v1/openapi.json", headers={**cookie, "Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        with client.stream("GET", server.url + "/api/v1/openapi.json", headers=gz) as packed:
            raw = b"".join(packed.iter_raw())
        assert packed.headers["content-encoding"] == "gzip" and "accept-encoding" in packed.headers["vary"].lower()
        assert gzip.decompress(raw) == plain.content and len(raw) < len(plain.content) / 3
        small = client.get(server.url + "/api/v1/health/live", headers=gz)
        assert small.status_code == 200 and "content-encoding" not in small.headers
        refused = client.get(server.url + "/api/v1/openapi.json", headers={**cookie, "Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers and refused.content == plain.content

        for ip in ("192.0.2.1", "192.0.2.2"):
            ban(fail2ban, ip)
        csv = client.get(server.url + "/api/v1/history?format=csv", headers=gz)  # a streamed answer
        assert csv.headers["content-encoding"] == "gzip" and csv.text.startswith("time,event")

        with client.stream("GET", server.url + "/api/v1/logs/stream", headers=gz) as response:
            assert response.status_code == 200 and "content-encoding" not in response.headers
            events = Events(response)
            events.until(lambda line: line.startswith(": following"))
            ban(fail2ban, "192.0.2.71")  # one line after the stream began arrives on its own
            events.until(lambda line: line.startswith("data:") and "Ban 192.0.2.71" in line)
