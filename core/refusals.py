"""Addresses bangui refuses to ban (issue 8 item 7): pure functions, no I/O but reading the host's own addresses.

A ban of `0.0.0.0/0` is stored by fail2ban as `0.0.0.0` and its unban then removes every IPv4 ban of the jail;
a ban of loopback or of the address bangui is reached through locks the operator out. So an entry is refused
when it is (or, for IPv4-mapped/compatible IPv6, embeds):

- loopback, unspecified, multicast, the IPv4 broadcast address, a link-local address with a zone (`fe80::1%eth0`);
- written in netmask/hostmask notation (`1.2.3.4/0.0.0.0` silently becomes `0.0.0.0/0`): prefixes are digits only;
- a network wider than `MIN_PREFIX` (/8 for IPv4, /16 for IPv6; blocklist entries obey the same rules);
- a network containing (or an address inside) one of the `protected` addresses/networks: the addresses bangui
  listens on, its trusted proxies and, added by the ban action, the caller's own address.

`refusal_reason` answers why (a short sentence for the 400 `refused_address`), or None when the entry may be banned.
The ban action lets an admin override with `"force": true` (audited); the list here never changes by request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.addresses import DOTTED_V4

MIN_PREFIX = {4: 8, 6: 16}
_PREFIX = re.compile(r"[0-9]{1,3}")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) IPv6: both reach the embedded IPv4 address.
_EMBEDDING = (ipaddress.IPv6Network("::ffff:0:0/96"), ipaddress.IPv6Network("::/96"))
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Screened(list[str]):
    """Canonical, de-duplicated entries that their maker checked one by one with `canonical_ip` and `refusal_reason`
    against `protected`: a blocklist's parser, which counts a refused entry as invalid instead of refusing the whole
    list. The ban action bans them without a second check (0.6 s for a list of 100,000) when `protected` covers
    what it would check; any other list is checked as always."""

    def __init__(self, entries: Iterable[str], protected: frozenset[str]) -> None:
        super().__init__(entries)
        self.protected = protected


def refusal_reason(entry: str, protected: Iterable[str] = ()) -> str | None:
    """Why `entry` (an address or network as a caller wrote it) must not be banned, or None if it may be."""
    text = entry.strip()
    guards = _guards(tuple(protected))
    if DOTTED_V4.fullmatch(text):  # most entries of a blocklist: the same answers as below, ~20x faster
        return _refused_v4(text, guards)
    if ":" in text and "/" not in text and "%" not in text and "." not in text:  # a plain IPv6 address
        try:
            n = int(ipaddress.IPv6Address(text))
        except ValueError:
            return None  # not an address at all: the caller's validation answers invalid_ip
        if n >> 32 not in (0, 0xFFFF):  # embeds no IPv4 address (those take the general path below)
            return _refused_v6(text, n, guards)
    address, sep, prefix = text.partition("/")
    if "%" in address:
        return "a zoned (link-local) address names an interface, not a host"
    if sep and not _PREFIX.fullmatch(prefix):
        return "netmask notation is refused: write the network as a prefix length (e.g. 192.0.2.0/24)"
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None  # not an address at all: the caller's validation answers invalid_ip
    for candidate in forms(network):
        reason = _refused_form(candidate)
        if reason is not None:
            return reason
    shapes = forms(network)
    for raw, guarded, _ in guards:
        if any(c.version == g.version and c.overlaps(g) for c in shapes for g in guarded):
            return _covers(text, raw)
    return None


def _covers(text: str, raw: str) -> str:
    return f"{text} covers {raw}, which bangui must stay reachable from or through"


@lru_cache(maxsize=64)
def _guards(protected: tuple[str, ...]) -> tuple[tuple[str, list[_Network], list[tuple[int, int]]], ...]:
    """Each protected entry (in the caller's order) with its networks (`forms`) and, for the IPv4 fast path,
    the integer ranges of its IPv4 forms; unparsable entries protect nothing."""
    out = []
    for raw in protected:
        guarded = _as_network(raw)
        if guarded is not None:
            shapes = forms(guarded)
            v4 = [(int(g.network_address), int(g.broadcast_address)) for g in shapes if g.version == 4]
            out.append((raw, shapes, v4))
    return tuple(out)


def _refused_v6(text: str, n: int, guards: tuple[tuple[str, list[_Network], list[tuple[int, int]]], ...],
                ) -> str | None:
    """`refusal_reason` of a plain IPv6 address (a /128) that embeds no IPv4 address (so :: and ::1 are not
    here, nor is it loopback or unspecified)."""
    if n >> 120 == 0xFF:
        return "multicast addresses are groups, not hosts"
    for raw, guarded, _ in guards:
        if any(g.version == 6 and int(g.network_address) <= n <= int(g.broadcast_address) for g in guarded):
            return _covers(text, raw)
    return None


def _refused_v4(text: str, guards: tuple[tuple[str, list[_Network], list[tuple[int, int]]], ...]) -> str | None:
    """`refusal_reason` of a plain dotted-quad IPv4 address (a /32: never too wide, never a mask)."""
    n = int.from_bytes(socket.inet_aton(text), "big")
    if n == 0:
        return "the unspecified address (0.0.0.0 or ::) stands for every address"
    if n >> 24 == 127:
        return "loopback addresses are this host itself"
    if n >> 28 == 14:
        return "multicast addresses are groups, not hosts"
    if n == 0xFFFFFFFF:
        return "the broadcast address is every host of the network"
    for raw, _, ranges in guards:
        if any(low <= n <= high for low, high in ranges):
            return _covers(text, raw)
    return None


def forms(network: _Network) -> list[_Network]:
    """The network itself plus, for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) IPv6, the IPv4
    network it embeds (so `::ffff:127.0.0.1` is loopback and `::ffff:0.0.0.0/96` is 0.0.0.0/0)."""
    out: list[_Network] = [network]
    if isinstance(network, ipaddress.IPv6Network):
        for space in _EMBEDDING:
            if not network.overlaps(space):
                continue
            if network.prefixlen <= space.prefixlen:  # covers every embedded IPv4 address
                out.append(ipaddress.IPv4Network("0.0.0.0/0"))
                continue
            v4 = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
            if space is _EMBEDDING[1] and network.prefixlen == 128 and int(v4) <= 1:
                continue  # :: and ::1 are IPv6's own unspecified/loopback, checked as such
            out.append(ipaddress.IPv4Network(f"{v4}/{network.prefixlen - 96}"))
    return out


def too_wide(network: _Network) -> str | None:
    """Why `network` is wider than the MIN_PREFIX limit (the ban's and the unban's: core/unbans.py), or None."""
    if network.prefixlen < MIN_PREFIX[network.version]:
        return (f"/{network.prefixlen} is wider than the /{MIN_PREFIX[network.version]} limit for "
                f"IPv{network.version} networks")
    return None


def _refused_form(network: _Network) -> str | None:
    first = network.network_address
    if (wide := too_wide(network)) is not None:
        return wide
    if first.is_unspecified or (network.num_addresses > 1 and network.overlaps(_UNSPECIFIED[network.version])):
        return "the unspecified address (0.0.0.0 or ::) stands for every address"
    if network.overlaps(_LOOPBACK[network.version]):
        return "loopback addresses are this host itself"
    if network.overlaps(_MULTICAST[network.version]):
        return "multicast addresses are groups, not hosts"
    if network.version == 4 and _BROADCAST in network:
        return "the broadcast address is every host of the network"
    return None


_UNSPECIFIED = {4: ipaddress.ip_network("0.0.0.0/32"), 6: ipaddress.ip_network("::/128")}
_LOOPBACK = {4: ipaddress.ip_network("127.0.0.0/8"), 6: ipaddress.ip_network("::1/128")}
_MULTICAST = {4: ipaddress.ip_network("224.0.0.0/4"), 6: ipaddress.ip_network("ff00::/8")}


def _as_network(raw: str) -> _Network | None:
    try:
        return ipaddress.ip_network(raw.strip().split("%")[0], strict=False)
    except ValueError:
        return None


def protected_addresses(settings: Any) -> set[str]:
    """Addresses a ban must not cover, from settings alone: the address bangui listens on (the host's own
    interface addresses when it listens on 0.0.0.0 or ::), and its trusted proxies. Cheap: a few /proc reads."""
    out: set[str] = set(getattr(settings, "trusted_proxies", ()) or ())
    host = str(getattr(settings, "bind", "")).rpartition(":")[0].strip("[]")
    try:
        bound = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        bound = None
        out.update(_resolve(host))
    if bound is not None and bound.is_unspecified:
        out.update(host_addresses())
    elif bound is not None:
        out.add(str(bound))
    return {a for a in out if a}


def _resolve(host: str) -> set[str]:
    """A bind host name's numeric addresses (e.g. `localhost`); a name that does not resolve protects nothing."""
    if not host:
        return set()
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {str(info[4][0]).split("%")[0] for info in infos}


def host_addresses(proc: Path = Path("/proc/net")) -> set[str]:
    """The host's own unicast addresses (Linux: /proc/net/fib_trie LOCAL entries and /proc/net/if_inet6)."""
    found: set[str] = set()
    try:
        last = None
        for line in (proc / "fib_trie").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("|--", "+--"):
                last = parts[1]
            elif "host LOCAL" in line and last is not None:
                found.add(last)
    except OSError:
        pass
    try:
        for line in (proc / "if_inet6").read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(str(ipaddress.IPv6Address(int(raw, 16))))
    except (OSError, ValueError):
        pass
    return {a for a in found if not ipaddress.ip_address(a).is_loopback}
