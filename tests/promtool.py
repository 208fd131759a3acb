"""`promtool check metrics` on a scrape: the format must parse and the only lint finding allowed is the one the
fail2ban exporter's own name `f2b_jail_count` causes (kept verbatim so existing dashboards work: README)."""

from __future__ import annotations

import subprocess

EXPORTER_NAME_FINDING = 'f2b_jail_count non-histogram and non-summary metrics should not have "_count" suffix'
LINT_EXIT = 3  # promtool: 1 = unparseable exposition, 3 = lint findings only


def check_metrics(text: str) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=60)
    findings = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, LINT_EXIT), f"promtool exited {result.returncode}: {findings}"
    assert set(findings) <= {EXPORTER_NAME_FINDING}, findings
