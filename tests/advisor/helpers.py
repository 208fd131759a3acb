"""Shared steps of the advisor tests: start a fixture host's fail2ban, read findings, apply a fix, see a ban."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from f2b.blocking import sync_call
from tests.fixtures.advisor_host import AdvisorServer, FixtureHost, advisor_api
from tests.fixtures.app import Api
from tests.fixtures.waiting import wait_for


@contextmanager
def host_api(tmp_path: Path, host: FixtureHost, jail_local: str, fail2ban_local: str = "",
             client: tuple[str, int] = ("testclient", 50000), dbfile: str | None = None,
             **changes: Any) -> Iterator[tuple[Api, AdvisorServer]]:
    server = AdvisorServer(tmp_path / "f2b", host, jail_local, fail2ban_local, dbfile)
    try:
        server.start()
        with advisor_api(tmp_path, server, client, **changes) as api:
            yield api, server
    finally:
        server.close()


def f2b(server: AdvisorServer, *args: str) -> Any:
    code, value = sync_call(server.socket, *args, timeout=5.0)
    assert code == 0, value
    return value


def running(server: AdvisorServer) -> set[str]:
    listed = str(dict(f2b(server, "status")).get("Jail list", ""))
    return {n.strip() for n in listed.split(",") if n.strip()}


def findings(api: Api, persona: str = "admin", timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """The findings once every filter test is done (a loaded machine may take longer than a run waits for
    them: advisor/filters.py BUDGET_S)."""
    answer: dict[str, dict[str, Any]] = {}

    def complete() -> bool:
        r = api.call(persona, "GET", "/advisor")
        assert r.status_code == 200, r.text
        answer.clear()
        answer.update({f["id"]: f for f in r.json()["findings"]})
        return "filter-tests-pending" not in answer

    wait_for(complete, timeout, "the advisor's filter tests finish")
    return answer


def apply(api: Api, finding_id: str) -> dict[str, Any]:
    r = api.call("admin", "POST", f"/advisor/fixes/{finding_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def bans(server: AdvisorServer, jail: str, ip: str, timeout: float = 10.0) -> None:
    wait_for(lambda: ip in [str(b) for b in f2b(server, "get", jail, "banned")], timeout, f"{jail} bans {ip}")
