"""A private fail2ban-server on a COPY of the Debian package's configuration (`/etc/fail2ban`): every stock
jail, filter and action file, plus the three files a host's admin would add (here: test-safe ones):

- `action.d/noop.conf`: an action whose commands are empty (nothing touches a firewall);
- `fail2ban.local`: this instance's own socket, pidfile, dbfile and log file;
- `jail.local`: `banaction = noop`, polling backends, and each wanted jail enabled on its own log file.

The configuration is written once (first start) and kept across restarts, so what a test changed in it
is what fail2ban reads when it comes back. Used by the configuration tests and bench/config_change.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from f2b.instance import DEMO_DIR, STOCK_DIR, JailSpec, PrivateServer, PrivateServerError

STOCK_JAILS: tuple[JailSpec, ...] = (
    JailSpec("sshd"),
    JailSpec("nginx-http-auth", filter="nginx-http-auth"),
)


class StockConfigServer(PrivateServer):
    def __init__(self, base_dir: Path | str, jails: Sequence[JailSpec] = STOCK_JAILS,
                 stock_dir: Path = STOCK_DIR) -> None:
        super().__init__(base_dir, jails, stock_dir=stock_dir)

    def write_config(self) -> None:
        (self.base_dir / "logs").mkdir(parents=True, exist_ok=True)
        for spec in self.jails:
            self.log_path(spec.name).touch()
        if (self.conf_dir / "jail.conf").exists():
            return  # keep what the test changed
        if self.stock_dir is None or not (self.stock_dir / "jail.conf").is_file():
            raise PrivateServerError(f"no stock fail2ban configuration at {self.stock_dir}: install fail2ban "
                                     "(apt-get install fail2ban)")
        # the package's files only: a host's own .local files (bangui's overrides included) stay out
        shutil.copytree(self.stock_dir, self.conf_dir, symlinks=True, ignore=shutil.ignore_patterns("*.local"))
        shutil.copyfile(DEMO_DIR / "action.d" / "noop.conf", self.conf_dir / "action.d" / "noop.conf")
        (self.conf_dir / "fail2ban.local").write_text(
            f"[Definition]\nloglevel = INFO\nlogtarget = {self.logfile}\nsocket = {self.socket}\n"
            f"pidfile = {self.pidfile}\ndbfile = {self.dbfile}\nallowipv6 = auto\n")
        lines = ["[DEFAULT]", "banaction = noop", "banaction_allports = noop", "backend = polling",
                 "usedns = no", "ignoreself = false", "ignoreip =", ""]
        for spec in self.jails:
            lines += [f"[{spec.name}]", "enabled = true", "backend = polling",
                      f"logpath = {self.log_path(spec.name)}", ""]
        (self.conf_dir / "jail.local").write_text("\n".join(lines))


@contextmanager
def stock_started(base_dir: Path | str, jails: Sequence[JailSpec] = STOCK_JAILS) -> Iterator[StockConfigServer]:
    server = StockConfigServer(base_dir, jails)
    try:
        server.start()
        yield server
    finally:
        server.close()
