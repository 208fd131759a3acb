"""Check 8: fail2ban itself. Its log target where bangui cannot read it (syslog, the journal, stdout, or a file
bangui cannot open), a log level too quiet to show bans (bans are NOTICE), and the database switched off
(bans are then lost at every restart and bangui's history sync has nothing to read)."""

from __future__ import annotations

import os

from advisor.context import Context
from advisor.finding import Finding, server_fix

NOT_FILES = ("SYSLOG", "SYSTEMD-JOURNAL", "STDOUT", "STDERR")
QUIET = ("WARNING", "ERROR", "CRITICAL")


def _logtarget(ctx: Context, target: str) -> Finding | None:
    if target.upper() in NOT_FILES:
        reason = f"fail2ban logs to {target}"
    elif target.startswith("/"):
        stat = ctx.host.stat(target)
        if stat is None:
            if not ctx.host.logs_visible():
                return None  # unknown: the host's /var/log is not visible here
            reason = f"fail2ban logs to {target}, which bangui does not find"
        elif not os.access(ctx.host.at(target), os.R_OK):
            reason = f"fail2ban logs to {target}, which bangui may not read (run it in group adm, or adjust the mode)"
        else:
            return None
    else:
        return None
    return Finding("logtarget-unreadable", "warning", "bangui cannot read fail2ban's log",
                   f"{reason}: the log view and the alerts on failed jails see nothing. Set logtarget = "
                   "/var/log/fail2ban.log in fail2ban.local (then restart fail2ban).", None, None,
                   {"logtarget": target})


def check(ctx: Context) -> list[Finding]:
    if ctx.server is None:
        return []  # fail2ban does not answer: unknown
    out: list[Finding] = []
    target = str(ctx.server.get("logtarget") or "")
    if (found := _logtarget(ctx, target)) is not None:
        out.append(found)
    level = str(ctx.server.get("loglevel") or "").upper()
    if level in QUIET:
        out.append(Finding("loglevel-quiet", "warning", "fail2ban's log level hides its bans",
                           f"loglevel = {level}: bans and unbans are logged at NOTICE, so the log shows none",
                           None, server_fix({"loglevel": "INFO"}, "log at INFO"), {"loglevel": level}))
    dbfile = ctx.server.get("dbfile")
    if dbfile in (None, "", "None", ":memory:"):
        out.append(Finding("database-disabled", "warning", "fail2ban keeps no database",
                           f"dbfile = {dbfile or 'None'}: bans are lost at every restart and bangui's history sync "
                           "has nothing to read. Set dbfile = /var/lib/fail2ban/fail2ban.sqlite3 in fail2ban.local "
                           "and restart fail2ban.", None, None, {"dbfile": dbfile}))
    return out
