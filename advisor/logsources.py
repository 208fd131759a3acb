"""Check 1: enabled jails whose log source does not exist on this host (a file backend with no matching
logpath, the systemd backend without a journal), and enabled jails fail2ban does not run.

The classic case (issue 24): Debian 12 enables `sshd` on /var/log/auth.log, which a journald-only host does
not have, so fail2ban refuses to start the jail; the fix is `backend = systemd`."""

from __future__ import annotations

import os
import re
from typing import Any

from advisor.context import Context
from advisor.finding import Finding, jail_fix

FILE_BACKENDS = ("auto", "polling", "pyinotify", "gamin")


def has_journalmatch(config_dir: str, filter_name: str) -> bool:
    """Does the filter say which journal entries are its own (so that `backend = systemd` can work)?"""
    for ext in (".conf", ".local"):
        try:
            with open(os.path.join(config_dir, "filter.d", filter_name + ext), encoding="utf-8") as fh:
                if re.search(r"^\s*journalmatch\s*=\s*\S", fh.read(), re.MULTILINE):
                    return True
        except OSError:
            continue
    return False


def _file_jail(ctx: Context, jail: dict[str, Any]) -> Finding | None:
    if not ctx.host.logs_visible():
        return None  # unknown: the host's /var/log is not visible (see BANGUI_HOST_ROOT)
    if any(ctx.host.matches(p) for p in jail["logpath"]):
        return None
    name = jail["name"]
    fix = None
    if ctx.facts.journal and has_journalmatch(ctx.config_dir, jail["filter"]):
        fix = jail_fix(name, {"backend": "systemd"},
                       f"read {name}'s entries from the systemd journal (its filter names them: journalmatch)")
    paths = ", ".join(jail["logpath"]) or "(none)"
    journal = {True: "this host has a systemd journal", False: "this host has no systemd journal either",
               None: "whether it has a systemd journal is unknown"}[ctx.facts.journal]
    return Finding(f"jail-logpath-missing:{name}", "critical", f"{name} watches log files that do not exist",
                   f"backend {jail['backend']} reads {paths}, but no such file exists on this host; fail2ban "
                   f"refuses to start the jail. {journal.capitalize()}.", name, fix,
                   {"backend": jail["backend"], "logpath": jail["logpath"], "journal": ctx.facts.journal})


def _journal_jail(ctx: Context, jail: dict[str, Any]) -> Finding | None:
    if ctx.facts.journal is not False:
        return None
    name = jail["name"]
    found = sorted({m for p in jail["logpath"] for m in ctx.host.matches(p)})
    fix = None
    if found:
        fix = jail_fix(name, {"backend": "auto", "logpath": "\n".join(found)}, f"read {name}'s log files instead")
    return Finding(f"jail-journal-missing:{name}", "critical", f"{name} reads a systemd journal this host lacks",
                   f"backend {jail['backend']}, but neither /var/log/journal nor /run/log/journal exists"
                   + (f"; its log files exist: {', '.join(found)}" if found else ""), name, fix,
                   {"backend": jail["backend"], "logpath_found": found})


def check(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for jail in ctx.enabled():
        backend = jail["backend"].split("[", 1)[0].strip()
        found = _journal_jail(ctx, jail) if backend == "systemd" else (
            _file_jail(ctx, jail) if backend in FILE_BACKENDS else None)
        not_running = ctx.running is not None and jail["name"] not in ctx.running
        if found is not None:
            if not_running:
                found.evidence["running"] = False
            findings.append(found)
        elif not_running:
            findings.append(Finding(
                f"jail-not-running:{jail['name']}", "critical",
                f"{jail['name']} is enabled but fail2ban does not run it",
                "the configuration enables it, fail2ban's jail list lacks it: fail2ban failed to start it (see its "
                "log, GET /api/v1/logs)", jail["name"], None, {"running": sorted(ctx.running or ())}))
    return findings
