"""Shared pieces of the reliability suite: raw sockets, the server side of TCP connections, CLI runs, paging."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "reliability password"
ADMIN_ENV = {"BANGUI_ADMIN_PASSWORD": PASSWORD}

# Every example of issue 8 item 7 (each was banned with 200 before).
ISSUE_EXAMPLES = ["0.0.0.0/0", "::/0", "128.0.0.0/1", "::/1", "127.0.0.1", "::1", "127.0.0.0/8", "224.0.0.1",
                  "255.255.255.255", "fe80::1%eth0", "1.2.3.4/0.0.0.0"]

_TCP_STATES = {"01": "ESTABLISHED", "08": "CLOSE_WAIT", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT"}


def server_side_connections(port: int) -> list[str]:
    """States of the TCP connections whose LOCAL port is `port` (the server's side), from /proc/net/tcp*."""
    states = []
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port == port and parts[3] != "0A":  # 0A: LISTEN
                states.append(_TCP_STATES.get(parts[3], parts[3]))
    return states


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return data


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    from settings import NO_FAIL2BAN

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BANGUI_")}
    # never the host's fail2ban (issue 18, item 1): a command that reaches fail2ban names a private one
    full_env.update(BANGUI_FAIL2BAN_SOCKET=f"{NO_FAIL2BAN}/fail2ban.sock", BANGUI_FAIL2BAN_CONFIG_DIR=f"{NO_FAIL2BAN}/config")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", str(data_dir)], cwd=ROOT,
                          capture_output=True, text=True, env=full_env, timeout=60)


def admin_token(data_dir: Path, role: str = "admin") -> str:
    """A token made with the CLI (the host administrator's way), printed alone on stdout."""
    done = cli(data_dir, "token", "create", "--name", f"rel-{time.monotonic_ns()}", "--role", role)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def history_items(url: str, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "1000", **query}
        if cursor:
            params["cursor"] = cursor
        body = httpx.get(url + "/api/v1/history", params=params, headers=headers, timeout=30).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def until(check: Any, timeout: float = 30.0, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
