"""The fleet outbox (fleet/outbox.py) on a real file: entries published in order, the rest kept on a failure, and a
damaged line (a write cut short when the disk filled up) dropped with a warning instead of raising at every flush
(which ended the fleet agent at each start: nothing buffered was published again)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fleet.outbox import Outbox


def test_a_damaged_outbox_line_is_dropped_and_the_others_are_published_in_order(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path)
    box.append({"kind": "auto", "ips": '["192.0.2.1"]'})
    with box.path.open("a") as fh:
        fh.write('{"kind": "auto", "ips": "[\\"192.0.2\n')  # cut short
    box.append({"kind": "auto", "ips": '["192.0.2.3"]'})
    sent: list[str] = []
    with caplog.at_level(logging.WARNING, "bangui.fleet"):
        assert box.flush(lambda item: sent.append(item["ips"])) == 2
    assert sent == ['["192.0.2.1"]', '["192.0.2.3"]']
    assert "dropped a damaged line" in caplog.text and not box.pending()


def test_a_failed_publish_keeps_that_entry_and_the_later_ones(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(3):
        box.append({"n": str(i)})

    def publish(item: dict[str, str]) -> None:
        if item["n"] == "1":
            raise ConnectionError("Redis away")

    with pytest.raises(ConnectionError):
        box.flush(publish)
    assert box.flush(lambda item: None) == 2  # 1 and 2 were kept, in order
