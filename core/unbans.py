"""What an unban lifts (issue 18 §5): pure functions, no I/O.

fail2ban 1.0.2's `unbanip` with a network that is not itself a ban entry lifts every ban inside it
(`0.0.0.0/0` lifts every IPv4 ban of the jail) and reports only a count, so nothing would record which bans
ended. So every unban path:
- refuses a network wider than the ban limits (`unban_refusal`: core/refusals.py MIN_PREFIX, in any of its
  forms, so `::ffff:0:0/96` is 0.0.0.0/0 here too);
- reads the jail's ban list first and lifts the exact entries `lifted_by` names, so history records one unban
  per ban that ended. An entry that is itself banned lifts that ban only (fail2ban's own rule: a banned
  network is one opaque entry); a network that is not lifts every entry whose whole range lies inside it; a
  plain address lifts only itself (fail2ban never matches an address against banned networks).
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Iterable

from core.addresses import DOTTED_V4
from core.refusals import forms, too_wide

_Span = tuple[int, int, int]  # (IP version, first, last) as integers


def unban_refusal(entry: str) -> str | None:
    """Why an unban of `entry` (canonical, as core.addresses.ip_list makes it) is refused, or None."""
    if "/" not in entry:
        return None  # one address: fail2ban lifts that entry only
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None  # not an address at all: the caller's validation answers invalid_ip
    for shape in forms(network):
        reason = too_wide(shape)
        if reason is not None:
            return reason
    return None


def _spans(entry: str) -> list[_Span]:
    if DOTTED_V4.fullmatch(entry):  # most ban entries: ~10x faster than ipaddress
        n = int.from_bytes(socket.inet_aton(entry), "big")
        return [(4, n, n)]
    try:
        network = ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return []  # fail2ban's list may hold anything (`banip` validates nothing): never inside a network
    return [(s.version, int(s.network_address), int(s.broadcast_address)) for s in forms(network)]


def lifted_by(requested: Iterable[str], banned: Iterable[str]) -> dict[str, list[str]]:
    """Each requested entry -> the entries of `banned` (a jail's ban list) its unban lifts (see the module
    docstring); an entry of the list is lifted by the first request that names or contains it. Linear in the
    list (sorted once), so a list of 100,000 takes a fraction of a second: offload it when large."""
    listing = list(dict.fromkeys(banned))
    present = set(listing)
    out: dict[str, list[str]] = {}
    taken: set[str] = set()
    index: list[tuple[int, int, int, str]] | None = None
    for entry in requested:
        if entry in present or "/" not in entry:
            out[entry] = [entry] if entry in present and entry not in taken else []
            taken.update(out[entry])
            continue
        if index is None:  # (version, first, last, entry) sorted: one bisect per requested network
            index = sorted((v, first, last, e) for e in listing for v, first, last in _spans(e))
        found: list[str] = []
        for version, first, last in _spans(entry):
            at = bisect.bisect_left(index, (version, first, -1, ""))
            while at < len(index) and index[at][0] == version and index[at][1] <= last:
                if index[at][2] <= last and index[at][3] not in taken:
                    taken.add(index[at][3])
                    found.append(index[at][3])
                at += 1
        out[entry] = found
    return out
