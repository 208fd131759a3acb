"""Run fail2ban's own code (its config readers and engine, fail2ban-regex's engine) in fail2ban's interpreter.

fail2ban's Python package is importable only by Debian's python3 (the one in fail2ban-server's #! line),
so `f2b/engine.py` runs there as a child process: `RUNNER.run(command, request, timeout)` starts it,
sends the request, and kills it at the deadline. Why a process per request: a deadline can then stop
anything (a regex with catastrophic backtracking holds its thread and the GIL; only a kill stops it),
and nothing of one request's state survives into another.

A caller that asks for it (`spare=True`: filter tests, the configuration check and catalogue) gets a
warm spare: after its first request the runner keeps ONE process ready (one for the filter tests, one
for the configuration's check and catalogue: `SPARE_OF`), interpreter up and fail2ban imported, waiting
on stdin (the filter engine's imports take ~0.15-0.4 s, more than testing 10,000 lines; the config
engine's ~50 ms plus the interpreter's start). A spare exits by itself when
bangui goes away (EOF); a bangui that never runs a command never has its spare. Commands run rarely
(`jail-stream`, `jails`: starting a jail) run one-shot. Children run through blocking `subprocess` in
worker threads (never on the event loop), at most `MAX_TESTS` filter tests at once per process; the rest
wait their turn.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import subprocess
import threading
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

import errors
from f2b import instance
from f2b.client import JailNotFound
from f2b.instance import PrivateServerError, find_server_binary

log = logging.getLogger("bangui.engine")

ENGINE = Path(__file__).with_name("engine.py")
MAX_TESTS = 2  # concurrent filter tests per process (each takes a core)
CONFIG_TIMEOUT = 30.0  # reading a full /etc/fail2ban takes ~0.5 s


class EngineUnavailable(errors.Unavailable):
    code = "fail2ban_engine_unavailable"


class ConfigInvalid(errors.Rejected):
    """fail2ban's own readers or engine rejected a configuration (a staged change is then not applied)."""

    code = "config_invalid"


class FilterTimeout(errors.Rejected):
    """A filter test did not answer in time and was killed (the code says why it usually happens)."""

    code = "filter_timeout"


class ConfigReadTimeout(errors.NoAnswer):
    """fail2ban's reading of its configuration did not answer in time and was killed."""

    code = "config_read_timeout"


class EngineFailed(errors.Failed):
    """The child crashed or answered no JSON document; ``stderr``: the last lines it wrote, for the server's log
    only (a traceback never goes into a response, issue 20 item 10)."""

    code = "fail2ban_engine_error"

    def __init__(self, message: str, stderr: list[str], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.stderr = stderr


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


def fail2ban_env() -> dict[str, str]:
    """`f2b.instance.fail2ban_env` with a UTF-8 locale, so fail2ban reads its files as UTF-8 whatever bangui's."""
    return instance.fail2ban_env() | {"LC_ALL": "C.UTF-8"}


def _spawn(commands: tuple[str, ...]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen([interpreter(), str(ENGINE), *commands], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=fail2ban_env())
    except OSError as exc:
        raise EngineUnavailable(f"cannot run fail2ban's interpreter {interpreter()}: {exc.strerror}; "
                                "install fail2ban (apt-get install fail2ban)") from None


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End a process that has no request: EOF on stdin (it exits), a kill when it does not."""
    with contextlib.suppress(Exception):
        proc.communicate(b"", timeout=5)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _what(command: str) -> str:
    return "the filter test" if command == "filter-test" else f"reading fail2ban's configuration ({command})"


def _timeout(command: str, timeout: float) -> errors.AppError:
    if command == "filter-test":
        return FilterTimeout(f"the filter test did not finish within {timeout:g} s and was stopped (a regex with "
                             "catastrophic backtracking, e.g. nested quantifiers like (a+)+?)",
                             details={"timeout_s": timeout})
    return ConfigReadTimeout(f"{_what(command)} did not finish within {timeout:g} s and was stopped (a log path "
                             "on a slow or hung file system? fail2ban's readers expand every logpath)",
                             details={"timeout_s": timeout})


def _answer(proc: subprocess.Popen[bytes], payload: bytes, timeout: float, command: str) -> dict[str, Any]:
    """Feed ``payload``, wait at most ``timeout`` s (then kill: FilterTimeout or ConfigReadTimeout) and decode
    the answer."""
    what = _what(command)
    try:
        out, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise _timeout(command, timeout) from None
    finally:
        if proc.poll() is None:  # cancelled or failed mid-way: never leave the child running
            proc.kill()
            proc.wait()
    try:
        answer = json.loads(out) if proc.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = (err or out).decode(errors="replace").strip().splitlines()[-5:]
        log.error("%s failed in fail2ban's interpreter (exit %s): %s", what, proc.returncode, " | ".join(tail))
        raise EngineFailed(f"{what} failed in fail2ban's interpreter (exit {proc.returncode}); the server log has "
                           "the details", tail, details={"exit": proc.returncode})
    failure = answer.get("error")
    if failure:
        code, message = failure.get("code"), str(failure.get("message"))
        if code == "jail_not_found":
            raise JailNotFound(message)
        if code == "config_invalid":
            raise ConfigInvalid(message)
        if code == "log_unreadable":
            raise errors.Forbidden(message, code="log_unreadable")
        raise errors.InvalidInput(message, code=str(code))
    return answer


# The commands one warm spare serves: the configuration's check and catalogue import the same modules, so they
# share one spare (~20 MB less per worker than one each).
SPARE_OF = {"check": ("check", "catalogue"), "catalogue": ("check", "catalogue")}


class Runner:
    """`f2b/engine.py` requests, one process each, with one warm spare per group of commands that asks for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spares: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}

    def run(self, command: str, request: dict[str, Any], timeout: float, *, spare: bool = False) -> dict[str, Any]:
        """Answer ``request`` with ``command`` (see f2b/engine.py); the child is killed after ``timeout`` s.
        Blocking: call it in a worker thread.

        :raises FilterTimeout: a filter test killed at the deadline (ConfigReadTimeout: any other command).
        :raises EngineFailed: the child crashed or answered no JSON document.
        :raises EngineUnavailable: fail2ban's interpreter cannot be found or run.
        :raises JailNotFound, ConfigInvalid, InvalidInput: the engine's answer was an error.
        """
        group = SPARE_OF.get(command, (command,))
        proc = self._take(group) if spare else None
        payload = json.dumps({**request, "command": command}).encode()
        try:
            return _answer(proc or _spawn(group), payload, timeout, command)
        finally:
            if spare:
                self._refill(group)

    def _take(self, group: tuple[str, ...]) -> subprocess.Popen[bytes] | None:
        with self._lock:
            proc = self._spares.pop(group, None)
        if proc is not None and proc.poll() is not None:  # died while waiting: reap it, start afresh
            _end(proc)
            return None
        return proc

    def _refill(self, group: tuple[str, ...]) -> None:
        with self._lock:
            if group not in self._spares:
                self._spares[group] = _spawn(group)

    def close(self) -> None:
        """End the spares (each exits on EOF)."""
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for proc in spares:
            _end(proc)


RUNNER = Runner()
atexit.register(RUNNER.close)
_limiters: dict[int, anyio.CapacityLimiter] = {}  # filter tests at once, per event loop (tests run several)


async def filter_test(request: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Run one filter test (see f2b/engine.py for the request) on the warm spare; killed after ``seconds``."""
    limiter = _limiters.setdefault(id(asyncio.get_running_loop()), anyio.CapacityLimiter(MAX_TESTS))
    return await anyio.to_thread.run_sync(lambda: RUNNER.run("filter-test", request, seconds, spare=True),
                                          limiter=limiter)


async def jail_stream(config_dir: str, jail: str) -> list[Any]:
    """The command stream fail2ban's readers build for ``jail`` (enabled or not) from ``config_dir``.

    Raises JailNotFound when no configuration defines the jail, ConfigInvalid when fail2ban's readers
    reject it (e.g. no log file matches its logpath).
    """
    request = {"config_dir": config_dir, "jail": jail}
    answer = await anyio.to_thread.run_sync(RUNNER.run, "jail-stream", request, CONFIG_TIMEOUT)
    return list(answer["stream"])


async def configured_jails(config_dir: str) -> list[str]:
    """Every jail ``config_dir`` defines, enabled or not."""
    answer = await anyio.to_thread.run_sync(RUNNER.run, "jails", {"config_dir": config_dir}, CONFIG_TIMEOUT)
    return [str(j) for j in answer["jails"]]


def filter_tests(config_dir: str, tests: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Several filter tests in ONE child (the advisor's check of every enabled jail: one interpreter start and
    one import of fail2ban-regex instead of one per jail). Blocking: call it in a worker thread."""
    answer = RUNNER.run("filter-tests", {"config_dir": config_dir, "tests": tests}, seconds)
    return [dict(r) for r in answer["results"]]
