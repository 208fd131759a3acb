"""Owner names of processes (core/processes.py): a dead process and a reused pid are told from a live one."""

from __future__ import annotations

import subprocess

from core.processes import _this, is_running, this_process


def test_a_live_process_is_running_and_a_dead_one_is_not() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        owner = _this(child.pid)
        assert is_running(owner)
    finally:
        child.kill()
        child.wait()
    assert not is_running(owner)


def test_a_reused_pid_or_another_boot_is_not_the_same_process() -> None:
    boot, pid, start = this_process().rsplit(":", 2)
    assert is_running(this_process())
    assert not is_running(f"{boot}:{pid}:{int(start) + 1}")  # same pid, another start: a reused pid
    assert not is_running(f"another-boot:{pid}:{start}")
    assert not is_running("garbage")
