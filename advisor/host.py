"""The host as the advisor sees it: every file is read at BANGUI_HOST_ROOT + the path fail2ban (or the host)
uses, so a container with the host's /var/log, /proc/net, dpkg status and journal mounted under one
directory sees what fail2ban sees. Paths in findings and fixes are always the host's own (no prefix).

What cannot be seen is None ("unknown"), never a guess: a log check needs /var/log to be visible, a
socket check /proc/net/tcp, and so on.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin")
JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")


class HostView:
    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root or "/")

    def at(self, path: str) -> str:
        """The path bangui opens for the host's ``path`` (absolute, as fail2ban names it)."""
        return os.path.join(self.root, path.lstrip("/")) if self.root != "/" else path

    def visible(self, folder: str) -> bool:
        return os.path.isdir(self.at(folder))

    def logs_visible(self) -> bool:
        return self.visible("/var/log")

    def matches(self, pattern: str) -> list[str]:
        """Host paths matching fail2ban's ``pattern`` (a logpath may be a glob), as the host names them."""
        found = glob.glob(self.at(pattern)) if glob.has_magic(pattern) else [self.at(pattern)]
        cut = len(self.root.rstrip("/"))
        return sorted(p[cut:] if self.root != "/" else p for p in found if os.path.isfile(p))

    def read(self, path: str, limit: int = 4 * 1024 * 1024) -> str | None:
        try:
            with open(self.at(path), "rb") as fh:
                return fh.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return os.stat(self.at(path))
        except OSError:
            return None

    def binary(self, name: str) -> bool | None:
        """Is program ``name`` installed? None when no binary directory is visible."""
        dirs = [d for d in BIN_DIRS if self.visible(d)]
        if not dirs:
            return None
        return any(os.path.isfile(self.at(f"{d}/{name}")) for d in dirs)

    def journal(self) -> bool | None:
        """A systemd journal on the host? None when neither /var/log nor /run is visible."""
        if any(self.visible(d) for d in JOURNAL_DIRS):
            return True
        return None if not (self.logs_visible() or self.visible("/run")) else False

    def pid_dirs(self) -> list[Path]:
        proc = Path(self.at("/proc"))
        try:
            return [p for p in proc.iterdir() if p.name.isdigit()]
        except OSError:
            return []
