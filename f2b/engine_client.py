"""Run fail2ban's own code (its config readers, fail2ban-regex's engine) in fail2ban's interpreter.

fail2ban's Python package is importable only by Debian's python3 (the one in fail2ban-server's #! line),
so `f2b/engine.py` runs there as a child process and answers one JSON document. Why a process per
request: a deadline can then stop anything (a regex with catastrophic backtracking holds its thread
and the GIL; only a kill stops it), and nothing of one request's state survives into another.

The filter tester keeps ONE spare engine per bangui process that has already imported fail2ban (that
import takes ~0.4 s, more than testing 10,000 lines); a spare that waits on stdin exits by itself when
bangui goes away (EOF). Children run through blocking `subprocess` in worker threads (never on the
event loop), at most `MAX_TESTS` filter tests at once per process; the rest wait their turn.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import subprocess
import threading
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

import errors
from f2b.client import JailNotFound
from f2b.instance import PrivateServerError, find_server_binary

ENGINE = Path(__file__).with_name("engine.py")
MAX_TESTS = 2  # concurrent filter tests per process (each takes a core)
CONFIG_TIMEOUT = 30.0  # reading a full /etc/fail2ban takes ~0.5 s


class EngineUnavailable(errors.Unavailable):
    code = "fail2ban_engine_unavailable"


class ConfigInvalid(errors.AppError):
    status, code = 422, "config_invalid"


class FilterTimeout(errors.AppError):
    status, code = 422, "filter_timeout"


@cache
def interpreter() -> str:
    """fail2ban's python: the #! interpreter of fail2ban-server (Debian: /usr/bin/python3)."""
    try:
        binary = find_server_binary()
    except PrivateServerError as exc:
        raise EngineUnavailable(str(exc)) from None
    with open(binary, "rb") as fh:
        first = fh.readline().decode(errors="replace").strip()
    parts = first[2:].split() if first.startswith("#!") else []
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return parts[1]
    return parts[0] if parts else "/usr/bin/python3"


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    # Our interpreter's PYTHON* variables (venv paths) must not reach fail2ban's interpreter.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        return subprocess.Popen([interpreter(), str(ENGINE), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise EngineUnavailable(f"cannot run fail2ban's interpreter {interpreter()}: {exc.strerror}; "
                                "install fail2ban (apt-get install fail2ban)") from None


def _answer(proc: subprocess.Popen[bytes], data: bytes | None, timeout: float, what: str) -> dict[str, Any]:
    """Feed ``data``, wait at most ``timeout`` s (then kill: FilterTimeout) and decode the answer."""
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise FilterTimeout(f"{what} did not finish within {timeout:g} s and was stopped (a regex with "
                            "catastrophic backtracking, e.g. nested quantifiers like (a+)+?)",
                            details={"timeout_s": timeout}) from None
    finally:
        if proc.poll() is None:  # cancelled or failed mid-way: never leave the child running
            proc.kill()
            proc.wait()
    try:
        answer = json.loads(out) if proc.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise errors.AppError(f"{what} failed in fail2ban's interpreter (exit {proc.returncode})",
                              code="fail2ban_engine_error", status=500, details={"stderr": tail})
    failure = answer.get("error")
    if failure:
        code, message = failure.get("code"), str(failure.get("message"))
        if code == "jail_not_found":
            raise JailNotFound(message)
        if code == "config_invalid":
            raise ConfigInvalid(message)
        raise errors.InvalidInput(message, code=str(code))
    return answer


class FilterEngine:
    """Filter tests in one-shot engine processes, with one warm spare kept ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: subprocess.Popen[bytes] | None = None
        self._limiters: dict[int, anyio.CapacityLimiter] = {}  # per event loop (tests run several)

    async def test(self, request: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Run one filter test (see f2b/engine.py for the request); killed after ``seconds``."""
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.setdefault(loop, anyio.CapacityLimiter(MAX_TESTS))
        payload = json.dumps(request).encode()
        return await anyio.to_thread.run_sync(self._run, payload, seconds, limiter=limiter)

    def _run(self, payload: bytes, timeout: float) -> dict[str, Any]:
        with self._lock:
            proc, self._spare = self._spare, None
        if proc is None or proc.poll() is not None:
            proc = _spawn("filter-test")
        try:
            return _answer(proc, payload, timeout, "the filter test")
        finally:
            self._refill()

    def _refill(self) -> None:
        with self._lock:
            if self._spare is None or self._spare.poll() is not None:
                self._spare = _spawn("filter-test")

    def close(self) -> None:
        """End the spare (it exits on EOF)."""
        with self._lock:
            proc, self._spare = self._spare, None
        if proc is not None:
            proc.communicate(b"", timeout=5)


FILTERS = FilterEngine()
atexit.register(FILTERS.close)


def _config_call(*args: str) -> dict[str, Any]:
    return _answer(_spawn(*args), b"", CONFIG_TIMEOUT, f"reading fail2ban's configuration ({args[0]})")


async def jail_stream(config_dir: str, jail: str) -> list[Any]:
    """The command stream fail2ban's readers build for ``jail`` (enabled or not) from ``config_dir``.

    Raises JailNotFound when no configuration defines the jail, ConfigInvalid when fail2ban's readers
    reject it (e.g. no log file matches its logpath).
    """
    answer = await anyio.to_thread.run_sync(_config_call, "jail-stream", config_dir, jail)
    return list(answer["stream"])


async def configured_jails(config_dir: str) -> list[str]:
    """Every jail ``config_dir`` defines, enabled or not."""
    answer = await anyio.to_thread.run_sync(_config_call, "jails", config_dir)
    return [str(j) for j in answer["jails"]]
