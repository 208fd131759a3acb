"""Fixtures live in tests/fixtures/ (one module per real part), loaded as plugins here.

The host's fail2ban configuration is compared before and after the session (issue 18, item 1): a run that
changed it fails, here as in `.ci/run` (the harness already refuses to start a server on it)."""

from __future__ import annotations

import hashlib
import os

import pytest

pytest_plugins = [
    "tests.fixtures.fail2ban",
    "tests.fixtures.app",
    "tests.fixtures.processes",
    "tests.fixtures.clock",
    "tests.fixtures.blocklist_server",
    "tests.fixtures.disk",
    "tests.fixtures.f2b_config",
    "tests.fixtures.advisor_host",
    "tests.fixtures.redis",
    "tests.fixtures.seeded",
]

HOST_FAIL2BAN = "/etc/fail2ban"
_BEFORE = pytest.StashKey[dict[str, str]]()


def tree_digest(root: str) -> dict[str, str]:
    """sha256 of every file under `root` (missing files and new ones show as a difference)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    out[path] = hashlib.sha256(f.read()).hexdigest()
            except OSError as exc:
                out[path] = f"unreadable: {exc}"
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = tree_digest(HOST_FAIL2BAN)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before, after = session.config.stash.get(_BEFORE, None), tree_digest(HOST_FAIL2BAN)
    if before is not None and before != after:
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        print(f"\nthe tests changed the host's {HOST_FAIL2BAN}: {', '.join(changed)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
