"""Run by fail2ban's OWN interpreter (Debian's python3), never imported by bangui: fail2ban's package is
importable only there (see f2b/engine_client.py, which starts it with a deadline and reads its answer).

    python3 engine.py COMMAND [COMMAND...] < request.json

COMMAND names what to do (with several, the process imports for all of them and the request's "command"
picks one); the request is one JSON object on stdin (every request has "config_dir"):

    jail-stream {config_dir, jail}    -> {"stream": [[cmd...], ...]}
    jails       {config_dir}          -> {"jails": [name, ...]} (enabled or not)
    filter-test {config_dir, filter | failregex, ...}  -> {"lines_checked", "matched", ...}
    filter-tests {config_dir, tests: [filter-test requests]} -> {"results": [...]} (one process for all: the
                                      advisor's check of every enabled jail's filter on its log)
    check       {config_dir}          -> {"ok", "errors": [...], "jails": [enabled jail names], "values", "brief"}
    catalogue   {config_dir, jail?}   -> {"jails": [{name, enabled, filter, logpath, backend, settings, source,
                                          error}]} (every jail, or only `jail`)

A process imports its command's fail2ban modules BEFORE it reads its request (a filter test's imports take
~0.15-0.4 s, more than the test of 10,000 lines), so the runner can keep one ready as a warm spare; an
empty stdin (the runner discarded the spare, or went away) ends it without an answer. One process serves
one request only, so a deadline can simply kill it.

Every answer is ONE JSON document on stdout; a request it cannot answer is {"error": {"code", "message"}}
(exit 0: the runner tells a crash, a kill or a timeout by the exit status, and an answered error by this
document). A configuration that `check` rejects is an answer ({"ok": false, "errors": [...]}), not an error.

`jail-stream` is what `fail2ban-client reload JAIL` computes client-side before it sends
`reload JAIL [] <stream>`: fail2ban's own readers (jail.conf, jail.d/*.conf, jail.local, jail.d/*.local,
filter and action files) turned into the server's command stream for that one jail. It is built with
force_enable, so a configured-but-disabled jail can be started and a reload never drops a jail.

`filter-test` drives fail2ban-regex's own `Fail2banRegex` (same option defaults, same filter loading,
same line classification), so its counts are fail2ban-regex's; it only also keeps each match's details.

`check` is fail2ban's configuration test made strict: its readers parse the dir exactly as
`fail2ban-client -t` does (jail, filter and action files, interpolation, includes), then the command
stream they produce is replayed into an in-memory fail2ban `Server` (no socket, no database, nothing
started), so fail2ban's own engine compiles every regex and builds every jail and action.
`fail2ban-client -t` alone accepts a filter whose regex does not compile (measured on 1.0.2).
Log files are not required to exist here (they may be invisible to bangui, e.g. in a container); a
missing one is found when fail2ban starts the jail, which the apply step verifies.

`catalogue` is every jail the dir defines as fail2ban's readers see it (effective values after includes,
interpolation and the .local files), with the file that enables it.
"""

import configparser
import glob
import importlib
import json
import logging
import os
import re
import sys

# Server-level commands with side effects outside this process (files, sockets, logging): never replayed.
_SERVER_SKIP = {"logtarget", "syslogsocket", "dbfile", "dbpurgeage", "dbmaxmatches", "loglevel", "pidfile",
                "socket", "allowipv6", "thread"}
_JAIL_SKIP = {"addlogpath", "addjournalmatch"}
# fail2ban eval()s these as code (the factor and the times at once when set: MyTime.str2seconds): never
# replayed or converted here; bangui checks their values (f2bconfig/formula.py, on "values" and "server")
# before anything reaches the running server.
_EVALUATED = {"bantime.factor", "bantime.formula", "bantime", "findtime", "bantime.maxtime", "bantime.rndtime"}
SETTING_KEYS = ("bantime", "findtime", "maxretry", "port", "action", "banaction", "ignoreip", "ignoreself",
                "usedns", "bantime.increment", "bantime.factor", "bantime.formula", "bantime.multipliers",
                "bantime.maxtime", "bantime.rndtime", "bantime.overalljails", "protocol", "chain")


def _error(code, message):
    return {"error": {"code": code, "message": message}}


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _collector():
    """fail2ban's ERROR log records, kept as messages (its readers log a problem instead of raising)."""
    handler = Collect()
    root = logging.getLogger("fail2ban")
    root.addHandler(handler)
    root.setLevel(logging.ERROR)
    root.propagate = False
    return handler


# ---- jail-stream, jails ---------------------------------------------------------------------------------
def _no_config(base):
    return _error("config_invalid", f"fail2ban found no jail.conf/jail.local in {base}: set "
                  "BANGUI_FAIL2BAN_CONFIG_DIR to fail2ban's configuration directory")


def _jails_reader(base):
    from fail2ban.client.jailsreader import JailsReader

    reader = JailsReader(force_enable=True)
    reader.setBaseDir(base)
    if not reader.read():
        return None
    return reader


def configured_jails(base):
    reader = _jails_reader(base)
    if reader is None:
        return _no_config(base)
    return {"jails": [s for s in reader.sections() if s != "INCLUDES"]}


def jail_stream(base, jail):
    handler = _collector()
    reader = _jails_reader(base)
    if reader is None:
        return _no_config(base)
    if jail not in reader.sections() or jail == "INCLUDES":
        return _error("jail_not_found", f"no configuration in {base} defines a jail named {jail!r}")
    try:
        ok = reader.getOptions(jail, ignoreWrong=False)
        stream = reader.convert(allow_no_files=False) if ok else []
    except Exception as exc:
        return _error("config_invalid", f"jail {jail!r}: {exc}")
    problems = [cmd[1] for cmd in stream if cmd and cmd[0] == "config-error"]
    if not ok or problems:
        return _error("config_invalid", "; ".join(problems + handler.messages) or f"jail {jail!r} is misconfigured")
    return {"stream": stream}


# ---- filter-test ----------------------------------------------------------------------------------------
def _load_custom(tester, req):
    from fail2ban.client.fail2banregex import RegexStat

    for kind in ("fail", "ignore"):
        stats = [RegexStat(r) for r in req.get(kind + "regex") or []]
        setattr(tester, f"_{kind}regex", stats)
        for stat in stats:
            getattr(tester._filter, f"add{kind.title()}Regex")(stat.getFailRegex())


def filter_test(req):
    from fail2ban.client import fail2banregex
    from fail2ban.server.failregex import RegexException

    messages: list = []
    fail2banregex.output = messages.append  # fail2ban-regex prints its report; we answer JSON instead
    max_matches = int(req.get("max_matches", 1000))
    sample = int(req.get("missed_sample", 100))
    matches: list = []

    class Tester(fail2banregex.Fail2banRegex):
        def testRegex(self, line, date=None):
            stripped, ret, ignored = super().testRegex(line, date)
            if ret and not ignored and len(matches) < max_matches:
                for m in ret:
                    matches.append({"line": line, "ip": m[3].get("ip") or m[1], "time": m[2],
                                    "regex": self._failregex[m[0]].getFailRegex()})
            return stripped, ret, ignored

    args = ["--print-all-missed", "--print-all-ignored", "-c", req["config_dir"]]
    if req.get("datepattern"):
        args += ["-d", req["datepattern"]]
    opts, _ = fail2banregex.get_opt_parser().parse_args(args)
    try:
        tester = Tester(opts)
        if req.get("filter"):
            if not tester.readRegex(req["filter"], "fail"):
                return _error("filter_invalid", "\n".join(str(m) for m in messages)
                              or f"fail2ban could not load filter {req['filter']!r}")
        else:
            _load_custom(tester, req)
    except RegexException as exc:
        return _error("invalid_regex", str(exc))
    except Exception as exc:
        return _error("invalid_regex", f"{type(exc).__name__}: {exc}")
    if req.get("logpath"):
        from collections import deque

        try:
            with open(req["logpath"], encoding="utf-8", errors="replace") as fh:
                lines = deque(fh, maxlen=int(req["max_lines"]))
        except OSError as exc:  # e.g. /var/log/auth.log (root:adm 0640) for a bangui outside group adm
            return _error("log_unreadable", f"{req['logpath']} is not readable by bangui ({exc.strerror}): run "
                          "bangui as a user that may read it (e.g. in group adm) or adjust the file's mode")
    else:
        lines = req["lines"]
    tester.process(lines)
    stats = tester._line_stats
    return {"lines_checked": stats.tested, "matched": stats.matched, "ignored": stats.ignored,
            "missed": stats.missed, "matches": matches, "matches_truncated": stats.matched > len(matches),
            "missed_sample": stats.missed_lines[:sample], "elapsed_ms": round(tester._time_elapsed * 1000, 1),
            # lines a failregex matched that an ignoreregex (or a nofail match) let off: the page marks them
            "ignored_sample": [line[0] if isinstance(line, tuple) else line for line in stats.ignored_lines[:sample]]}


# ---- check ----------------------------------------------------------------------------------------------
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
    settings = {str(cmd[1]): str(cmd[2]) for cmd in stream if cmd[0] == "set" and len(cmd) == 3}
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
        if cmd[0] == "set" and len(cmd) > 2 and (cmd[2] in _JAIL_SKIP or cmd[2] in _EVALUATED):
            continue
        if cmd[0] == "add":
            jails.append(cmd[1])
            cmd = ["add", cmd[1], "polling"]  # no inotify/systemd resources for a dry run
        code, result = transmitter.proceed(cmd)
        if code != 0:
            command = " ".join(str(c) for c in cmd[:3])
            errors.append(f"jail {cmd[1] if len(cmd) > 1 else ''}: {command} failed: {result}")
    errors += [m for m in handler.messages if not any(m in e for e in errors) and not m.startswith("Command ")]
    return {"ok": not errors, "errors": errors, "jails": jails, "values": values, "server": settings,
            "brief": _brief(conf)}


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

    key, value = cmd[1], cmd[2] if len(cmd) > 2 else ""
    try:
        if key == "loglevel":
            str2LogLevel(value)
        elif key == "dbmaxmatches":  # (dbpurgeage is eval()ed by str2seconds: bangui checks it, see _EVALUATED)
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


# ---- catalogue ------------------------------------------------------------------------------------------
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


# A fail2ban time expression (f2bconfig/formula.py check_duration, the authority: bangui refuses any other value
# before fail2ban sees it): only such a value is handed to str2seconds, which eval()s it.
_TIME = re.compile(r"(?:[ ]*(?:[0-9]+(?:\.[0-9]+)?|[-+*/()]|(?:seconds?|sec?|ss?|minutes?|min?|mm?|hours?|hou?|hh?"
                   r"|days?|da|dd?|weeks?|wee?|ww?|months?|mon?|years?|yea?|yy?)(?![A-Za-z])))+[ ]*", re.IGNORECASE)


def _seconds(key, value):
    """Time options as whole seconds ("10m" -> 600), as the server would use them; others unchanged."""
    if key not in ("bantime", "findtime", "bantime.maxtime", "bantime.rndtime"):
        return value
    if not isinstance(value, str) or not _TIME.fullmatch(value) or "**" in value.replace(" ", ""):
        return value  # never eval()ed here
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


# ---- the command table ----------------------------------------------------------------------------------
_CONFIG_READERS = ("fail2ban.client.jailsreader",)
_CONFIG_ENGINE = ("fail2ban.client.configurator", "fail2ban.client.jailreader", "fail2ban.server.server",
                  "fail2ban.server.transmitter")
# command -> (the fail2ban modules it imports before reading its request, what answers the request)
COMMANDS = {
    "jail-stream": (_CONFIG_READERS, lambda req: jail_stream(req["config_dir"], req["jail"])),
    "jails": (_CONFIG_READERS, lambda req: configured_jails(req["config_dir"])),
    "filter-test": (("fail2ban.client.fail2banregex",), filter_test),
    "filter-tests": (("fail2ban.client.fail2banregex",), lambda req: {
        "results": [filter_test(dict(test, config_dir=req["config_dir"])) for test in req["tests"]]}),
    "check": (_CONFIG_ENGINE, lambda req: check(os.path.abspath(req["config_dir"]))),
    "catalogue": (_CONFIG_ENGINE, lambda req: catalogue(os.path.abspath(req["config_dir"]), req.get("jail"))),
}


def _answer(names, raw):
    try:
        request = json.loads(raw)
    except ValueError as exc:
        return _error("usage", f"the request on stdin is not JSON: {exc}")
    if not isinstance(request, dict):
        return _error("usage", "the request on stdin must be a JSON object")
    name = request.get("command", names[0])
    if name not in names:
        return _error("usage", f"this process answers {', '.join(names)}, not {name!r}")
    return COMMANDS[name][1](request)


def main(argv):
    """`engine.py COMMAND...`: one command, or several that share their imports (the runner keeps one spare for
    the configuration's check and catalogue); with several, the request names its own in "command"."""
    names = argv[1:]
    if not names or any(name not in COMMANDS for name in names):
        answer = _error("usage", __doc__)
    else:
        for name in names:  # warm up before the request arrives
            for module in COMMANDS[name][0]:
                importlib.import_module(module)
        raw = sys.stdin.read()
        if not raw:  # the runner discarded this spare (or went away): nothing to answer
            return 0
        answer = _answer(names, raw)
    json.dump(answer, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
