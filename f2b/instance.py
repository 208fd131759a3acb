"""A private fail2ban-server (real 1.0.2 binary, no root, no firewall) for tests and the demo mode.

`PrivateServer(base_dir)` writes a config dir under ``base_dir`` (its own socket, pidfile, dbfile,
logtarget; polling jails on their own log files; ``noop`` or ``dummy[target=<own file>]`` actions),
so several instances run side by side fully isolated. Filters come from ``/etc/fail2ban/filter.d``
when present, else the minimal copies under ``f2b/demo/``.

Why ``-f`` (foreground child) rather than ``-b``: we hold the `subprocess.Popen`, so stop/kill hit
exactly our process (no pidfile race), an early exit is seen at once and its output is kept in
``server.out``. The price (measured): the socket answers ~15 ms before the configuration is applied, so
`start` waits for fail2ban's own "Server ready" and then checks the jails (see `_wait_until_configured`).
A SIGTERM that arrives while fail2ban is still configuring itself hung it for >5 s in our runs.

Its socket is as powerful as the real one (fail2ban unpickles requests: whoever connects runs code as
this process's user); fail2ban creates it 0600 (umask 077).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from f2b.blocking import sync_call
from f2b.client import Fail2BanUnavailable

DEMO_DIR = Path(__file__).with_name("demo")
STOCK_DIR = Path("/etc/fail2ban")
FALLBACK_BINARY = "/usr/bin/fail2ban-server"
START_TIMEOUT = 15.0
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes + NUL; keep a margin


class PrivateServerError(RuntimeError):
    """fail2ban-server is missing, or failed to start/answer (the message carries its log tail)."""


@dataclass(frozen=True)
class JailSpec:
    """One jail of a private server. ``filter``: ``sshd`` or ``nginx-http-auth``.

    ``action``: ``noop`` (empty commands), ``dummy`` (stock action writing ``+ip``/``-ip`` lines to
    ``<base_dir>/<jail>.dummy``), ``slow`` (a shell ``sleep 0.002`` per ban/unban: bulk bans that take fail2ban
    seconds) or None for the server-wide default.
    """

    name: str
    filter: str = "sshd"
    action: str | None = None
    maxretry: int = 3
    findtime: int = 600
    bantime: int = 600


DEFAULT_JAILS: tuple[JailSpec, ...] = (
    JailSpec("sshd"),
    JailSpec("nginx-http-auth", filter="nginx-http-auth", maxretry=5, bantime=3600),
    JailSpec("sshd-dummy", action="dummy"),
)


def fail2ban_env() -> dict[str, str]:
    """The environment for fail2ban's own programs and interpreter (Debian's python3): ours without the PYTHON*
    variables of bangui's interpreter (a venv's paths would shadow or break fail2ban's imports)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def find_server_binary(fallback: str | None = None) -> str:
    """fail2ban-server on PATH, else Debian's path (PATH may lack /usr/bin under some service managers)."""
    fallback = FALLBACK_BINARY if fallback is None else fallback
    found = shutil.which("fail2ban-server")
    if not found and os.access(fallback, os.X_OK):
        found = fallback
    if not found:
        raise PrivateServerError("fail2ban-server not found: install it, e.g. `apt-get install fail2ban` "
                                 "(Debian/Ubuntu; it needs Python <= 3.11 as /usr/bin/python3)")
    return found


class PrivateServer:
    """A fail2ban-server child process with its own config, socket, pidfile, dbfile and logs.

    ``dbfile``: None = a fresh file in base_dir (history sync can read it), or e.g. ``":memory:"``.
    ``stock_dir``: where stock filters/actions are copied from (None = only the shipped minimal ones).
    """

    def __init__(self, base_dir: Path | str, jails: Sequence[JailSpec] = DEFAULT_JAILS, action: str = "noop",
                 *, dbfile: str | None = None, stock_dir: Path | None = STOCK_DIR) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.jails = tuple(jails)
        self.action = action
        self.stock_dir = stock_dir
        self.conf_dir = self.base_dir / "conf"
        self.pidfile = self.base_dir / "fail2ban.pid"
        self.logfile = self.base_dir / "fail2ban.log"
        self.outfile = self.base_dir / "server.out"
        self.dbfile = dbfile or str(self.base_dir / "fail2ban.sqlite3")
        self._sock_dir: Path | None = None  # a short temp dir we own, when base_dir is too long
        sock = self.base_dir / "f2b.sock"
        if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
            short_root = "/tmp" if os.path.isdir("/tmp") else None  # $TMPDIR may be long as well
            self._sock_dir = Path(tempfile.mkdtemp(prefix="f2b-", dir=short_root))
            sock = self._sock_dir / "f2b.sock"
        self.socket = str(sock)
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: TextIO | None = None

    # ---- files -----------------------------------------------------------------------------------
    def log_path(self, jail: str) -> Path:
        """The log file ``jail`` watches."""
        return self.base_dir / "logs" / f"{jail}.log"

    def dummy_target(self, jail: str) -> Path:
        """Where the ``dummy`` action of ``jail`` records ``+ip``/``-ip`` lines."""
        return self.base_dir / f"{jail}.dummy"

    def log_text(self, tail: int = 60) -> str:
        """Last lines of fail2ban's log and of the process output, for failure messages."""
        parts = []
        for path in (self.logfile, self.outfile):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"--- {path} ---\n" + "\n".join(lines))
        return "\n".join(parts) or "(no fail2ban output)"

    def append_failures(self, jail: str, ip: str, n: int = 1) -> None:
        """Append ``n`` current-timestamp failure lines for ``ip`` to the log ``jail`` watches.

        Lines must be current (older than findtime are silently dropped by fail2ban); with polling a ban
        follows ~0.3 s (max ~0.7 s measured) after the maxretry-th line.
        """
        spec = self._spec(jail)
        now = datetime.now().astimezone()
        if spec.filter == "nginx-http-auth":
            stamp = now.strftime("%Y/%m/%d %H:%M:%S")
            line = (f'{stamp} [error] 1234#0: *{{i}} user "admin": password mismatch, client: {ip}, '
                    'server: example.com, request: "GET /admin HTTP/1.1", host: "example.com"')
        else:
            stamp = now.isoformat(timespec="seconds")
            line = f"{stamp} demo sshd[{{i}}]: Failed password for root from {ip} port 40000 ssh2"
        with self.log_path(jail).open("a") as fh:
            fh.write("".join(line.format(i=1000 + i) + "\n" for i in range(n)))

    def write_config(self) -> None:
        """(Re)write the config dir and create the watched log files (they must exist before start)."""
        for sub in ("filter.d", "action.d"):
            (self.conf_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.base_dir / "logs").mkdir(exist_ok=True)
        filters = {spec.filter for spec in self.jails}
        for name in filters | ({"common"} if "sshd" in filters else set()):
            self._install("filter.d", name)
        self._install("action.d", "noop", stock=False)
        self._install("action.d", "dummy")
        self._install("action.d", "slow", stock=False)
        (self.conf_dir / "fail2ban.conf").write_text(
            "[Definition]\nloglevel = INFO\n"
            f"logtarget = {self.logfile}\nsyslogsocket = auto\nsocket = {self.socket}\n"
            f"pidfile = {self.pidfile}\ndbfile = {self.dbfile}\ndbpurgeage = 1d\nallowipv6 = auto\n")
        # ignoreself/ignoreip off so documentation addresses and 127.0.0.1 can be banned in tests.
        lines = ["[DEFAULT]", "usedns = no", "ignoreself = false", "ignoreip =", "backend = polling", ""]
        for spec in self.jails:
            self.log_path(spec.name).touch()
            lines += [f"[{spec.name}]", "enabled = true", f"filter = {spec.filter}",
                      f"logpath = {self.log_path(spec.name)}", f"maxretry = {spec.maxretry}",
                      f"findtime = {spec.findtime}", f"bantime = {spec.bantime}",
                      f"action = {self._action_line(spec)}", ""]
        (self.conf_dir / "jail.local").write_text("\n".join(lines))

    # ---- process ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once every configured jail is running."""
        if self.running:
            return
        binary = find_server_binary()
        self.write_config()
        if self._sock_dir is not None:
            self._sock_dir.mkdir(mode=0o700, exist_ok=True)
        self._clear_stale_socket()
        # unbuffered: fail2ban prints "Server ready" on its stdout
        env = fail2ban_env() | {"PYTHONUNBUFFERED": "1"}
        log_mark = self.logfile.stat().st_size if self.logfile.exists() else 0
        self._out = self.outfile.open("w")
        self._proc = subprocess.Popen(
            [binary, "-f", "-c", str(self.conf_dir), "-s", self.socket, "-p", str(self.pidfile)],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_until_configured(timeout, log_mark)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (clean: fail2ban removes socket and pidfile in 0.2-0.6 s); SIGKILL after ``timeout``."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reap()
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, like a crash: the socket file stays behind (connections are then refused)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._reap()

    def close(self) -> None:
        """Fast teardown for tests: SIGKILL if running (a clean shutdown waits 0.2-0.6 s for fail2ban's
        polling threads), then remove the socket file and our short socket dir."""
        self.kill()
        Path(self.socket).unlink(missing_ok=True)
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)

    def restart(self, fresh_db: bool = False) -> None:
        """Stop and start again; ``fresh_db`` deletes the dbfile first (else old bans are restored)."""
        self.stop()
        if fresh_db and self.dbfile != ":memory:":
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(self.dbfile + suffix).unlink(missing_ok=True)
        self.start()

    def __enter__(self) -> PrivateServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals -------------------------------------------------------------------------------
    def _spec(self, jail: str) -> JailSpec:
        return next(s for s in self.jails if s.name == jail)

    def _action_line(self, spec: JailSpec) -> str:
        action = spec.action or self.action
        if action == "dummy":
            return f'dummy[target="{self.dummy_target(spec.name)}"]'  # its default target is under /var/run
        if action not in ("noop", "slow"):
            raise ValueError(f"unsupported action {action!r} for a private server: use noop, dummy or slow")
        return action

    def _install(self, sub: str, name: str, stock: bool = True) -> None:
        source = self.stock_dir / sub / f"{name}.conf" if stock and self.stock_dir else None
        if source is None or not source.is_file():
            source = DEMO_DIR / sub / f"{name}.conf"
        shutil.copyfile(source, self.conf_dir / sub / f"{name}.conf")

    def _clear_stale_socket(self) -> None:
        # After SIGKILL the socket file stays and fail2ban refuses to start without -x. We remove it
        # ourselves only when nothing answers on it (-x would also steal a LIVE server's socket).
        if not os.path.exists(self.socket):
            return
        try:
            sync_call(self.socket, "ping", timeout=1.0)
        except Fail2BanUnavailable as exc:
            if exc.details["reason"] == "refused":
                os.unlink(self.socket)
                return
        raise PrivateServerError(f"another fail2ban server already answers on {self.socket}")

    def _wait_until_configured(self, timeout: float, log_mark: int) -> None:
        # With -f, fail2ban configures itself over its own socket: one "server-stream" command with every
        # jail, then "server-status", whose answer it prints as "Server ready", even after a failed stream
        # (whose "NOK:" it logs first). The socket answers earlier, and between a failed stream and the
        # exit `status` lists jails that never started: so wait for "Server ready", then check both.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise PrivateServerError(f"fail2ban-server exited with code {self._proc.returncode} "
                                         f"during start-up\n{self.log_text()}")
            if b"Server ready" in self.outfile.read_bytes():
                with self.logfile.open("rb") as log:
                    log.seek(log_mark)
                    if b"NOK:" in log.read():
                        raise PrivateServerError(f"fail2ban rejected its configuration\n{self.log_text()}")
                code, status = sync_call(self.socket, "status", timeout=2.0)
                listed = str(dict(status).get("Jail list", "")) if code == 0 else ""
                missing = {spec.name for spec in self.jails} - {n.strip() for n in listed.split(",")}
                if not missing:
                    return
                raise PrivateServerError(f"fail2ban lacks jails {sorted(missing)}\n{self.log_text()}")
            time.sleep(0.005)
        raise PrivateServerError(f"fail2ban-server was not ready within {timeout:g}s\n{self.log_text()}")

    def _reap(self) -> None:
        self._proc = None
        if self._out is not None:
            self._out.close()
            self._out = None


@contextlib.contextmanager
def started(base_dir: Path | str, jails: Sequence[JailSpec] = DEFAULT_JAILS) -> Iterator[PrivateServer]:
    """A started private server, torn down fast (`close`) however the block ends, a failed start included."""
    server = PrivateServer(base_dir, jails)
    try:
        server.start()
        yield server
    finally:
        server.close()
