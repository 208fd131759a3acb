"""Proof with a real CrowdSec bouncer (issue 22): Debian's `crowdsec-custom-bouncer` polls a real
`bangui serve --workers 3` on a real private fail2ban and runs a script for each decision it receives.

Bans made by fail2ban itself (log lines), through the API and by a blocklist reach the script as `add`; an unban and
an expiry become `del`; a bouncer restarted mid-way resyncs; a deleted key is refused.

Run with `./dev crowdsec` (deselected from the default run: it needs Debian's crowdsec-custom-bouncer).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.instance import JailSpec, started
from tests.fixtures.blocklist_server import ListServer
from tests.fixtures.processes import ServerProcess
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.crowdsec
ROOT = Path(__file__).resolve().parents[1]
JAILS = (JailSpec("sshd"), JailSpec("short", bantime=3), JailSpec("lists", bantime=3600))


class Bouncer:
    """crowdsec-custom-bouncer in the foreground; its script appends each call's arguments to `calls`."""

    def __init__(self, tmp: Path, url: str, key: str) -> None:
        binary = shutil.which("crowdsec-custom-bouncer")
        if binary is None:
            pytest.fail("crowdsec-custom-bouncer not installed: apt-get install --no-install-recommends "
                        "crowdsec-custom-bouncer (./dev crowdsec does)")
        self.calls = tmp / "calls.jsonl"
        script = tmp / "record.sh"
        script.write_text(f"#!/bin/sh\n{sys.executable} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "
                          f"\"$@\" >> {self.calls}\n")
        script.chmod(0o700)
        (tmp / "pid").mkdir(exist_ok=True)
        self.config = tmp / "bouncer.yaml"
        self.config.write_text(json.dumps({  # YAML is a superset of JSON
            "bin_path": str(script), "feed_via_stdin": False, "total_retries": 0, "piddir": f"{tmp / 'pid'}/",
            "update_frequency": "1s", "cache_retention_duration": "1s", "daemonize": False, "log_mode": "stdout",
            "log_level": "info", "api_url": url + "/", "api_key": key,
            "prometheus": {"enabled": False, "listen_addr": "127.0.0.1", "listen_port": "60602"}}))
        self.log = tmp / "bouncer.log"
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Bouncer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def seen(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines() if line.strip()]

    def wait(self, verb: str, value: str, timeout: float = 15.0) -> list[str]:
        def found() -> list[str] | None:
            return next((c for c in self.seen() if c[:2] == [verb, value]), None)
        return wait_for(found, timeout, f"`{verb} {value}` from the bouncer; its log:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def cli(server: ServerProcess, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", str(server.data_dir)], cwd=ROOT,
                         env=server.env, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Any, ServerProcess, str, ListServer]]:
    lists = ListServer()
    with started(tmp_path / "fail2ban", JAILS) as fail2ban:
        server = ServerProcess(tmp_path / "data", fail2ban, workers=3, log_dir=tmp_path,
                               env={"BANGUI_DECISIONS_SECONDS": "0.5", "BANGUI_BLOCKLIST_ALLOW_PRIVATE": "true"})
        try:
            server.start()
            yield fail2ban, server, cli(server, "token", "create", "--name", "ops", "--role", "admin"), lists
        finally:
            if server.stop() not in (None, 0):
                print(f"--- bangui ---\n{server.output()}")
            lists.close()


def test_a_real_bouncer_enforces_fail2bans_bans(stack: Any, tmp_path: Path) -> None:
    fail2ban, server, token, lists = stack
    api = httpx.Client(base_url=server.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    key = cli(server, "bouncer", "add", "edge")
    assert api.post("/jails/sshd/bans", json={"ips": ["192.0.2.10"]}).status_code == 200
    bouncer = Bouncer(tmp_path, server.url, key).start()
    try:
        # at startup: the ban made before the bouncer ran, with its scenario and LAPI decision JSON
        call = bouncer.wait("add", "192.0.2.10")
        assert call[3] == "fail2ban/sshd" and 590 <= int(call[2]) <= 600
        assert json.loads(call[4])["origin"] == "manual"
        # fail2ban's own ban, from log lines
        fail2ban.append_failures("sshd", "192.0.2.20", 5)
        assert json.loads(bouncer.wait("add", "192.0.2.20")[4])["origin"] == "fail2ban"
        # a blocklist's bans
        made = api.post("/blocklists", json={"name": "feed", "url": lists.url("/list.txt"), "jail": "lists"})
        assert made.status_code == 201, made.text
        assert api.post("/blocklists/feed/run").status_code in (200, 202)
        assert bouncer.wait("add", "198.51.100.0/24", 30)[3] == "fail2ban/lists"
        # an unban, and an expiry (jail `short` bans for 3 s)
        assert api.delete("/bans/192.0.2.20").status_code == 200
        bouncer.wait("del", "192.0.2.20")
        assert api.post("/jails/short/bans", json={"ips": ["192.0.2.30"]}).status_code == 200
        bouncer.wait("add", "192.0.2.30")
        bouncer.wait("del", "192.0.2.30", 20)
        # an address two jails ban: the shorter ban's expiry is no `del` (the bouncer deletes by value), the end
        # of the last one is
        for jail in ("sshd", "short"):
            assert api.post(f"/jails/{jail}/bans", json={"ips": ["192.0.2.60"]}).status_code == 200
        bouncer.wait("add", "192.0.2.60")
        live = {"X-Api-Key": key}
        wait_for(lambda: [d["scenario"] for d in httpx.get(server.url + "/v1/decisions?ip=192.0.2.60",
                                                           headers=live).json() or []] == ["fail2ban/sshd"],
                 20, "the `short` ban of 192.0.2.60 to expire")
        assert api.post("/jails/sshd/bans", json={"ips": ["192.0.2.61"]}).status_code == 200
        bouncer.wait("add", "192.0.2.61")  # a later poll than the one that saw the expiry
        assert ["del", "192.0.2.60"] not in [c[:2] for c in bouncer.seen()]
        assert api.delete("/jails/sshd/bans/192.0.2.60").status_code == 200
        bouncer.wait("del", "192.0.2.60")
        # a bouncer restarted mid-way resyncs: a ban made while it was down arrives
        bouncer.stop()
        assert api.post("/jails/sshd/bans", json={"ips": ["192.0.2.40"]}).status_code == 200
        bouncer.start()
        bouncer.wait("add", "192.0.2.40")
        listed = {b["name"]: b for b in api.get("/bouncers").json()["bouncers"]}
        assert listed["edge"]["last_pull"] is not None and listed["edge"]["user_agent"].startswith("crowdsec")
        # a deleted key is refused at once, whichever worker answers
        assert api.delete("/bouncers/edge").status_code == 204
        for _ in range(6):
            assert httpx.get(server.url + "/v1/decisions/stream", headers={"X-Api-Key": key}).status_code == 403
        # the bouncer reports the refusal at each poll and keeps running (a body without the LAPI's `message`
        # once crashed it with a nil pointer): nothing more reaches its script
        calls = len(bouncer.seen())
        wait_for(lambda: bouncer.output().count("API error: access forbidden") >= 2, 15,
                 f"the bouncer to report the refusal:\n{bouncer.output()}")
        assert bouncer.proc is not None and bouncer.proc.poll() is None, bouncer.output()
        assert len(bouncer.seen()) == calls
    finally:
        bouncer.stop()
        api.close()
