"""Check 6: retention and escalation. `dbpurgeage` shorter than the longest `bantime` (fail2ban forgets bans
at restart that should still hold); `bantime` shorter than `findtime`; neither a `recidive` jail nor
`bantime.increment` (repeat offenders come back forever: the archive's count of addresses banned 3+ times
in 30 days is the evidence); `maxretry = 1` on a filter that matches honest mistakes (one typo bans)."""

from __future__ import annotations

from typing import Any

from advisor.context import Context
from advisor.finding import Finding, jail_fix, server_fix

# filters whose matches are often a person's typo (a mistyped password), not an attack
MISTAKE_PRONE = {"sshd", "dovecot", "postfix", "postfix-sasl", "courier-auth", "sasl", "apache-auth",
                 "nginx-http-auth", "vsftpd", "proftpd", "pure-ftpd", "mysqld-auth", "asterisk", "roundcube-auth",
                 "bangui-auth", "sogo-auth", "murmur", "selinux-ssh", "dropbear", "gitlab", "grafana"}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _on(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes", "on")


def _purge(ctx: Context) -> list[Finding]:
    purge = _int((ctx.server or {}).get("dbpurgeage"))
    bantimes = {j["name"]: b for j in ctx.enabled() if (b := _int(j["settings"].get("bantime"))) and b > 0}
    if purge is None or not bantimes:
        return []
    longest = max(bantimes.values())
    if purge >= longest:
        return []
    jail = max(bantimes, key=lambda n: bantimes[n])
    return [Finding("dbpurgeage-short", "warning", "fail2ban forgets bans before they end",
                    f"dbpurgeage = {purge} s, but {jail} bans for {longest} s: after a restart of fail2ban, bans "
                    "older than dbpurgeage are not restored", None,
                    server_fix({"dbpurgeage": str(longest)}, f"keep bans in fail2ban's database {longest} s"),
                    {"dbpurgeage": purge, "longest_bantime": longest, "jail": jail})]


def _per_jail(ctx: Context) -> list[Finding]:
    out = []
    for jail in ctx.enabled():
        name, s = jail["name"], jail["settings"]
        bantime, findtime, maxretry = _int(s.get("bantime")), _int(s.get("findtime")), _int(s.get("maxretry"))
        if bantime is not None and findtime is not None and 0 < bantime < findtime:
            out.append(Finding(f"bantime-below-findtime:{name}", "warning", f"{name} bans for less than it watches",
                               f"bantime = {bantime} s < findtime = {findtime} s: a banned address is free again "
                               "while its failures still count", name, None,
                               {"bantime": bantime, "findtime": findtime}))
        if maxretry == 1 and jail["filter"] in MISTAKE_PRONE:
            out.append(Finding(f"maxretry-one:{name}", "warning", f"{name} bans at the first failure",
                               f"maxretry = 1 with filter {jail['filter']}, which matches mistyped passwords too: "
                               "one typo bans a legitimate user", name,
                               jail_fix(name, {"maxretry": "3"}, "allow 3 failures"), {"maxretry": 1}))
    return out


def _escalation(ctx: Context) -> list[Finding]:
    enabled = ctx.enabled()
    if not enabled or any(j["name"] == "recidive" for j in enabled):
        return []
    if any(_on(j["settings"].get("bantime.increment")) for j in enabled):
        return []
    repeat = ctx.repeat_offenders
    seen = "unknown" if repeat is None else str(repeat)
    return [Finding("no-escalation", "warning" if repeat else "info", "repeat offenders are never banned longer",
                    f"no recidive jail and no bantime.increment: an address comes back after each ban for as long as "
                    f"it likes. Addresses banned 3+ times in the last 30 days: {seen}.", None,
                    jail_fix("DEFAULT", {"bantime.increment": "true"},
                             "ban repeat offenders longer each time (bantime.increment in [DEFAULT])"),
                    {"repeat_offenders_30d": repeat})]


def check(ctx: Context) -> list[Finding]:
    return _purge(ctx) + _per_jail(ctx) + _escalation(ctx)
