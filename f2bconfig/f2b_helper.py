"""Run by fail2ban's OWN interpreter (Debian's python3), never imported by bangui: fail2ban's package is
importable only there. Prints one JSON document on stdout.

    python3 f2b_helper.py check DIR       -> {"ok", "errors": [...], "jails": [enabled jail names]}
    python3 f2b_helper.py serve   (a warm spare: imports fail2ban, then reads ["check"|"catalogue", DIR, ...])
    python3 f2b_helper.py catalogue DIR [JAIL]
        -> {"jails": [{name, enabled, filter, logpath, backend, settings, source, error}]} (every jail, or one)

`check` is fail2ban's configuration test made strict: its readers parse DIR exactly as
`fail2ban-client -t` does (jail, filter and action files, interpolation, includes), then the command
stream they produce is replayed into an in-memory fail2ban `Server` (no socket, no database, nothing
started), so fail2ban's own engine compiles every regex and builds every jail and action.
`fail2ban-client -t` alone accepts a filter whose regex does not compile (measured on 1.0.2).
Log files are not required to exist here (they may be invisible to bangui, e.g. in a container); a
missing one is found when fail2ban starts the jail, which the apply step verifies.
"""

import configparser
import glob
import json
import logging
import os
import sys

# Server-level commands with side effects outside this process (files, sockets, logging): never replayed.
_SERVER_SKIP = {"logtarget", "syslogsocket", "dbfile", "dbpurgeage", "dbmaxmatches", "loglevel", "pidfile",
                "socket", "allowipv6", "thread"}
_JAIL_SKIP = {"addlogpath", "addjournalmatch"}
SETTING_KEYS = ("bantime", "findtime", "maxretry", "port", "action", "banaction", "ignoreip", "usedns",
                "bantime.increment", "bantime.factor", "bantime.formula", "bantime.multipliers",
                "bantime.maxtime", "bantime.rndtime", "bantime.overalljails", "protocol", "chain")


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _collector():
    handler = Collect()
    root = logging.getLogger("fail2ban")
    root.addHandler(handler)
    root.setLevel(logging.ERROR)
    root.propagate = False
    return handler


def check(base):
    from fail2ban.client.configurator import Configurator
    from fail2ban.server.server import Server
    from fail2ban.server.transmitter import Transmitter

    handler = _collector()
    errors = []
    conf = Configurator()
    conf.setBaseDir(base)
    try:
        conf.readAll()
        ok = conf.getOptions(None, ignoreWrong=False)
        conf.convertToProtocol(allow_no_files=True)
        stream = conf.getConfigStream()
    except Exception as exc:
        return {"ok": False, "errors": handler.messages + [str(exc)], "jails": []}
    if not ok:
        return {"ok": False, "errors": handler.messages or ["fail2ban rejected the configuration"], "jails": []}
    errors = [str(cmd[1]) for cmd in stream if cmd[0] == "config-error"]
    values = _effective_values(stream)
    server = Server(daemon=False)
    transmitter = Transmitter(server)
    jails = []
    for cmd in stream:
        if cmd[0] in ("start", "config-error", "server-status"):
            continue
        if cmd[0] == "set" and len(cmd) > 1 and cmd[1] in _SERVER_SKIP:
            problem = _server_option_error(cmd)
            if problem:
                errors.append(problem)
            continue
        if cmd[0] == "set" and len(cmd) > 2 and cmd[2] in _JAIL_SKIP:
            continue
        if cmd[0] == "add":
            jails.append(cmd[1])
            cmd = ["add", cmd[1], "polling"]  # no inotify/systemd resources for a dry run
        code, result = transmitter.proceed(cmd)
        if code != 0:
            command = " ".join(str(c) for c in cmd[:3])
            errors.append(f"jail {cmd[1] if len(cmd) > 1 else ''}: {command} failed: {result}")
    errors += [m for m in handler.messages if not any(m in e for e in errors) and not m.startswith("Command ")]
    return {"ok": not errors, "errors": errors, "jails": jails, "values": values, "brief": _brief(conf)}


def _brief(conf):
    """jail -> {filter, backend} of the enabled jails (what GET /jails/{jail} shows), from the same reading."""
    try:
        readers = conf._Configurator__jails.jails  # no public accessor in 1.0.2
        return {r.getName(): {"filter": str(r.options.get("filter") or "").split("[", 1)[0].strip(),
                              "backend": str(r.options.get("backend") or "auto")} for r in readers}
    except Exception:
        return {}


def _server_option_error(cmd):
    """fail2ban.conf/.local values the server would reject, checked with fail2ban's own converters
    (these commands are not replayed: they would open files and databases)."""
    from fail2ban.helpers import str2LogLevel
    from fail2ban.server.mytime import MyTime

    key, value = cmd[1], cmd[2] if len(cmd) > 2 else ""
    try:
        if key == "loglevel":
            str2LogLevel(value)
        elif key == "dbpurgeage":
            MyTime.str2seconds(value)
        elif key == "dbmaxmatches":
            int(value)
    except Exception as exc:
        return f"fail2ban.conf/.local: {key} = {value!r}: {exc}"
    return None


def _effective_values(stream):
    """jail -> {option: value as fail2ban will set it} (bools as true/false; ignoreip space-joined)."""
    values: dict = {}
    for cmd in stream:
        if cmd[0] != "set" or len(cmd) < 4 or cmd[2] in _JAIL_SKIP:
            continue
        jail, key = cmd[1], cmd[2]
        if key == "addignoreip":
            values.setdefault(jail, {})["ignoreip"] = " ".join(str(v) for v in cmd[3:])
        elif len(cmd) == 4 and isinstance(cmd[3], (str, int, float, bool)):
            value = cmd[3]
            values.setdefault(jail, {})[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def _merge_files(base):
    """jail.conf, jail.d/*.conf, jail.local, jail.d/*.local: fail2ban's order (the last word wins)."""
    files = [os.path.join(base, "jail.conf")] + sorted(glob.glob(os.path.join(base, "jail.d", "*.conf")))
    files += [os.path.join(base, "jail.local")] + sorted(glob.glob(os.path.join(base, "jail.d", "*.local")))
    return [f for f in files if os.path.isfile(f)]


def _sources(base):
    """jail -> the last file that sets its `enabled` (else the first that defines it)."""
    defined: dict = {}
    enabling: dict = {}
    for path in _merge_files(base):
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            parser.read(path)
        except configparser.Error:
            continue
        rel = os.path.relpath(path, base)
        for section in parser.sections():
            if section in ("INCLUDES", "DEFAULT", "Definition"):
                continue
            defined.setdefault(section, rel)
            if parser.has_option(section, "enabled"):
                enabling[section] = rel
    return {name: enabling.get(name, src) for name, src in defined.items()}


def _seconds(key, value):
    """Time options as whole seconds ("10m" -> 600), as the server would use them; others unchanged."""
    if key not in ("bantime", "findtime", "bantime.maxtime", "bantime.rndtime"):
        return value
    from fail2ban.server.mytime import MyTime

    try:
        return int(MyTime.str2seconds(value))
    except Exception:
        return value


def catalogue(base, only=None):
    from fail2ban.client.jailreader import JailReader
    from fail2ban.client.jailsreader import JailsReader

    _collector()
    plain = JailsReader(force_enable=False)
    plain.setBaseDir(base)
    plain.read()
    sources = _sources(base)
    out = []
    for name in plain.sections():
        if name in ("INCLUDES", "DEFAULT", "Definition") or (only and name != only):
            continue
        reader = JailReader(name, force_enable=True, share_config=plain.share_config, use_config=plain._cfg)
        reader.setBaseDir(base)
        ok = reader.getOptions()
        opts = reader.options or {}
        logpath = [p.rsplit(" ", 1)[0] if p.endswith((" head", " tail")) else p
                   for p in str(opts.get("logpath") or "").split("\n") if p.strip()]
        settings = {k: _seconds(k, opts[k]) for k in SETTING_KEYS if opts.get(k) is not None}
        out.append({"name": name, "enabled": bool(opts.get("enabled", False)),
                    "filter": str(opts.get("filter") or "").split("[", 1)[0].strip(),
                    "logpath": logpath, "backend": str(opts.get("backend") or "auto"), "settings": settings,
                    "source": sources.get(name, "jail.conf"), "error": None if ok else opts.get("config-error")})
    return {"jails": out}


def main():
    args = sys.argv[1:]
    if args == ["serve"]:  # a warm spare: import now, then wait for ONE request line on stdin
        import fail2ban.client.configurator  # noqa: F401
        import fail2ban.client.jailreader  # noqa: F401
        import fail2ban.server.server  # noqa: F401
        import fail2ban.server.transmitter  # noqa: F401

        line = sys.stdin.readline()
        if not line:
            return  # bangui went away or closed us
        args = json.loads(line)
    mode, base = args[0], os.path.abspath(args[1])
    result = check(base) if mode == "check" else catalogue(base, args[2] if len(args) > 2 else None)
    sys.stdout.write(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
