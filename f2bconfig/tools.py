"""fail2ban's own programs, run as subprocesses: the strict config test and catalogue (`f2b_helper.py` under
fail2ban's interpreter) and `fail2ban-client reload`. fail2ban's package is importable only by its own
Python (Debian's python3), so it is never imported here.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from errors import Unavailable

HELPER = Path(__file__).with_name("f2b_helper.py")
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


def interpreter() -> str:
    """The Python that runs fail2ban-client (its shebang), the only one that can import fail2ban."""
    with open(client_binary(), "rb") as fh:
        first = fh.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and parts[0].endswith("/env") and len(parts) > 1:
            return shutil.which(parts[1]) or parts[1]
        if parts:
            return parts[0]
    return "/usr/bin/python3"


def _env() -> dict[str, str]:
    # Our venv's PYTHON* settings must not leak into fail2ban's interpreter.
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"LC_ALL": "C.UTF-8"}


class _Spare:
    """One helper process started ahead of need, its interpreter up and fail2ban imported (~90 ms of CPU
    off the critical path of the next change). Started after a first use only, so a bangui that never
    changes the configuration never has one; closed (stdin EOF: it exits) at interpreter exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        atexit.register(self.close)

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen([interpreter(), str(HELPER), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())

    def take(self) -> subprocess.Popen[str]:
        """The waiting spare (a fresh one when none is alive); a new spare is started for next time."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    proc.communicate()  # reap it
                proc = self._start()
            self._proc = self._start()
            return proc

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.communicate("", timeout=5)  # EOF: it exits
            if proc.poll() is None:
                proc.kill()
                proc.wait()


_spare = _Spare()


def run_helper(mode: str, config_dir: Path, *extra: str) -> dict[str, Any]:
    proc = _spare.take()
    try:
        stdout, stderr = proc.communicate(json.dumps([mode, str(config_dir), *extra]) + "\n", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": False, "errors": [f"fail2ban's reading of the configuration took over {TIMEOUT:g}s"],
                "jails": []}
    try:
        result: dict[str, Any] = json.loads(stdout)
    except ValueError:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        return {"ok": False, "errors": ["fail2ban could not read the configuration: " + " | ".join(tail)],
                "jails": []}
    return result


def reload(config_dir: Path, socket: str, jail: str | None = None) -> tuple[bool, str]:
    """`fail2ban-client -c DIR -s SOCK reload [JAIL]`: fail2ban re-reads DIR client-side and sends the
    server the whole command stream (the raw socket `reload` without it would delete jails)."""
    args = [client_binary(), "-c", str(config_dir), "-s", socket, "reload"] + ([jail] if jail else [])
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
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
