"""The shipped fail2ban filter matches bangui's failed-login line, as fail2ban-regex itself sees it."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from actions.auth import _log_failure

FILTER = Path(__file__).parents[1] / "contrib/fail2ban/filter.d/bangui-auth.conf"


def test_filter_matches_real_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    regex = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"
    log_file = tmp_path / "bangui.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    logger = logging.getLogger("bangui.auth")
    logger.addHandler(handler)
    try:
        _log_failure("192.0.2.7", "admin", "bad_credentials")
        _log_failure("2001:db8::9", 'evil" client=198.51.100.1', "rate_limited")
        logger.warning("bangui: some other line from 203.0.113.5")
    finally:
        logger.removeHandler(handler)
        handler.close()
    out = subprocess.run([regex, "-v", str(log_file), str(FILTER)], capture_output=True, text=True,
                         check=True).stdout
    assert "Lines: 3 lines, 0 ignored, 2 matched, 1 missed" in out
    assert "192.0.2.7" in out and "2001:db8::9" in out
    assert "198.51.100.1" not in out.split("Lines:")[0].split("Failregex")[1]
