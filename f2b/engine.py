"""Run by fail2ban's OWN interpreter (Debian's python3), never imported by bangui: fail2ban's package is
importable only there (see f2b/engine_client.py, which starts it with a deadline and reads its answer).

    python3 engine.py jail-stream CONFIG_DIR JAIL   -> {"stream": [[cmd...], ...]}
    python3 engine.py jails CONFIG_DIR              -> {"jails": [name, ...]} (enabled or not)
    python3 engine.py filter-test < request.json    -> {"lines_checked", "matched", ...}

`filter-test` imports fail2ban BEFORE it reads its request: a runner keeps one such process ready (the
imports take ~0.4 s, more than the test of 10,000 lines), and one process serves one request only, so
a deadline can simply kill it.

Every answer is ONE JSON document on stdout; a failure is {"error": {"code", "message"}} (exit 0: the
runner tells a crash, a kill or a timeout by the exit status, and an answered error by this document).

`jail-stream` is what `fail2ban-client reload JAIL` computes client-side before it sends
`reload JAIL [] <stream>`: fail2ban's own readers (jail.conf, jail.d/*.conf, jail.local, jail.d/*.local,
filter and action files) turned into the server's command stream for that one jail. It is built with
force_enable, so a configured-but-disabled jail can be started and a reload never drops a jail.

`filter-test` drives fail2ban-regex's own `Fail2banRegex` (same option defaults, same filter loading,
same line classification), so its counts are fail2ban-regex's; it only also keeps each match's details.
"""

import json
import sys


def _error(code, message):
    return {"error": {"code": code, "message": message}}


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
    import logging

    errors = []

    class Collect(logging.Handler):
        def emit(self, record):
            errors.append(record.getMessage())

    log = logging.getLogger("fail2ban")
    log.addHandler(Collect(logging.ERROR))
    log.propagate = False
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
        return _error("config_invalid", "; ".join(problems + errors) or f"jail {jail!r} is misconfigured")
    return {"stream": stream}


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

    args = ["--print-all-missed", "-c", req["config_dir"]]
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

        with open(req["logpath"], encoding="utf-8", errors="replace") as fh:
            lines = deque(fh, maxlen=int(req["max_lines"]))
    else:
        lines = req["lines"]
    tester.process(lines)
    stats = tester._line_stats
    return {"lines_checked": stats.tested, "matched": stats.matched, "ignored": stats.ignored,
            "missed": stats.missed, "matches": matches, "matches_truncated": stats.matched > len(matches),
            "missed_sample": stats.missed_lines[:sample], "elapsed_ms": round(tester._time_elapsed * 1000, 1)}


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "jail-stream" and len(argv) == 4:
        answer = jail_stream(argv[2], argv[3])
    elif command == "jails" and len(argv) == 3:
        answer = configured_jails(argv[2])
    elif command == "filter-test":
        import fail2ban.client.fail2banregex  # noqa: F401  (warm up before the request arrives)

        raw = sys.stdin.read()
        if not raw:  # the runner discarded this spare (or died): nothing to answer
            return 0
        answer = filter_test(json.loads(raw))
    else:
        answer = _error("usage", __doc__)
    json.dump(answer, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
