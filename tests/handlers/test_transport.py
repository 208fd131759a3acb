"""Issue 8 items 13 and 17 in process (the same attacks against real processes: tests/reliability)."""

from __future__ import annotations

from hypercorn.config import Config

from handlers.transport import configure, error_body, install_error_bodies
from tests.fixtures.app import Api


def test_no_server_header_and_no_read_timeout_in_the_hypercorn_config() -> None:
    """No read timeout: hypercorn's cut long streaming responses whose client sends nothing meanwhile."""
    config = Config()
    configure(config)
    assert config.include_server_header is False and config.read_timeout is None
    assert all(name != b"server" for name, _ in config.response_headers("h11"))


def test_unread_body_closes_the_connection(api: Api) -> None:
    r = api.client.request("GET", "/api/v1/health/live", content=b"x" * 100_000)
    assert r.status_code == 200 and r.headers["connection"] == "close"
    r = api.client.get("/api/v1/health/live")
    assert "connection" not in r.headers
    r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1"]})
    assert r.status_code == 200 and "connection" not in r.headers  # the body was read: keep-alive stays


def test_hypercorn_error_responses_get_the_envelope() -> None:
    assert install_error_bodies() is True
    assert b'"code": "bad_request"' in error_body(400)
