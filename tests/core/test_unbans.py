"""core/unbans.py: which unbans are refused and which ban entries an unban lifts (pure logic)."""

from __future__ import annotations

import pytest

from core.unbans import lifted_by, unban_refusal


@pytest.mark.parametrize("entry", ["0.0.0.0/0", "::/0", "10.0.0.0/7", "::ffff:0:0/96", "::/96", "2001::/15"])
def test_networks_wider_than_the_ban_limits_are_refused(entry: str) -> None:
    reason = unban_refusal(entry)
    assert reason is not None and "limit" in reason


@pytest.mark.parametrize("entry", ["0.0.0.0", "192.0.2.1", "10.0.0.0/8", "2001:db8::/16", "::ffff:10.0.0.0/104"])
def test_addresses_and_networks_within_the_limits_may_be_unbanned(entry: str) -> None:
    assert unban_refusal(entry) is None


def test_a_network_lifts_only_the_entries_wholly_inside_it() -> None:
    banned = ["10.1.0.5", "10.1.2.0/24", "10.0.0.0/8", "10.2.0.1", "2001:db8::1", "not-an-ip", "10.1.255.255"]
    assert lifted_by(["10.1.0.0/16"], banned) == {"10.1.0.0/16": ["10.1.0.5", "10.1.2.0/24", "10.1.255.255"]}


def test_an_entry_banned_as_such_lifts_itself_alone_and_an_address_never_matches_a_network() -> None:
    banned = ["10.1.0.0/16", "10.1.0.5"]
    assert lifted_by(["10.1.0.0/16", "10.1.0.7"], banned) == {"10.1.0.0/16": ["10.1.0.0/16"], "10.1.0.7": []}


def test_each_entry_is_lifted_once_across_requests() -> None:
    assert lifted_by(["10.1.0.0/16", "10.1.0.5", "10.0.0.0/8"], ["10.1.0.5", "10.3.0.1"]) == {
        "10.1.0.0/16": ["10.1.0.5"], "10.1.0.5": [], "10.0.0.0/8": ["10.3.0.1"]}


def test_an_ipv4_mapped_network_lifts_the_ipv4_bans_it_embeds() -> None:
    assert lifted_by(["::ffff:10.1.0.0/112"], ["10.1.3.4", "10.2.0.1"]) == {"::ffff:10.1.0.0/112": ["10.1.3.4"]}
