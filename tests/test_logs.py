"""Logs: BANGUI_LOG_FORMAT=json gives one JSON object per line carrying the request id and the actor; every
response carries X-Request-Id, taken from the client only behind a trusted proxy."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx2 as httpx
import pytest

import logs
from handlers.middleware import Edge
from settings import ConfigError, Settings

pytestmark = pytest.mark.anyio


def test_log_format_is_a_setting_with_text_as_default() -> None:
    assert Settings.load(env={}).log_format == "text"
    assert Settings.load(env={"BANGUI_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="BANGUI_LOG_FORMAT.*text, json"):
        Settings.load(env={"BANGUI_LOG_FORMAT": "xml"})


def test_json_formatter_writes_one_object_with_the_context() -> None:
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("bangui.test", logging.WARNING, __file__, 1, "hello %s\nworld", ("you",), None)
    outside = json.loads(formatter.format(record))
    assert outside["request_id"] is None and outside["actor"] is None
    id_token, actor_token = logs.request_id.set("rid-1"), logs.actor.set("ana")
    try:
        line = formatter.format(record)
    finally:
        logs.request_id.reset(id_token)
        logs.actor.reset(actor_token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello you\nworld" and entry["level"] == "warning" and entry["logger"] == "bangui.test"
    assert (entry["request_id"], entry["actor"]) == ("rid-1", "ana")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(formatter.format(record))["exception"]


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(logs.request_id.get()).encode()})


@pytest.mark.parametrize(("trusted", "sent", "kept"), [
    ((), "from-client", False),  # no trusted proxies: never taken from the client
    (("127.0.0.0/8",), "from-proxy.1", True),
    (("10.0.0.0/8",), "from-client", False),  # the peer is not a trusted proxy
    (("127.0.0.0/8",), "bad id with spaces", False),
    (("127.0.0.0/8",), "x" * 129, False),
])
async def test_request_id_is_taken_only_from_a_trusted_proxy(trusted: tuple[str, ...], sent: str, kept: bool) -> None:
    app = Edge(echo_app, trusted_proxies=trusted)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.get("/", headers={"X-Request-Id": sent})
    rid = reply.headers["x-request-id"]
    assert reply.text == rid  # the id the app saw while serving is the one echoed
    assert (rid == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{16}", rid)


def test_json_logs_of_a_real_server_carry_request_id_and_actor(bangui_server: Any) -> None:
    server = bangui_server(workers=2, env={"BANGUI_LOG_FORMAT": "json", "BANGUI_LOG_LEVEL": "debug",
                                           "BANGUI_TRUSTED_PROXIES": "127.0.0.1",
                                           "BANGUI_ADMIN_PASSWORD": "a long json password"})
    login = httpx.post(server.url + "/api/v1/auth/login", json={"username": "admin", "password": "a long json password"},
                       headers={"X-Request-Id": "rid-login-1"}, timeout=10)
    assert login.status_code == 200 and login.headers["x-request-id"] == "rid-login-1"
    health = httpx.get(server.url + "/api/v1/health", cookies=login.cookies, headers={"X-Request-Id": "rid-health-2"},
                       timeout=10)
    assert health.status_code == 200 and health.headers["x-request-id"] == "rid-health-2"
    bad = httpx.post(server.url + "/api/v1/auth/login", json={"username": "admin", "password": "wrong"}, timeout=10)
    assert bad.status_code == 401 and re.fullmatch(r"[0-9a-f]{16}", bad.headers["x-request-id"])
    server.stop()
    lines = [line for line in server.output().splitlines() if line.strip() and not line.startswith("bangui: ")]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object (hypercorn's too)
    assert {"time", "level", "logger", "message", "pid", "request_id", "actor"} <= set(entries[0])
    by_rid = {e["request_id"]: e for e in entries if e["logger"] == "bangui.access"}
    assert by_rid["rid-health-2"]["actor"] == "admin"
    assert by_rid["rid-health-2"]["message"].startswith("GET /api/v1/health 200")
    login_line = next(e for e in entries if e["message"].startswith("login: user=admin"))
    assert login_line["request_id"] == "rid-login-1"
    failed = next(e for e in entries if "bangui login failed" in e["message"])
    assert failed["request_id"] == bad.headers["x-request-id"] and failed["level"] == "warning"
    assert any(e["logger"].startswith("hypercorn") for e in entries)
