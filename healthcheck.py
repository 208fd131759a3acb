"""`bangui healthcheck`: exit 0 when the local bangui answers its liveness (or readiness) route, else 1.

It is the container's HEALTHCHECK (exec form, no shell, no curl in the image). It reads the same settings as
`bangui serve`: the BANGUI_* environment, its own flags, and the flags of the `bangui serve` running in the
container (`podman run IMAGE --bind [::1]:9000`). The address it checks is, in this order: its own `--bind`,
the address the server of its data dir (env or flag, else the container's serve's --data-dir) records in
`serving.json` while it runs (whatever the runtime: with `podman run --read-only` there is no
/run/.containerenv, so a container is also told by its PID 1, see in_container; a record
whose pid is gone or now names a process started at another time is a dead server's and ignored), the
record or `--bind` of the container's `bangui serve` (PID 1 or its child), then the settings. A
wildcard bind (0.0.0.0, ::) is checked on the matching loopback address (`::` on 127.0.0.1 too, for a
container without IPv6).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import time
from pathlib import Path

from settings import FIELDS, Settings

_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1", "*": "127.0.0.1"}


def target(bind: str) -> tuple[str, int]:
    """(host to connect to, port) for a HOST:PORT bind, IPv6 in brackets or not."""
    host, _, port = bind.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return _WILDCARD.get(host, host), int(port)


def _serve_argv(proc: Path) -> list[str]:
    """The argv of the oldest `bangui serve` process visible here: PID 1 in a container, or PID 1's child
    under an init (`--init`, compose's `init: true`); [] when there is none."""
    try:
        pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    except OSError:
        return []
    for pid in pids:
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
            # only PID 1 or its child: a host (or a CI container) may run many servers of other data dirs
            if pid != 1 and (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1] != "1":
                continue
        except (OSError, IndexError):
            continue
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if _is_serve(argv):
            return argv
    return []


_CONTAINER_INITS = {"catatonit", "tini", "docker-init", "dumb-init", "podman-init"}  # --init, compose init: true


def _is_serve(argv: list[str]) -> bool:
    return "serve" in argv and any(Path(a).name in ("bangui", "cli", "cli.py") for a in argv[:3])


_MARKERS = (Path("/run/.containerenv"), Path("/.dockerenv"))  # podman's, Docker's


def in_container(proc: Path = Path("/proc"), markers: tuple[Path, ...] = _MARKERS) -> bool:
    """A runtime's marker file, or else PID 1: `podman run --read-only` mounts a fresh /run without
    .containerenv, but PID 1 being `bangui serve` itself or a container init happens in containers only (a host's
    PID 1 is systemd or init, whose children may be servers of other data dirs)."""
    if any(marker.exists() for marker in markers):
        return True
    try:
        argv = [a.decode(errors="replace") for a in (proc / "1" / "cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return False
    return bool(argv) and (Path(argv[0]).name in _CONTAINER_INITS or _is_serve(argv))


def serve_flags(parser: argparse.ArgumentParser, proc: Path = Path("/proc"), container: bool | None = None,
                ) -> dict[str, str]:
    """Inside a container: the settings flags given to its `bangui serve` (see _serve_argv). Elsewhere
    nothing: a host may run several servers, and the flags or environment given to us decide."""
    if not (in_container(proc) if container is None else container):
        return {}
    argv = _serve_argv(proc)
    if not argv:
        return {}
    try:
        args, _ = parser.parse_known_args(argv[argv.index("serve"):])
    except SystemExit:  # unparseable: the server would not have started with it either
        return {}
    return {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name, None) is not None}


SERVING_FILE = "serving.json"  # in the data dir: {"pid", "started", "bind"} of the `bangui serve` running on it


def _started(pid: int, proc: Path = Path("/proc")) -> int | None:
    """When `pid` started (clock ticks after boot, /proc/PID/stat field 22); None where it cannot be read. A pid
    alone names a process only while it lives: after a crash it is reused (a restarted container's server is
    PID 1 again), and a record trusted on its pid alone sends the check to the dead server's address."""
    try:
        return int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def record_serving(data_dir: str, bind: str) -> Path:
    """Write where this server listens (atomically: a checker never reads half a file)."""
    path = Path(data_dir) / SERVING_FILE
    partial = path.with_name(f".{SERVING_FILE}.{os.getpid()}")
    partial.write_text(json.dumps({"pid": os.getpid(), "started": _started(os.getpid()), "bind": bind}))
    os.replace(partial, path)
    return path


def forget_serving(path: Path) -> None:
    """Remove the record if it is still ours (another server may share the data dir and have replaced it)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process: it exists
        return True
    except (OSError, OverflowError):
        return False
    return True


def served_bind(data_dir: str, proc: Path = Path("/proc")) -> str | None:
    """The bind recorded by the live server of this data dir; None without one, or when the record is a dead
    server's leftover: its pid gone, or reused by a process that started at another time."""
    try:
        record = json.loads((Path(data_dir) / SERVING_FILE).read_text())
        pid, bind, started = int(record["pid"]), str(record["bind"]), record.get("started")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if pid <= 0 or not _alive(pid):
        return None
    if started is None:  # written where /proc could not be read: the pid is all there is
        return bind
    now = _started(pid, proc)
    return bind if now is None or now == started else None


def candidates(bind: str) -> list[tuple[str, int]]:
    """Where to reach a server bound to `bind`: `target(bind)`, and for an IPv6 wildcard also 127.0.0.1. A socket
    on `::` takes IPv4 too, and a container without IPv6 (Docker's default) has no ::1 to connect to."""
    host, port = target(bind)
    wildcard = bind.rpartition(":")[0].strip().strip("[]") == "::"
    return [(host, port), ("127.0.0.1", port)] if wildcard else [(host, port)]


def check(settings: Settings, ready: bool = False, timeout: float = 3.0, bind: str | None = None) -> int:
    """`bind`: the address given to the check itself, which wins over the served and configured ones."""
    path = "/api/v1/health/ready" if ready else "/api/v1/health/live"
    failures, deadline = [], time.monotonic() + timeout  # `timeout` bounds the whole check, fallback included
    for host, port in candidates(bind or served_bind(settings.data_dir) or settings.bind):
        shown = f"http://{'[' + host + ']' if ':' in host else host}:{port}{path}"
        conn = http.client.HTTPConnection(host, port, timeout=max(0.1, deadline - time.monotonic()))
        try:
            conn.request("GET", path, headers={"User-Agent": f"bangui-healthcheck/{os.getpid()}"})
            status = conn.getresponse().status
        except OSError as exc:
            failures.append(f"{shown}: {exc}")
            continue
        finally:
            conn.close()
        if status != 200:
            print(f"bangui healthcheck: {shown}: HTTP {status}", file=sys.stderr)
            return 1
        print(f"bangui healthcheck: {shown}: ok")
        return 0
    print("bangui healthcheck: " + "; ".join(failures), file=sys.stderr)
    return 1
