"""geo.CountryLookup: a user .mmdb (written here, byte by byte, in the MaxMind DB format) and the bundled data."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

import pytest

from geo import CountryLookup, GeoError

# ---- a minimal MaxMind DB writer (format spec: maxmind.github.io/MaxMind-DB), enough for country records ----


def _control(kind: int, size: int) -> bytes:
    assert size < 29
    if kind <= 7:
        return bytes([(kind << 5) | size])
    return bytes([size, kind - 7])  # extended type: type bits 0, then type - 7


def _encode(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(_encode(k) + _encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(_encode(v) for v in value)
    if isinstance(value, tuple):  # (type, int): 5 uint16, 6 uint32, 9 uint64
        kind, number = value
        raw = number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big") if number else b""
        return _control(kind, len(raw)) + raw
    raise TypeError(value)


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]]) -> None:
    """An IPv6 tree (IPv4 networks under ::/96) with 24-bit records, one data record per network."""
    data = b""
    nodes: list[list[Any]] = [[None, None]]
    for cidr, record in networks.items():
        net = ipaddress.ip_network(cidr)
        bits = int(net.network_address)  # an IPv4 network a.b.c.d/n is ::a.b.c.d/(96+n) in the tree
        length = net.prefixlen + (96 if net.version == 4 else 0)
        offset, data = len(data), data + _encode(record)
        node = 0
        for depth in range(length):
            bit = (bits >> (127 - depth)) & 1
            if depth == length - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if not isinstance(nodes[node][bit], int):
                    nodes.append([None, None])
                    nodes[node][bit] = len(nodes) - 1
                node = nodes[node][bit]
    count = len(nodes)

    def value(entry: Any) -> int:
        if entry is None:
            return count
        if isinstance(entry, int):
            return entry
        return count + 16 + entry[1]

    tree = b"".join(struct.pack(">I", value(a))[1:] + struct.pack(">I", value(b))[1:] for a, b in nodes)
    meta = {"node_count": (6, count), "record_size": (5, 24), "ip_version": (5, 6),
            "database_type": "Test-Country", "languages": ["en"], "binary_format_major_version": (5, 2),
            "binary_format_minor_version": (5, 0), "build_epoch": (9, 1_700_000_000),
            "description": {"en": "bangui test"}}
    path.write_bytes(tree + b"\x00" * 16 + data + b"\xab\xcd\xefMaxMind.com" + _encode(meta))


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    path = tmp_path / "country.mmdb"
    write_mmdb(path, {
        "81.2.69.0/24": {"country": {"iso_code": "GB"}},
        "203.0.113.0/24": {"country": {"iso_code": "ZZ"}, "registered_country": {"iso_code": "AU"}},
        "1.2.3.0/24": {"country": "NZ"},  # the flat shape some free databases use
        "5.5.5.0/24": {"country": {"iso_code": "ZZ"}},  # DB-IP's "unknown"
        "2a00:1450::/32": {"country": {"iso_code": "IE"}},
    })
    return path


def test_a_user_mmdb_answers_iso_codes_for_v4_and_v6(mmdb: Path) -> None:
    geo = CountryLookup(str(mmdb))
    assert geo.source == f"mmdb:{mmdb}"
    assert geo.country("81.2.69.142") == "GB"
    assert geo.country("2a00:1450:4001:80b::200e") == "IE"
    assert geo.country("1.2.3.4") == "NZ"


def test_mmdb_falls_back_to_the_registered_country_and_treats_zz_as_unknown(mmdb: Path) -> None:
    geo = CountryLookup(str(mmdb))
    assert geo.country("203.0.113.9") == "AU"
    assert geo.country("5.5.5.5") is None


def test_unknown_private_and_non_addresses_have_no_country(mmdb: Path) -> None:
    geo = CountryLookup(str(mmdb))
    for ip in ("9.9.9.9", "10.0.0.1", "192.168.1.1", "::1", "not-an-ip", ""):
        assert geo.country(ip) is None


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(mmdb: Path) -> None:
    assert CountryLookup(str(mmdb)).country("::ffff:81.2.69.142") == "GB"


def test_answers_are_cached(mmdb: Path) -> None:
    geo = CountryLookup(str(mmdb))
    calls = []
    inner = geo._lookup
    assert inner is not None
    geo._lookup = lambda ip: calls.append(ip) or inner(ip)
    geo.cache_clear()
    assert geo.country("81.2.69.1") == geo.country("81.2.69.1") == "GB"
    assert calls == ["81.2.69.1"]


def test_a_configured_but_unreadable_database_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="BANGUI_GEOIP_DB"):
        CountryLookup(str(tmp_path / "missing.mmdb"))
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"not a database" * 10)
    with pytest.raises(GeoError, match="garbage.mmdb"):
        CountryLookup(str(garbage))


def test_the_bundled_data_knows_well_known_addresses() -> None:
    pytest.importorskip("iptocc")
    geo = CountryLookup()
    assert geo.source == "iptocc"
    assert geo.country("8.8.8.8") == "US"
    assert geo.country("2001:4860:4860::8888") == "US"
    assert geo.country("::ffff:8.8.8.8") == "US"
    assert geo.country("192.168.1.1") is None
    assert geo.country("bogus") is None


def test_without_any_data_every_answer_is_none_and_a_warning_says_why(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import geo as geo_module

    monkeypatch.setattr(geo_module, "_bundled_lookup", lambda: None)
    with caplog.at_level("WARNING", logger="bangui.geo"):
        geo = CountryLookup()
    assert geo.source == "none"
    assert geo.country("8.8.8.8") is None
    assert "BANGUI_GEOIP_DB" in caplog.text
