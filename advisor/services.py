"""Check 2: services on the host without a jail, where fail2ban's own catalogue offers one.

A service is present when its process runs (/proc/*/comm), its package is installed (dpkg status) or its
log exists (with the service's own marker for shared logs such as mail.log); a listening port is shown as
evidence only (80 is nginx or apache: no guessing). The fix activates the catalogue's jail with the log
source found (its own logpath when that exists on the host, else the service's log, else the journal)."""

from __future__ import annotations

import dataclasses
from typing import Any

from advisor.context import Context
from advisor.finding import Finding, jail_fix
from advisor.logsources import has_journalmatch


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    processes: tuple[str, ...]
    packages: tuple[str, ...]
    ports: tuple[int, ...]
    logs: tuple[str, ...]  # host paths; "path|marker": the log counts only when its tail contains marker
    jails: tuple[str, ...]  # catalogue jails for it, the first that fits is proposed


SERVICES = (
    Service("sshd", ("sshd",), ("openssh-server",), (22,), ("/var/log/auth.log|sshd[",), ("sshd",)),
    Service("nginx", ("nginx",), ("nginx", "nginx-core", "nginx-full", "nginx-light", "nginx-extras"), (80, 443),
            ("/var/log/nginx/error.log", "/var/log/nginx/access.log"),
            ("nginx-http-auth", "nginx-botsearch", "nginx-limit-req")),
    Service("apache", ("apache2", "httpd"), ("apache2",), (80, 443),
            ("/var/log/apache2/error.log", "/var/log/apache2/access.log"),
            ("apache-auth", "apache-badbots", "apache-noscript")),
    Service("postfix", ("qmgr", "pickup"), ("postfix",), (25, 587), ("/var/log/mail.log|postfix/",),
            ("postfix", "postfix-sasl")),
    Service("dovecot", ("dovecot",), ("dovecot-core",), (143, 993, 110, 995), ("/var/log/mail.log|dovecot:",),
            ("dovecot",)),
    Service("vsftpd", ("vsftpd",), ("vsftpd",), (21,), ("/var/log/vsftpd.log",), ("vsftpd",)),
    Service("proftpd", ("proftpd",), ("proftpd-basic", "proftpd-core"), (21,), ("/var/log/proftpd/proftpd.log",),
            ("proftpd",)),
    Service("mysql", ("mysqld", "mariadbd"), ("mariadb-server", "mysql-server", "default-mysql-server"), (3306,),
            ("/var/log/mysql/error.log",), ("mysqld-auth",)),
    Service("asterisk", ("asterisk",), ("asterisk",), (5060,), ("/var/log/asterisk/messages",), ("asterisk",)),
)
BANGUI_JAIL = "bangui-auth"


def _log_seen(ctx: Context, entry: str) -> str | None:
    path, _, marker = entry.partition("|")
    if not ctx.host.stat(path):
        return None
    if marker:
        text = ctx.host.read(path, limit=256 * 1024) or ""
        if marker not in text:
            return None
    return path


def evidence(ctx: Context, service: Service) -> dict[str, list[Any]]:
    f = ctx.facts
    return {"processes": sorted(set(service.processes) & (f.processes or set())),
            "packages": sorted(set(service.packages) & (f.packages or set())),
            "logs": [p for e in service.logs if (p := _log_seen(ctx, e))],
            "ports": sorted(set(service.ports) & (f.listening or set()))}


def _fix(ctx: Context, jail: dict[str, Any], logs: list[str]) -> tuple[dict[str, str] | None, str]:
    if any(ctx.host.matches(p) for p in jail["logpath"]) and not jail["backend"].startswith("systemd"):
        return {}, f"its logpath {', '.join(jail['logpath'])} exists"
    if logs:
        return {"logpath": "\n".join(logs)}, f"on {', '.join(logs)}"
    if ctx.facts.journal and has_journalmatch(ctx.config_dir, jail["filter"]):
        return {"backend": "systemd"}, "on the systemd journal"
    return None, "no log source found: give its logpath when activating it"


def _service(ctx: Context, service: Service) -> Finding | None:
    seen = evidence(ctx, service)
    if not (seen["processes"] or seen["packages"] or seen["logs"]):
        return None
    candidates = [j for name in service.jails if (j := ctx.jail(name)) is not None]
    if not candidates or any(j["enabled"] for j in candidates):
        return None
    jail = candidates[0]
    values, how = _fix(ctx, jail, seen["logs"])
    fix = None if values is None else jail_fix(jail["name"], values, f"activate {jail['name']} ({how})", activate=True)
    what = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in seen.items() if v)
    return Finding(f"service-without-jail:{service.name}", "warning", f"{service.name} runs without a jail",
                   f"{service.name} is on this host ({what}), but none of fail2ban's jails for it is enabled "
                   f"({', '.join(j['name'] for j in candidates)}); {how}", jail["name"], fix, seen)


def _bangui(ctx: Context) -> Finding | None:
    jail = ctx.jail(BANGUI_JAIL)
    if jail is not None and jail["enabled"]:
        return None
    if jail is None:
        return Finding("service-without-jail:bangui", "info", "bangui's own login is not protected by fail2ban",
                       "no bangui-auth jail: copy contrib/fail2ban/filter.d/bangui-auth.conf and "
                       "contrib/fail2ban/jail.d/bangui.local from bangui's source to fail2ban's configuration "
                       "(set logpath to where bangui's log goes)", None, None, {})
    values, how = _fix(ctx, jail, [])
    fix = None if values is None else jail_fix(BANGUI_JAIL, values, f"activate {BANGUI_JAIL} ({how})", activate=True)
    return Finding("service-without-jail:bangui", "info", "bangui's own login is not protected by fail2ban",
                   f"the bangui-auth jail exists but is not enabled; {how}", BANGUI_JAIL, fix, {})


def check(ctx: Context) -> list[Finding]:
    found = [f for s in SERVICES if (f := _service(ctx, s)) is not None]
    if (own := _bangui(ctx)) is not None:
        found.append(own)
    return found
