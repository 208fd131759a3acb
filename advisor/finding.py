"""A finding and the fix it proposes.

A fix is the exact change, as bangui's configuration engine will make it: the values set in one section
of bangui's override file (`jail.d/zz-bangui.local` for a jail or `[DEFAULT]`, `fail2ban.d/zz-bangui.local`
for the server), whether the jail is activated, and the reload. Paths in it are the host's own, as
fail2ban reads them (never with BANGUI_HOST_ROOT).
"""

from __future__ import annotations

import dataclasses
from typing import Any

SEVERITIES = ("critical", "warning", "info")
JAIL_FILE = "jail.d/zz-bangui.local"
SERVER_FILE = "fail2ban.d/zz-bangui.local"


@dataclasses.dataclass(frozen=True)
class Fix:
    file: str
    section: str
    set: dict[str, str]
    activate: bool = False
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "section": self.section, "set": dict(self.set), "activate": self.activate,
                "reload": self.file == JAIL_FILE, "summary": self.summary}


def jail_fix(jail: str, values: dict[str, str], summary: str, activate: bool = False) -> Fix:
    return Fix(JAIL_FILE, jail, values, activate, summary)


def server_fix(values: dict[str, str], summary: str) -> Fix:
    return Fix(SERVER_FILE, "Definition", values, False, summary)


@dataclasses.dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    title: str
    detail: str
    jail: str | None = None
    fix: Fix | None = None
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity

    def as_json(self, with_fix: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity, "title": self.title, "detail": self.detail,
                               "jail": self.jail, "evidence": self.evidence}
        if with_fix:
            out["fix"] = None if self.fix is None else self.fix.as_json()
        return out
