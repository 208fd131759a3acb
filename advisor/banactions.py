"""Check 5: bans that do nothing. A jail's ban actions need a firewall tool the host lacks (iptables, ipset,
nft, firewalld not running, ...), or they act on ports the service does not listen on (`port = ssh` while
sshd listens on 2222). Fixed where the answer is unambiguous: nftables actions when only nft exists; the
ports sshd is configured for and listens on."""

from __future__ import annotations

import re
import socket
from typing import Any

from advisor.context import Context
from advisor.finding import Finding, jail_fix

# action name prefix -> programs it runs (the first match wins: ipset before iptables)
TOOLS = (("iptables-ipset", ("ipset", "iptables")), ("iptables", ("iptables",)), ("nftables", ("nft",)),
         ("firewallcmd", ("firewall-cmd",)), ("ufw", ("ufw",)), ("shorewall", ("shorewall",)),
         ("route", ("ip",)), ("ipfw", ("ipfw",)), ("pf", ("pfctl",)), ("apf", ("apf",)), ("csf", ("csf",)))
NFT_FOR = {"iptables": "nftables", "iptables-multiport": "nftables-multiport", "iptables-allports": "nftables-allports",
           "iptables-ipset-proto6": "nftables-multiport", "iptables-ipset-proto6-allports": "nftables-allports",
           "iptables-ipset": "nftables-multiport", "iptables-ipset-proto4": "nftables-multiport",
           "iptables-multiport-log": "nftables-multiport"}


def action_names(jail: dict[str, Any]) -> list[str]:
    names = [m.group(1) for line in str(jail["settings"].get("action") or "").splitlines()
             if (m := re.match(r"\s*([\w.-]+)", line))]
    return list(dict.fromkeys(names))


def needs(name: str) -> tuple[str, ...]:
    return next((tools for prefix, tools in TOOLS if name == prefix or name.startswith(prefix + "-")), ())


def _tools(ctx: Context, jail: dict[str, Any]) -> Finding | None:
    missing: dict[str, list[str]] = {}
    for name in action_names(jail):
        for tool in needs(name):
            if ctx.host.binary(tool) is False:
                missing.setdefault(name, []).append(tool)
        procs = ctx.facts.processes
        if name.startswith("firewallcmd") and procs is not None and "firewalld" not in procs:
            missing.setdefault(name, []).append("firewalld (not running)")
    if not missing:
        return None
    jail_name = jail["name"]
    # the stock jails' action is %(banaction)s[...]: its name is the banaction (fail2ban's readers do not
    # report banaction itself); one iptables action with an nftables twin is unambiguous
    banaction = next(iter(missing)) if len(missing) == 1 else ""
    fix = None
    replacement = NFT_FOR.get(banaction)
    if replacement and ctx.host.binary("nft") and not ctx.host.binary("iptables"):
        fix = jail_fix(jail_name, {"banaction": replacement, "banaction_allports": "nftables-allports"},
                       f"ban with {replacement} (nft is installed, iptables is not)")
    listed = "; ".join(f"{name} needs {', '.join(tools)}" for name, tools in missing.items())
    return Finding(f"banaction-tool-missing:{jail_name}", "critical", f"{jail_name}'s bans do nothing",
                   f"missing on this host: {listed}. fail2ban records the bans, but no packet is blocked.",
                   jail_name, fix, {"actions": action_names(jail), "missing": missing})


def ports(value: str) -> set[int] | None:
    """The port numbers a jail's `port` names; None when one of them is unknown (no guessing)."""
    out: set[int] = set()
    for part in re.split(r"[\s,]+", value.strip()):
        if not part:
            continue
        if ":" in part and all(p.isdigit() for p in part.split(":", 1)):
            low, high = (int(p) for p in part.split(":", 1))
            out |= set(range(low, high + 1)) if high - low < 70000 else set()
        elif part.isdigit():
            out.add(int(part))
        else:
            try:
                out.add(socket.getservbyname(part, "tcp"))
            except OSError:
                return None
    return out


def _sshd_port(ctx: Context, jail: dict[str, Any]) -> Finding | None:
    configured, listening = ctx.facts.sshd_ports, ctx.facts.listening
    if jail["filter"] != "sshd" or configured is None or listening is None:
        return None
    # fail2ban's readers pass `port` into the action's options (port="ssh"), not as a jail option
    declared = re.findall(r'\bport="([^"]*)"', str(jail["settings"].get("action") or ""))
    port_value = str(jail["settings"].get("port") or (declared[0] if declared else ""))
    acts_on = ports(port_value)
    live = [p for p in configured if p in listening]
    if acts_on is None or not acts_on or not live or any(p in acts_on for p in live):
        return None
    name = jail["name"]
    value = ",".join(str(p) for p in live)
    return Finding(f"jail-port-mismatch:{name}", "warning", f"{name} blocks ports sshd does not listen on",
                   f"port = {port_value} ({', '.join(map(str, sorted(acts_on)))}), but sshd "
                   f"listens on {value} (sshd_config and /proc/net/tcp): a banned address can still try passwords",
                   name, jail_fix(name, {"port": value}, f"block port {value}"),
                   {"port": port_value, "sshd_ports": live})


def check(ctx: Context) -> list[Finding]:
    out = []
    for jail in ctx.enabled():
        out += [f for f in (_tools(ctx, jail), _sshd_port(ctx, jail)) if f is not None]
    return out
