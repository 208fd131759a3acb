"""What a host reports it did with a fleet log entry (issue 21 "Also": honest counts; pure logic)."""

from __future__ import annotations

from fleet.log import host_status
from jobs.fleet.agent import _what_happened


def test_a_batch_of_shared_bans_counts_refused_and_already_banned_apart_from_banned_anew() -> None:
    # 5 addresses: 2 refused here (protected), 1 banned before, 2 banned anew: never "5 applied"
    assert _what_happened(5, 2, None, 2) == " (2 banned anew, 1 already banned, 2 refused)"


def test_an_unban_says_how_many_bans_it_lifted() -> None:
    assert _what_happened(3, None, 0, 0) == " (0 ban(s) lifted)"
    assert host_status("not_banned", None, None, 0) == '{"status": "not_banned", "error": null, "unbanned": 0}'


def test_a_failure_adds_no_counts() -> None:
    assert _what_happened(3, None, None, 0) == ""
