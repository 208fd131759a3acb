"""fail2ban's own code and programs, run as subprocesses: the strict config test and the catalogue
(`check` and `catalogue` of f2b/engine.py, run by `f2b.engine_client`'s runner in fail2ban's interpreter)
and `fail2ban-client reload`. fail2ban's package is importable only by its own Python (Debian's python3),
so it is never imported here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from errors import Unavailable
from f2b.engine_client import CONFIG_TIMEOUT, RUNNER, ConfigReadTimeout, EngineFailed, fail2ban_env

CLIENT_FALLBACK = "/usr/bin/fail2ban-client"
TIMEOUT = 30.0
MAX_LINE = 500


class ToolMissing(Unavailable):
    code = "fail2ban_tools_missing"


def client_binary() -> str:
    found = shutil.which("fail2ban-client") or (CLIENT_FALLBACK if os.access(CLIENT_FALLBACK, os.X_OK) else None)
    if not found:
        raise ToolMissing("fail2ban-client not found: bangui validates configuration changes with fail2ban's own "
                          "tools; install fail2ban on this host (e.g. `apt-get install fail2ban`)")
    return found


def read_config(command: str, config_dir: Path, jail: str | None = None) -> dict[str, Any]:
    """fail2ban's reading of ``config_dir``: `check` or `catalogue` (of ``jail`` only, when given), on the
    runner's warm spare (interpreter up, fail2ban imported: ~90 ms of CPU off the critical path of the next
    change; started after a first use only). A timeout or a crash is answered as a failed check."""
    client_binary()  # no fail2ban tools: 503 fail2ban_tools_missing, as for the reload that follows
    request = {"config_dir": str(config_dir)} | ({"jail": jail} if jail else {})
    try:
        return RUNNER.run(command, request, CONFIG_TIMEOUT, spare=True)
    except ConfigReadTimeout:
        return {"ok": False, "errors": [f"fail2ban's reading of the configuration took over {CONFIG_TIMEOUT:g}s"],
                "jails": []}
    except EngineFailed as exc:
        tail = " | ".join(exc.stderr[-1:])  # the exception's own line, never the traceback
        return {"ok": False, "errors": [f"fail2ban could not read the configuration: {tail}"], "jails": []}


def reload(config_dir: Path, socket: str, jail: str | None = None, restart: bool = False) -> tuple[bool, str]:
    """`fail2ban-client -c DIR -s SOCK reload [--restart] [JAIL]`: fail2ban re-reads DIR client-side and sends
    the server the whole command stream (the raw socket `reload` without it would delete jails). With
    ``restart`` the jail is stopped and started fresh: the only way to reset an option no file names."""
    args = ([client_binary(), "-c", str(config_dir), "-s", socket, "reload"] + (["--restart"] if restart else [])
            + ([jail] if jail else []))
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=fail2ban_env(),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"fail2ban-client reload did not finish within {TIMEOUT:g}s"
    output = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                       if " WARNING " not in line).strip()
    return proc.returncode == 0, output


def log_tail(logtarget: str | None, lines: int = 30) -> list[str]:
    """The last lines of fail2ban's log file (when it logs to a file)."""
    if not logtarget or not logtarget.startswith("/"):
        return []
    try:
        with open(logtarget, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            tail = fh.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
    # fail2ban logs a failed reload with its whole command stream on one line: keep each line short
    return [line if len(line) <= MAX_LINE else line[:MAX_LINE] + " ..." for line in tail]
