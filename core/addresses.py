"""Jail names and IP addresses/networks as callers give them: checked and put in canonical form.

Patterns are applied with `fullmatch` (a `$` would accept a trailing newline, which would reach
fail2ban and split log lines)."""

from __future__ import annotations

import ipaddress
import re

from errors import InvalidInput

JAIL_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A plain IPv4 address exactly as `ipaddress` writes it (no leading zeros): already canonical, a fast path.
DOTTED_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def jail_name(name: str) -> str:
    if not JAIL_RE.fullmatch(name):
        raise InvalidInput("jail names have 1-64 letters, digits or -_.@", code="invalid_jail_name",
                           details={"jail": name[:100]})
    return name


def canonical_ip(entry: str) -> str | None:
    """The canonical form of an address or CIDR network ("198.51.100.7/24" -> "198.51.100.0/24",
    "2001:DB8::1/128" -> "2001:db8::1"), or None when it is neither."""
    text = entry.strip()
    if DOTTED_V4.fullmatch(text):
        return text
    if not text or len(text) > 64:
        return None
    try:
        if "/" not in text:
            return str(ipaddress.ip_address(text))
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def ip_list(entries: list[str]) -> list[str]:
    """Every entry normalised and de-duplicated (order kept); 400 `invalid_ip` naming all bad ones."""
    normalised, bad = [], []
    for entry in entries:
        value = canonical_ip(entry)
        if value is None:
            bad.append(entry[:100])
        else:
            normalised.append(value)
    if bad:
        raise InvalidInput(f"not an IP address or network: {', '.join(bad[:10])}", code="invalid_ip",
                           details={"invalid": bad})
    return list(dict.fromkeys(normalised))


def one_ip(entry: str) -> str:
    return ip_list([entry])[0]
