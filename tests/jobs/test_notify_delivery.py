"""One notification POST against real loopback receivers: the deadline bounds the whole exchange (a receiver
that drips its answer a byte at a time, or a name server that never answers, is cut off at TIMEOUT_S, never held
by a per-read timeout); and the payloads, in which outsider text stays inert."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import unicodedata

import pytest

from jobs import notify_delivery
from jobs.blocklists import BlocklistError, fetch
from jobs.notify_delivery import DeliveryError, post
from settings import Settings
from tests.fixtures.webhook import DrippingTarget, Receiver


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000,  # the status line and headers never end
    b"HTTP/1.1 2",  # nor does the status line itself
], ids=["headers", "status"])
def test_a_receiver_dripping_its_answer_is_cut_off_at_the_overall_deadline(monkeypatch: pytest.MonkeyPatch,
                                                                            reply: bytes) -> None:
    monkeypatch.setattr(notify_delivery, "TIMEOUT_S", 1.0)
    slow = DrippingTarget(reply, gap=0.2)  # a byte every 0.2 s: each read is well within a 1 s socket timeout
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="no answer within 1 s"):
            post(slow.url + "/", b"{}", {}, "id", allow_private=True)
        assert time.monotonic() - started < 5.0  # 1 s + slack for a loaded machine; the drip lasts 2,000 s
    finally:
        slow.close()


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",  # http.client hands the socket to the response early
    b"HTTP/1.0 200 OK\r\n\r\n",
], ids=["keep-alive", "connection-close", "http-1.0"])
def test_a_2xx_whose_body_drips_counts_as_delivered_within_the_deadline(monkeypatch: pytest.MonkeyPatch,
                                                                       head: bytes) -> None:
    monkeypatch.setattr(notify_delivery, "TIMEOUT_S", 1.0)
    slow = DrippingTarget(head + b"x" * 1000, gap=0.05)  # the body would take 50 s
    try:
        started = time.monotonic()
        assert post(slow.url + "/", b"{}", {}, "id", allow_private=True) == 200  # accepted: the body says nothing
        assert time.monotonic() - started < 5.0
    finally:
        slow.close()


def test_a_healthy_receiver_still_answers_at_once() -> None:
    receiver = Receiver()
    try:
        assert post(receiver.url + "/", b"{}", {"Content-Type": "application/json"}, "id", allow_private=True) == 200
        assert len(receiver.messages) == 1
    finally:
        receiver.close()


# ---- outsider-controlled text: nothing may ping, link or format, in any text format, in any event kind ----------
HOSTILE = ("x\n1. @here @everyone <@123> <@&9> <#5> <!channel> <!subteam^X> <https://evil|click> [x](http://evil) "
           "![i](http://e/i.png) a\u200bb \u202eRTL\u2028 *b* _i_ ~s~ `c` ||sp|| > q # h -# sub https://evil.example/p"
           "\r\n> quoted " + "y" * 5000)


def hostile_events() -> list[dict[str, object]]:
    """Every event kind the job builds (jobs/notify.py collect/route), HOSTILE in each of its text fields."""
    h = HOSTILE
    return [{"id": "h1", "event": "ban", "at": 0, "jail": h, "ip": "192.0.2.1", "origin": h, "actor": h,
             "source_host": h},
            {"id": "h2", "event": "unban", "at": 0, "jail": h, "ip": "192.0.2.1", "origin": h, "actor": h},
            {"id": "a1", "event": "login.failed", "at": 0, "ip": "192.0.2.1", "detail": f"user {h!r} from x"},
            {"id": "a2", "event": "config.change", "at": 0, "actor": h, "detail": f"config.write {h} by {h}"},
            {"id": "e1", "event": "leader.change", "at": 0, "detail": f"pid 1 on {h} leads (epoch 2)"},
            {"id": "f1", "event": "fail2ban.down", "at": 0, "detail": h},
            {"id": "b1", "event": "blocklist.failed", "at": 0, "detail": f"{h}: {h}"},
            {"id": "t1", "event": "test", "at": 0, "detail": f"a test message asked for by {h}"}]


def _event_lines(fmt: str) -> list[str]:
    body, _ = notify_delivery.payload(fmt, "id", hostile_events())
    if fmt == "ntfy":
        assert len(body) <= notify_delivery.NTFY_MAX_BYTES  # a longer body becomes an attachment in ntfy
        message = body.decode()
    else:
        data = json.loads(body)
        message = {"gotify": data.get("message"), "slack": data.get("text"), "discord": data.get("content")}[fmt]
    lines = message.split("\n")
    return lines[1:] if fmt in ("slack", "discord") else lines  # the first line is the title there


@pytest.mark.parametrize("fmt", ["ntfy", "gotify", "slack", "discord"])
def test_outsider_text_in_every_event_kind_stays_one_inert_line(fmt: str) -> None:
    lines = _event_lines(fmt)
    kinds = [str(e["event"]) for e in hostile_events()]
    counted = re.fullmatch(r"\.\.\. and (\d+) more", lines[-1])
    shown = lines[:-1] if counted else lines
    assert len(shown) + (int(counted[1]) if counted else 0) == len(kinds)  # every event a line of its own, or counted
    assert len(shown) >= 2  # the size cap keeps whole lines, as many as fit
    for kind, line in zip(kinds, shown, strict=False):
        assert line.replace("\\", "").startswith(kind)  # no forged line: the text of one event never starts another
        assert "://" not in line  # no URL a client would link
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in line)  # no hidden reshaping
        assert len(line) <= 2 * notify_delivery.MAX_LINE  # bounded (Discord's escapes may double it)


def test_slack_sees_no_control_sequence() -> None:
    for line in _event_lines("slack"):
        assert "<" not in line and ">" not in line  # <!channel>, <@123>, <!subteam^X>, <url|text> all inert
    body, _ = notify_delivery.payload("slack", "id", hostile_events())
    data = json.loads(body)
    assert data["mrkdwn"] is False and data["unfurl_links"] is False and "link_names" not in data


def test_discord_sees_no_markdown_and_pings_no_one() -> None:
    body, _ = notify_delivery.payload("discord", "id", hostile_events())
    data = json.loads(body)
    assert data["allowed_mentions"] == {"parse": []} and len(data["content"]) <= 2000
    for line in data["content"].split("\n")[1:]:
        unescaped = re.sub(r"\\.", "", line)  # what is left once every escaped character is taken out
        assert not set(unescaped) & set("*_~`|>#[]()<:@-\\"), line


def test_a_name_server_that_never_answers_is_cut_off_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver's own timeouts (5 s a try, per server, per attempt) lie outside every socket timeout. No real
    # dead name server can be configured without touching the host: the lookup is held by a stand-in that blocks.
    release = threading.Event()

    def hung(*args: object, **kwargs: object) -> list[object]:
        release.wait(60)
        raise OSError("released")

    monkeypatch.setattr(notify_delivery, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(socket, "getaddrinfo", hung)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="cannot resolve hooks.example: the name server did not answer"):
            post("https://hooks.example/x", b"{}", {}, "id", allow_private=False)
        assert time.monotonic() - started < 5.0
        with pytest.raises(BlocklistError, match="cannot resolve lists.example: the name server did not answer"):
            fetch("https://lists.example/x", Settings.for_tests(blocklist_timeout_seconds=1.0))
        assert time.monotonic() - started < 10.0
    finally:
        release.set()
