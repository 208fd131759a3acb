"""Name a process so that another one on the same host can tell later whether it still runs.

An owner is `<boot id>:<pid>:<start time>`: the start time (clock ticks since boot, /proc/<pid>/stat field 22)
tells a reused pid from the original, and the boot id a process of a previous boot from a live one. The audit
log's write-ahead entries name their process so (issue 18): the leader completes only those whose process died.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # after "pid (comm)": field 22 is the 20th


@functools.cache
def _this(pid: int) -> str:
    return f"{_boot_id()}:{pid}:{_start_time(pid)}"


def this_process() -> str:
    """This process's owner name (cached per pid: a forked child gets its own)."""
    return _this(os.getpid())


def is_running(owner: str) -> bool:
    """Does the process named `owner` still run? (False for another boot's or a malformed name.)"""
    try:
        boot, pid, start = owner.rsplit(":", 2)
        return boot == _boot_id() and _start_time(int(pid)) == start
    except ValueError:
        return False
