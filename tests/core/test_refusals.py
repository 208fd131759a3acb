"""Issue 8 item 7: addresses bangui must never ban (pure logic; the ban action applies it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.refusals import host_addresses, protected_addresses, refusal_reason
from tests.reliability.helpers import ISSUE_EXAMPLES


@pytest.mark.parametrize("entry", ISSUE_EXAMPLES)
def test_refused_address_issue_examples(entry: str) -> None:
    assert refusal_reason(entry, ()) is not None


@pytest.mark.parametrize("entry", [
    "0.0.0.0", "::", "0.0.0.0/8", "127.255.255.254", "127.0.0.0/16", "ff02::1", "ff00::/8", "239.1.2.3",
    "224.0.0.0/4", "10.0.0.0/7", "2001::/15", "1.2.3.4/255.255.255.0", "1.2.3.4/0.0.0.255", "::ffff:127.0.0.1",
    "::ffff:0.0.0.0/96", "::ffff:0:0/96", "::ffff:224.0.0.1", "::ffff:255.255.255.255", "::127.0.0.1",
    "::ffff:0.0.0.0/97", "fe80::1%1", "1.2.3.4/ 24", "1.2.3.4/024x", "::/64",
])
def test_refused_address_siblings(entry: str) -> None:
    assert refusal_reason(entry, ()) is not None


@pytest.mark.parametrize("entry", [
    "192.0.2.7", "198.51.100.0/24", "10.0.0.0/8", "2001:db8::1", "2001:db8::/16", "fe80::1", "::ffff:192.0.2.7",
    "100.64.0.1", "1.2.3.4/32", "203.0.113.0/31",
])
def test_ordinary_addresses_are_not_refused(entry: str) -> None:
    assert refusal_reason(entry, ()) is None


def test_refused_address_reason_names_the_rule() -> None:
    assert "loopback" in (refusal_reason("127.0.0.1") or "")
    assert "netmask" in (refusal_reason("1.2.3.4/0.0.0.0") or "")
    assert "/8" in (refusal_reason("128.0.0.0/1") or "")
    assert "multicast" in (refusal_reason("224.0.0.1") or "")
    assert "broadcast" in (refusal_reason("255.255.255.255") or "")
    assert "zone" in (refusal_reason("fe80::1%eth0") or "")


def test_not_an_address_is_left_to_validation() -> None:
    assert refusal_reason("not-an-ip", ()) is None


@pytest.mark.parametrize(("entry", "protected"), [
    ("192.0.2.7", {"192.0.2.7"}),
    ("192.0.2.0/24", {"192.0.2.7"}),
    ("192.0.0.0/8", {"192.0.2.7"}),
    ("::ffff:192.0.2.7", {"192.0.2.7"}),
    ("192.0.2.7", {"::ffff:192.0.2.7"}),
    ("10.1.2.3", {"10.0.0.0/8"}),
    ("2001:db8::/32", {"2001:db8::5"}),
])
def test_refused_address_covering_a_protected_one(entry: str, protected: set[str]) -> None:
    reason = refusal_reason(entry, protected)
    assert reason is not None and "covers" in reason


def test_protected_addresses_do_not_refuse_others() -> None:
    assert refusal_reason("192.0.2.8", {"192.0.2.7", "2001:db8::5", "garbage"}) is None
    assert refusal_reason("198.51.100.0/24", {"192.0.2.0/24"}) is None


@dataclass
class FakeSettings:
    bind: str
    trusted_proxies: tuple[str, ...] = ()


def test_protected_addresses_from_a_specific_bind() -> None:
    assert protected_addresses(FakeSettings("192.0.2.9:8080", ("10.9.0.0/16",))) == {"192.0.2.9", "10.9.0.0/16"}
    assert protected_addresses(FakeSettings("[2001:db8::9]:8080")) == {"2001:db8::9"}


def test_protected_addresses_of_a_wildcard_bind_are_the_hosts_own(tmp_path: Path) -> None:
    own = protected_addresses(FakeSettings("0.0.0.0:8080"))
    assert own == host_addresses()
    assert all(refusal_reason(a, own) is not None for a in own)


def test_host_addresses_parse_proc(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.0.2.15\n        /32 host LOCAL\n"
        "     |-- 10.0.2.255\n        /32 link BROADCAST\n     |-- 127.0.0.1\n        /32 host LOCAL\n")
    (tmp_path / "if_inet6").write_text("20010db8000000000000000000000009 02 40 00 80 eth0\n"
                                       "00000000000000000000000000000001 01 80 10 80 lo\n")
    assert host_addresses(tmp_path) == {"10.0.2.15", "2001:db8::9"}


def test_protected_addresses_of_a_host_name() -> None:
    assert "127.0.0.1" in protected_addresses(FakeSettings("localhost:8080"))
