"""Fixtures of the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.history import Archive
from tests.fixtures.clock import ManualClock
from tests.store.archive_helpers import FakeGeo


@pytest.fixture
def archive(tmp_path: Path, clock: ManualClock) -> Archive:
    """An archive whose countries come from FakeGeo and whose clock the test moves."""
    return Archive.in_dir(tmp_path, clock=clock, geo=FakeGeo())  # type: ignore[arg-type]
