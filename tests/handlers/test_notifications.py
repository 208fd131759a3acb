"""Notification targets in-process: admin-only API, validation, URLs never shown in full, delivery by the leader to
a real receiver on loopback (formats, test message, jail filter, burst batching), SSRF refusal, retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from store import Store
from tests.fixtures.app import Api, make_settings, seed_users
from tests.fixtures.webhook import DeadTarget, Receiver

SECRET_URL = "https://hooks.example.com/services/T000/B000/very-secret-token?key=another-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def private_api(tmp_path: Path, fail2ban: Any) -> Iterator[Api]:
    """The app allowed to notify loopback receivers (BANGUI_NOTIFY_ALLOW_PRIVATE=1)."""
    settings = make_settings(tmp_path / "data", str(fail2ban.socket), notify_allow_private=True,
                             leader_candidate=True, fail2ban_config_dir=str(fail2ban.conf_dir))
    store = Store(settings)
    tokens = seed_users(store)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Api(client, settings, store, tokens)
    store.close()


def target(api: Api, **body: Any) -> Any:
    return api.call("admin", "POST", "/notifications", json=body)


def test_targets_are_admin_only_validated_and_their_urls_never_shown_in_full(api: Api) -> None:
    created = target(api, name="slack", url=SECRET_URL, format="slack", events=["ban", "login.failed"])
    assert created.status_code == 201, created.text
    listed = api.call("admin", "GET", "/notifications").json()["notifications"]
    assert [t["url"] for t in listed] == ["https://hooks.example.com/..."] == [created.json()["url"]]
    assert "secret" not in json.dumps(listed) and "secret" not in created.text
    audit = api.call("admin", "GET", "/audit", params={"action": "notification."}).json()
    assert "secret" not in json.dumps(audit)
    for persona in ("operator", "viewer"):
        assert api.call(persona, "GET", "/notifications").status_code == 403
        assert api.call(persona, "POST", "/notifications", json={"name": "x", "url": SECRET_URL}).status_code == 403
    assert target(api, name="slack", url=SECRET_URL).json()["error"]["code"] == "notification_exists"
    for body, code in [({"name": "x", "url": "ftp://h/"}, "invalid_url"),
                       ({"name": "x", "url": "https://u:p@h/"}, "invalid_url"),
                       ({"name": "x", "url": SECRET_URL, "format": "email"}, "invalid_format"),
                       ({"name": "x", "url": SECRET_URL, "events": ["everything"]}, "invalid_events"),
                       ({"name": "x", "url": SECRET_URL, "events": []}, "invalid_events"),
                       ({"name": "bad name", "url": SECRET_URL}, "invalid_notification_name")]:
        reply = target(api, **body)
        assert reply.status_code == 400 and reply.json()["error"]["code"] == code, (body, reply.text)
    assert api.call("admin", "POST", "/notifications/ghost/test").status_code == 404
    assert api.call("admin", "DELETE", "/notifications/slack").status_code == 204
    assert api.call("admin", "DELETE", "/notifications/slack").status_code == 404


def test_the_leader_delivers_bans_and_a_test_message_to_a_receiver(private_api: Api, receiver: Receiver) -> None:
    api = private_api
    assert target(api, name="hook", url=receiver.url + "/in?token=s3cret", events=["ban", "unban"],
                  jails=["sshd"], min_interval_s=0).status_code == 201
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.31", "192.0.2.32"]}).status_code == 200
    assert api.call("operator", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.33"]}).status_code == 200
    assert api.call("operator", "DELETE", "/jails/sshd/bans/192.0.2.31").status_code in (200, 204)
    receiver.wait(lambda: len(receiver.events()) >= 3)
    got = [(e["event"], e["ip"], e["jail"], e["origin"]) for e in receiver.events()]
    assert got == [("ban", "192.0.2.31", "sshd", "manual"), ("ban", "192.0.2.32", "sshd", "manual"),
                   ("unban", "192.0.2.31", "sshd", "manual")]  # nginx-http-auth is not among its jails
    first = receiver.messages[0]
    assert first["path"] == "/in?token=s3cret"
    assert first["headers"]["Idempotency-Key"] == json.loads(first["body"])["id"]
    assert api.call("admin", "POST", "/notifications/hook/test").status_code == 202
    receiver.wait(lambda: any(e["event"] == "test" for e in receiver.events()))
    info = api.call("admin", "GET", "/notifications").json()["notifications"][0]
    assert info["last_status"] == "ok" and info["delivered"] == 4 and info["pending"] == 0
    assert info["url"] == receiver.url + "/..."


def test_a_burst_of_1000_bans_is_a_few_messages(private_api: Api, receiver: Receiver) -> None:
    api = private_api
    target(api, name="burst", url=receiver.url + "/", events=["ban"], min_interval_s=0)
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    ips = [f"10.{i // 250}.{i % 250}.1" for i in range(1000)]
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ips}).status_code == 200
    receiver.wait(lambda: len(receiver.events()) >= 1000, timeout=60)
    assert sorted(e["ip"] for e in receiver.events()) == sorted(ips)
    assert len(receiver.messages) <= 3


def test_text_formats_summarise(private_api: Api, receiver: Receiver) -> None:
    api = private_api
    for fmt in ("ntfy", "gotify", "slack", "discord"):
        target(api, name=fmt, url=f"{receiver.url}/{fmt}", format=fmt, events=["ban"], min_interval_s=0)
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    api.call("operator", "POST", "/jails/sshd/bans", json={"ips": [f"192.0.2.{i}" for i in range(100, 125)]})
    receiver.wait(lambda: len(receiver.messages) >= 4)
    by_path = {m["path"]: m for m in receiver.messages}
    assert by_path["/ntfy"]["headers"]["Title"].endswith("25 ban")
    assert b"... and 5 more" in by_path["/ntfy"]["body"]
    assert json.loads(by_path["/gotify"]["body"])["title"].endswith("25 ban")
    assert "ban 192.0.2.100 in sshd" in json.loads(by_path["/slack"]["body"])["text"]
    assert len(json.loads(by_path["/discord"]["body"])["content"]) <= 2000


@pytest.mark.with_jobs
def test_a_loopback_receiver_is_refused_by_default_and_retried_with_backoff(api: Api, receiver: Receiver) -> None:
    target(api, name="local", url=receiver.url + "/", events=["ban"], min_interval_s=0)
    api.call("admin", "POST", "/notifications/local/test")
    api.call("admin", "POST", "/jobs/notifications/run")

    def failed() -> bool:
        return api.call("admin", "GET", "/notifications").json()["notifications"][0]["last_status"] == "error"
    receiver.wait(failed)
    info = api.call("admin", "GET", "/notifications").json()["notifications"][0]
    assert "loopback" in info["last_error"] and "BANGUI_NOTIFY_ALLOW_PRIVATE" in info["last_error"]
    assert info["pending"] == 1 and info["next_attempt"] is not None
    assert receiver.messages == []


def test_config_changes_and_failed_logins_are_notified(private_api: Api, receiver: Receiver) -> None:
    api = private_api
    target(api, name="ops", url=receiver.url + "/", events=["config.change", "login.failed"], min_interval_s=0)
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    reply = api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 4})
    assert reply.status_code == 200, reply.text
    assert api.login("admin", "not the password").status_code == 401
    receiver.wait(lambda: len(receiver.events()) >= 2)
    got = {e["event"]: e for e in receiver.events()}
    assert set(got) == {"config.change", "login.failed"}
    assert got["config.change"]["detail"] == "jail.update sshd by token:admin-token"
    assert got["login.failed"]["detail"].startswith("user 'admin' from ")


def test_an_outsiders_username_cannot_ping_link_or_format_in_any_text_format(private_api: Api,
                                                                              receiver: Receiver) -> None:
    api = private_api
    for fmt in ("ntfy", "gotify", "slack", "discord"):
        target(api, name=fmt, url=f"{receiver.url}/{fmt}", format=fmt, events=["login.failed"], min_interval_s=0)
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    hostile = "@everyone <!channel> <@&1> [bank](https://evil.example) *bold* # head"
    assert api.login(hostile, "wrong").status_code == 401
    receiver.wait(lambda: len(receiver.messages) >= 4)
    by_path = {m["path"]: m for m in receiver.messages}
    discord = json.loads(by_path["/discord"]["body"])
    assert discord["allowed_mentions"] == {"parse": []}
    assert "\\@everyone \\<!channel\\> \\<\\@&1\\> \\[bank\\]\\(https\\[\\:\\]//evil.example\\) \\*bold\\* \\# head" \
        in discord["content"]
    slack = json.loads(by_path["/slack"]["body"])
    assert "<" not in slack["text"] and ">" not in slack["text"] and slack["mrkdwn"] is False
    assert "&lt;!channel&gt; &lt;@&amp;1&gt;" in slack["text"]
    assert "Markdown" not in by_path["/ntfy"]["headers"] and "X-Markdown" not in by_path["/ntfy"]["headers"]
    assert by_path["/ntfy"]["headers"]["Content-Type"].startswith("text/plain")
    gotify = json.loads(by_path["/gotify"]["body"])
    assert gotify["extras"]["client::display"]["contentType"] == "text/plain"


def test_targets_that_never_answer_do_not_delay_a_healthy_one(private_api: Api, receiver: Receiver) -> None:
    api, dead = private_api, [DeadTarget() for _ in range(6)]
    try:
        for i, hung in enumerate(dead):  # named to come first: the job used to send to them one after another
            target(api, name=f"dead{i}", url=hung.url + "/", events=["ban"], min_interval_s=0)
        target(api, name="zz-healthy", url=receiver.url + "/", events=["ban"], min_interval_s=0)
        api.call("admin", "POST", "/jobs/notifications/run")
        receiver.wait(lambda: api.store.notifications.cursor() is not None)

        def dead_failed() -> list[str]:
            return [t["name"] for t in api.store.notifications.all() if t["last_status"] == "error"]
        for name in [f"dead{i}" for i in range(6)] + ["zz-healthy"]:
            assert api.call("admin", "POST", f"/notifications/{name}/test").status_code == 202
        # Each dead target holds its sender for TIMEOUT_S (10 s): the healthy one must not wait for any of them,
        # neither in the run that sends to all seven nor in the next run.
        receiver.wait(lambda: len(receiver.messages) == 1, timeout=30)
        assert dead_failed() == []
        assert api.call("admin", "POST", "/notifications/zz-healthy/test").status_code == 202
        receiver.wait(lambda: len(receiver.messages) == 2, timeout=30)
        assert dead_failed() == []

        receiver.wait(lambda: len(dead_failed()) == 6, timeout=60)  # each timed out on its own
        scrape = api.client.get("/metrics", headers=api.as_("admin")).text
        for i in range(6):
            assert f'bangui_notification_failures_total{{target="dead{i}"}} 1.0' in scrape
            assert f'bangui_notification_last_delivery_ok{{target="dead{i}"}} 0.0' in scrape
        assert 'bangui_notification_failures_total{target="zz-healthy"} 0.0' in scrape
        assert 'bangui_notification_last_success_timestamp_seconds{target="zz-healthy"}' in scrape
        assert 'bangui_notification_last_success_timestamp_seconds{target="dead0"}' not in scrape
    finally:
        for hung in dead:
            hung.close()


def test_a_paused_target_sends_nothing_until_resumed(private_api: Api, receiver: Receiver) -> None:
    api = private_api
    for name in ("paused", "control"):
        target(api, name=name, url=f"{receiver.url}/{name}", events=["ban"], min_interval_s=0)
    api.call("admin", "POST", "/jobs/notifications/run")
    receiver.wait(lambda: api.store.notifications.cursor() is not None)
    reply = api.call("admin", "PATCH", "/notifications/paused", json={"enabled": False})
    assert reply.status_code == 200 and reply.json()["enabled"] is False, reply.text
    assert api.call("operator", "PATCH", "/notifications/paused", json={"enabled": True}).status_code == 403
    assert api.call("admin", "PATCH", "/notifications/ghost", json={"enabled": True}).status_code == 404
    for name in ("paused", "control"):
        api.call("admin", "POST", f"/notifications/{name}/test")
    receiver.wait(lambda: [m["path"] for m in receiver.messages] == ["/control"])
    ran = api.store.jobs.get("notifications")["runs"]  # the run that sent to control left paused alone; one more:
    receiver.wait(lambda: api.store.jobs.get("notifications")["runs"] >= ran + 2)
    assert [m["path"] for m in receiver.messages] == ["/control"]
    assert api.call("admin", "GET", "/notifications").json()["notifications"][1]["pending"] == 1
    assert api.call("admin", "PATCH", "/notifications/paused", json={"enabled": True}).status_code == 200
    receiver.wait(lambda: [m["path"] for m in receiver.messages] == ["/control", "/paused"])
    audit = api.call("admin", "GET", "/audit", params={"action": "notification.update"}).json()
    assert sorted(e["details"]["enabled"] for e in audit["items"] if e["outcome"] == "ok") == [False, True]
