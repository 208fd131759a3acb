"""Issue 18 §3, long version: 20 seeded SIGKILLs per kind of configuration change (see tests/test_config_crash.py;
replay with BANGUI_CRASH_SEED=<seed>)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_config_crash import KINDS, LONG_RUNS, Kind, crash_runs

pytestmark = [pytest.mark.reliability, pytest.mark.processes]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_twenty_kills_per_kind_leave_the_before_or_after_state(kind: Kind, tmp_path: Path) -> None:
    crash_runs(kind, tmp_path, LONG_RUNS)
