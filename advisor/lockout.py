"""Checks 3 and 4: ignore lists that lock the operator out, and ignore lists that switch protection off.

3. The requesting operator's address, bangui's listening address, the host's own addresses (covered by
   fail2ban's `ignoreself`, default true) and bangui's trusted proxies should be in each enabled jail's
   `ignoreip` (its own or `[DEFAULT]`'s): else a few mistyped passwords ban the operator.
4. `0.0.0.0/0`, `::/0` or any network wider than /8 (IPv4) or /16 (IPv6) in `ignoreip` exempts a good part
   of the Internet: critical.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from advisor.context import Context
from advisor.finding import Finding, jail_fix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
WIDEST = {4: 8, 6: 16}


def entries(jail: dict[str, Any]) -> list[str]:
    return [e for e in re.split(r"[\s,]+", str(jail["settings"].get("ignoreip") or "")) if e]


def _networks(items: list[str]) -> list[Network]:
    out = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue  # a host name: fail2ban resolves it, bangui does not guess
    return out


def _covered(network: Network, ignored: list[Network]) -> bool:
    return any(network.version == n.version and network.subnet_of(n) for n in ignored)  # type: ignore[arg-type]


def _ignoreself(jail: dict[str, Any]) -> bool:
    return str(jail["settings"].get("ignoreself", "true")).lower() in ("true", "1", "yes", "on")


def wanted(ctx: Context, requester: str | None) -> dict[str, str]:
    """address or network -> why it must be ignored."""
    out: dict[str, str] = {}
    for address in ctx.bangui_addresses:
        out[address] = "bangui listens on it"
    for address in sorted(ctx.facts.addresses or ()):
        out[address] = "an address of this host"
    for network in ctx.trusted_proxies:
        out[network] = "a trusted proxy of bangui"
    if requester:
        out[requester] = "your address (this request came from it)"
    return out


def lockout(ctx: Context, requester: str | None) -> list[Finding]:
    want = {}
    for item, why in wanted(ctx, requester).items():
        try:
            want[str(ipaddress.ip_network(item, strict=False))] = (ipaddress.ip_network(item, strict=False), why)
        except ValueError:
            continue
    findings = []
    for jail in ctx.enabled():
        ignored = _networks(entries(jail))
        own = ctx.facts.addresses or set()
        missing = {text: why for text, (net, why) in want.items() if not _covered(net, ignored)
                   and not (_ignoreself(jail) and (net.is_loopback or str(net.network_address) in own)
                            and net.num_addresses == 1)}
        if not missing:
            continue
        name = jail["name"]
        plain = [text.removesuffix("/32").removesuffix("/128") for text in missing]
        listed = "; ".join(f"{p} ({why})" for p, why in zip(plain, missing.values(), strict=True))
        fix = jail_fix(name, {"ignoreip": " ".join(entries(jail) + plain)}, f"add {', '.join(plain)} to ignoreip")
        severity = "warning"
        findings.append(Finding(f"lockout-risk:{name}", severity, f"{name} could ban you or bangui itself",
                                f"not in {name}'s ignoreip: {listed}", name, fix,
                                {"missing": plain, "ignoreip": entries(jail), "ignoreself": _ignoreself(jail)}))
    return findings


def too_wide(ctx: Context) -> list[Finding]:
    findings = []
    for jail in ctx.enabled():
        items = entries(jail)
        wide = [e for e in items if any(n.prefixlen < WIDEST[n.version] for n in _networks([e]))]
        if not wide:
            continue
        name = jail["name"]
        keep = [e for e in items if e not in wide]
        findings.append(Finding(
            f"ignoreip-too-wide:{name}", "critical", f"{name} ignores {', '.join(wide)}: it protects almost nothing",
            f"ignoreip of {name} holds {', '.join(wide)} (wider than /8 for IPv4 or /16 for IPv6): fail2ban never "
            "bans an address inside it", name,
            jail_fix(name, {"ignoreip": " ".join(keep)}, f"remove {', '.join(wide)} from ignoreip"),
            {"ignoreip": items, "too_wide": wide}))
    return findings
