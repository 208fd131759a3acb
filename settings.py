"""The one configuration object: built once from `BANGUI_*` variables and CLI flags, validated at start.

Every setting is declared once, as a field of `Settings` with its `setting(kind, default, help, ...)`;
`FIELDS` (derived from those fields) drives the environment parsing, the CLI flags, `--help` and the
README's configuration table (a test checks the README against it). A bad value stops the program with
one line naming the variable and the fix. Secrets also accept `<NAME>_FILE` (read from a file, e.g. a container secret).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "BANGUI_"
NO_FAIL2BAN = "/nonexistent/bangui-tests"  # Settings.for_tests: no fail2ban unless a test names its own


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str | int | float | bool | path | bind | networks | choice
    default: Any
    help: str
    flag: bool = False  # also exposed as a `bangui serve` CLI flag
    secret: bool = False  # accepts <NAME>_FILE; never logged
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")




def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def _bind_host_ok(host: str) -> bool:
    """An IPv4 address, an IPv6 address (bracketed, or bare as in ::1:8080) or a host name: nothing hypercorn
    would read otherwise (`unix:PATH` is a Unix socket the healthcheck cannot reach, `fd://N` an inherited one)
    or fail on at startup with a traceback (a list `a:1,b:2`, spaces, 999.1.1.1)."""
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in inner or inner != host:
        try:
            return isinstance(ipaddress.ip_address(inner), ipaddress.IPv6Address)
        except ValueError:
            return False
    if inner.replace(".", "").isdigit():  # all digits and dots: only a valid IPv4 address will do
        try:
            ipaddress.IPv4Address(inner)
        except ValueError:
            return False
        return True
    return _HOSTNAME.fullmatch(inner) is not None


def _parse_bind(raw: str) -> str:
    host, sep, port = raw.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or not _bind_host_ok(host):
        raise ValueError("expected HOST:PORT (one address: an IPv4 address, [IPv6] or a host name), e.g. "
                         "127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080")
    return raw.strip()


def _parse_networks(raw: str) -> tuple[str, ...]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    return tuple(str(ipaddress.ip_network(p, strict=False)) for p in parts)


def _parse_number(kind: type[int] | type[float], field: Field) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw.strip())
        if field.minimum is not None and value < field.minimum:
            raise ValueError(f"must be at least {field.minimum:g}")
        return value

    return parse


def _parser(field: Field) -> Callable[[str], Any]:
    if field.kind == "int":
        return _parse_number(int, field)
    if field.kind == "float":
        return _parse_number(float, field)
    if field.kind == "bool":
        return _parse_bool
    if field.kind == "bind":
        return _parse_bind
    if field.kind == "networks":
        return _parse_networks
    if field.kind == "choice":

        def choose(raw: str) -> str:
            if raw.strip().lower() not in field.choices:
                raise ValueError("expected one of " + ", ".join(field.choices))
            return raw.strip().lower()

        return choose
    return lambda raw: raw.strip() if field.kind == "path" else raw


_SETTING = "bangui_setting"


def setting(kind: str, default: Any, help: str, *, flag: bool = False, secret: bool = False,
            choices: tuple[str, ...] = (), minimum: float | None = None) -> Any:
    """A field of `Settings`: its kind, documented default and help (the name is the field's)."""
    spec = Field("", kind, default, help, flag, secret, choices, minimum)
    return dataclasses.field(repr=not secret, metadata={_SETTING: spec})


@dataclass(frozen=True)
class Settings:
    bind: str = setting("bind", "127.0.0.1:8080", "HOST:PORT to listen on.", flag=True)
    workers: int = setting("int", 1, "Number of hypercorn worker processes.", flag=True, minimum=1)
    data_dir: str = setting(
        "path", "/var/lib/bangui", "Directory for all state (created 0700; local disk only).", flag=True)
    fail2ban_socket: str = setting("path", "/var/run/fail2ban/fail2ban.sock", "fail2ban's control socket.", flag=True)
    fail2ban_timeout: float = setting("float", 5.0, "Seconds to wait for one fail2ban socket reply.", minimum=0.1)
    fail2ban_max_calls: int = setting("int", 16, "Concurrent fail2ban socket calls per process.", minimum=1)
    fail2ban_db: str = setting("path", "", "fail2ban's SQLite database for history sync (default: ask fail2ban).")
    demo: str = setting("choice", "off", "on: always start a private demo fail2ban (never the host's); auto: only "
                        "when the socket is unreachable.", flag=True, choices=("off", "auto", "on"))
    admin_password: str = setting("str", "", "Creates user 'admin' at first start when no user exists.", secret=True)
    cookie_secure: bool = setting("bool", False, "Always mark the session cookie Secure (else only over https).")
    session_idle_minutes: int = setting("int", 60, "A session ends after this long without requests.", minimum=1)
    session_lifetime_hours: int = setting("int", 12, "A session ends this long after login, active or not.", minimum=1)
    login_max_failures: int = setting("int", 5, "Failed logins allowed per client address per window.", minimum=1)
    login_user_max_failures: int = setting(
        "int", 50, "Failed logins allowed per username per window, from all "
        "addresses together (higher, so that strangers cannot easily lock an account out).", minimum=1)
    login_window_seconds: int = setting("int", 900, "The failed-login counting window.", minimum=1)
    trusted_proxies: tuple[str, ...] = setting(
        "networks", "", "Comma-separated proxy addresses/CIDRs whose X-Forwarded-* "
        "headers are honoured.")
    max_body_bytes: int = setting("int", 1_048_576, "Largest accepted request body.", minimum=1024)
    log_level: str = setting("choice", "info", "Log verbosity.", choices=("debug", "info", "warning", "error"))
    log_format: str = setting(
        "choice", "text", "Log lines as text, or json: one JSON object per line (time, level, "
        "logger, message, request_id, actor).", choices=("text", "json"))
    leader_candidate: bool = setting(
        "bool", True, "Stand in the leader election (the leader runs the background "
        "jobs); 0 for a process that only serves requests.")
    heartbeat_seconds: float = setting("float", 2.0, "How often the leader refreshes its heartbeat.", minimum=0.1)
    leader_stale_seconds: float = setting(
        "float", 15.0, "Heartbeat age after which health reports 'degraded'.", minimum=1)
    snapshot_seconds: float = setting("float", 5.0, "Interval of the fail2ban health snapshot job.", minimum=0.5)
    decisions_seconds: float = setting(
        "float", 1.0, "Interval of the job that publishes fail2ban's current bans to CrowdSec bouncers.", minimum=0.2)
    decisions_jails: str = setting(
        "str", "", "Comma-separated jails whose bans CrowdSec bouncers receive (default: every jail; in fleet "
        "mode the fleet's shared jails).")
    history_sync_seconds: float = setting("float", 10.0, "Interval of the history sync job.", minimum=1)
    history_retention_days: int = setting("int", 365, "Archived bans older than this are purged.", minimum=1)
    audit_retention_days: int = setting(
        "int", 400, "Audit entries older than this are purged (a signed checkpoint "
        "keeps the rest verifiable).", minimum=1)
    geoip_db: str = setting("path", "", "A MaxMind/DB-IP country .mmdb file (default: the bundled offline data).")
    jobs_module: str = setting("str", "", "Python module whose JOBS list adds background jobs (module:attribute).")
    blocklist_allow_private: bool = setting(
        "bool", False, "Let blocklist URLs reach loopback, private, link-local "
        "and reserved addresses (off: refused, against SSRF).")
    blocklist_max_bytes: int = setting("int", 5_242_880, "Largest blocklist download accepted.", minimum=1024)
    notify_allow_private: bool = setting(
        "bool", False, "Let notification URLs reach loopback, private, link-local and "
        "reserved addresses (off: refused, against SSRF; a receiver on your own network needs it).")
    blocklist_timeout_seconds: float = setting(
        "float", 30.0, "Time allowed for one blocklist download, redirects "
        "included.", minimum=1)
    fail2ban_config_dir: str = setting("path", "/etc/fail2ban", "fail2ban's configuration directory.")
    host_root: str = setting(
        "path", "/", "Where the host's files are seen (the advisor reads BANGUI_HOST_ROOT + the path fail2ban uses): "
        "in a container, mount the host's /proc/net, /var/log, /var/lib/dpkg/status and journal read-only under it.")
    log_dirs: str = setting(
        "str", "/var/log", "Comma-separated directories whose files the filter tester may read "
        "(besides the files jails watch).")
    filter_test_seconds: float = setting(
        "float", 15.0, "Time allowed for one filter test; a slower one (e.g. a "
        "catastrophic regex) is stopped.", minimum=0.5)
    filter_tests_per_user: int = setting(
        "int", 1, "Filter tests one user may run at once on this host (all workers together); more are "
        "answered 429 with Retry-After, so one user's slow regexes cannot starve the others.", minimum=1)
    fleet_url: str = setting(
        "str", "", "Fleet mode: redis://[user:pass@]host:port/db (rediss:// for TLS) of the Redis that the fleet's "
        "hosts share. Empty: single-host mode, no Redis needed.", secret=True)
    fleet_tls_ca_file: str = setting(
        "path", "", "Fleet mode over TLS (rediss://): the CA certificate file that signed Redis' certificate "
        "(default: the system's CAs).")
    fleet_tls_cert_file: str = setting(
        "path", "", "Fleet mode over TLS: this host's client certificate, for a Redis that checks clients "
        "(tls-auth-clients); with BANGUI_FLEET_TLS_KEY_FILE.")
    fleet_tls_key_file: str = setting(
        "path", "", "Fleet mode over TLS: the private key of BANGUI_FLEET_TLS_CERT_FILE.")
    fleet_sentinels: str = setting(
        "str", "", "Fleet mode with Redis Sentinel: comma-separated host:port of the sentinels, which say where "
        "the primary is (BANGUI_FLEET_URL then gives only user, password, database and TLS; its host is not "
        "used).")
    fleet_sentinel_service: str = setting(
        "str", "", "Fleet mode with Redis Sentinel: the monitored primary's name (sentinel monitor NAME ...).")
    fleet_sentinel_password: str = setting(
        "str", "", "Fleet mode with Redis Sentinel: the sentinels' own password (their requirepass), if any; "
        "the primary's comes from BANGUI_FLEET_URL.", secret=True)
    host_name: str = setting(
        "str", "", "This host's name in the fleet, unique among its running servers (default: the machine's "
        "hostname).")
    fleet_share_jails: str = setting(
        "str", "", "Comma-separated jails whose own bans are applied on every other host of the fleet.")
    fleet_jail: str = setting(
        "str", "", "The jail that receives other hosts' shared bans here (default: the jail of the same name).")
    fleet_retention_hours: int = setting(
        "int", 168, "How long the fleet's ban log stays in Redis (a host that was down this long still catches "
        "up).", minimum=1)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None,
             ) -> Settings:
        """Build the settings from the environment, then CLI overrides (raw strings), validating each.

        Raises ConfigError with one line naming the variable (or flag) and the expected form.
        """
        env = os.environ if env is None else env
        overrides = overrides or {}
        known = {f.env for f in FIELDS} | {f.env + "_FILE" for f in FIELDS if f.secret}
        unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]}: see `bangui serve --help` for the valid names")
        values: dict[str, Any] = {}
        for field in FIELDS:
            source, raw = _raw_value(field, env, overrides)
            if raw is None:
                values[field.name] = field.default if field.kind != "networks" else ()
                continue
            try:
                values[field.name] = _parser(field)(raw)
            except ValueError as exc:
                shown = "(hidden)" if field.secret else repr(raw)
                raise ConfigError(f"invalid {source}={shown}: {exc}") from None
        return cls(**values)

    @classmethod
    def for_tests(cls, **changes: Any) -> Settings:
        """Defaults with the given fields replaced (no environment involved), except fail2ban's socket and
        configuration dir: a test names its private fail2ban's, else they point at nothing (the production
        defaults are the host's /var/run/fail2ban and /etc/fail2ban, and tests run as root in CI)."""
        changes.setdefault("fail2ban_socket", NO_FAIL2BAN + "/fail2ban.sock")
        changes.setdefault("fail2ban_config_dir", NO_FAIL2BAN + "/config")
        return dataclasses.replace(cls.load(env={}), **changes)

    def to_env(self) -> dict[str, str]:
        """The `BANGUI_*` variables that rebuild exactly these settings in a spawned worker process."""
        out: dict[str, str] = {}
        for field in FIELDS:
            value = getattr(self, field.name)
            if field.kind == "networks":
                out[field.env] = ",".join(value)
            elif field.kind == "bool":
                out[field.env] = "1" if value else "0"
            else:
                out[field.env] = str(value)
        return out


FIELDS: tuple[Field, ...] = tuple(dataclasses.replace(f.metadata[_SETTING], name=f.name)
                                  for f in dataclasses.fields(Settings))


def _raw_value(field: Field, env: Mapping[str, str], overrides: Mapping[str, str]
               ) -> tuple[str, str | None]:
    if field.name in overrides and overrides[field.name] is not None:
        return field.option, overrides[field.name]
    if field.secret and env.get(field.env + "_FILE"):
        path = env[field.env + "_FILE"]
        try:
            return field.env + "_FILE", Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{field.env}_FILE={path!r} cannot be read: {exc.strerror}") from None
    if field.env in env:
        return field.env, env[field.env]
    return field.env, None


def source(name: str, env: Mapping[str, str] | None = None) -> str:
    """The variable a setting is read from (as `load` reads it): `<NAME>_FILE` for a secret given as a file, else
    `<NAME>` itself. For messages that tell an operator which setting to fix."""
    field = next(f for f in FIELDS if f.name == name)
    env = os.environ if env is None else env
    return field.env + "_FILE" if field.secret and env.get(field.env + "_FILE") else field.env


def markdown_table() -> str:
    """The README's configuration table, generated from FIELDS."""
    rows = ["| Variable | Flag | Default | Meaning |", "| --- | --- | --- | --- |"]
    for f in FIELDS:
        flag = f"`{f.option}`" if f.flag else ""
        shown = ("1" if f.default else "0") if f.kind == "bool" else f.default
        default = f"`{shown}`" if shown not in ("", None) else ""
        extra = " Also `" + f.env + "_FILE`." if f.secret else ""
        rows.append(f"| `{f.env}` | {flag} | {default} | {f.help}{extra} |")
    return "\n".join(rows)
