"""One notification POST against real loopback receivers: the deadline bounds the whole exchange (a receiver
that drips its answer a byte at a time is cut off at TIMEOUT_S, never held by a per-read timeout)."""

from __future__ import annotations

import time

import pytest

from jobs import notify_delivery
from jobs.notify_delivery import DeliveryError, post
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


def test_a_2xx_whose_body_drips_counts_as_delivered_within_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_delivery, "TIMEOUT_S", 1.0)
    slow = DrippingTarget(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100, gap=0.01)
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
