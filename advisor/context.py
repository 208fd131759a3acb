"""Everything the checks look at, gathered once per run (advisor/report.py): the host's facts, every
jail of the configuration as fail2ban's own readers see it, what fail2ban runs, its server settings,
bangui's own addresses, and the ban history's repeat offenders. Fields that could not be read are None."""

from __future__ import annotations

import dataclasses
from typing import Any

from advisor.facts import Facts
from advisor.host import HostView


@dataclasses.dataclass
class Context:
    host: HostView
    facts: Facts
    config_dir: str
    jails: list[dict[str, Any]]  # f2bconfig.catalogue.jails: name, enabled, filter, logpath, backend, settings
    running: set[str] | None  # jails fail2ban runs (None: fail2ban does not answer)
    server: dict[str, Any] | None  # loglevel, logtarget, dbfile, dbpurgeage as fail2ban runs them
    repeat_offenders: int | None  # addresses banned 3+ times in 30 days (bangui's archive)
    bangui_addresses: list[str] = dataclasses.field(default_factory=list)
    trusted_proxies: tuple[str, ...] = ()
    filter_test_seconds: float = 15.0

    def enabled(self) -> list[dict[str, Any]]:
        return [j for j in self.jails if j["enabled"]]

    def jail(self, name: str) -> dict[str, Any] | None:
        return next((j for j in self.jails if j["name"] == name), None)
