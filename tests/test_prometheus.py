"""Proof with a real Prometheus (Debian's `prometheus` package): it scrapes a 3-worker `bangui serve` on loopback
with a `metrics` token read from a file; PromQL returns fail2ban's jail values after bans made through the API;
counters are the same whichever worker answers; `promtool check metrics` accepts the output.

Run with `./dev prometheus` (deselected from the default run: it starts Prometheus).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.processes import ServerProcess, free_port
from tests.fixtures.promtool import check_metrics

pytestmark = pytest.mark.prometheus
ROOT = Path(__file__).resolve().parents[1]
# The nine queries of hectorjsmith/fail2ban-prometheus-exporter's _examples/grafana/dashboard.json (issue 20 item 11)
DASHBOARD_SERIES = ("f2b_config_jail_max_retries", "f2b_config_jail_ban_time", "f2b_config_jail_find_time",
                    "f2b_jail_failed_total", "f2b_jail_banned_total", "f2b_jail_failed_current",
                    "f2b_jail_banned_current", "f2b_up", "f2b_errors")


def cli_token(server: ServerProcess, role: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cli", "token", "create", "--name", f"{role}-test", "--role", role,
                          "--data-dir", str(server.data_dir)], cwd=ROOT, env=server.env, capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.strip()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    binary = shutil.which("prometheus")
    if binary is None or shutil.which("promtool") is None:
        pytest.fail("prometheus/promtool not installed: apt-get install prometheus (.ci/run does)")
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str, token_file: Path) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: bangui\n    metrics_path: /metrics\n"
            f"    authorization:\n      type: Bearer\n      credentials_file: {token_file}\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        with (tmp_path / "prometheus.log").open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                     f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.1)
        raise AssertionError("prometheus did not get ready:\n" + (tmp_path / "prometheus.log").read_text())

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    reply = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=10).json()
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def wait_value(url: str, promql: str, expected: float, timeout: float = 60.0) -> None:
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = query(url, promql)
        seen = [float(r["value"][1]) for r in result]
        if seen == [expected]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{promql}: {seen}, expected [{expected}]")


def fresh(method: str, url: str, **kw: Any) -> httpx.Response:
    with httpx.Client(timeout=10) as client:  # a new connection each time, so the workers share the requests
        return client.request(method, url, **kw)


def test_prometheus_scrapes_three_workers_and_promql_sees_the_bans(tmp_path: Path, bangui_server: Any,
                                                                    prometheus: Any) -> None:
    server = bangui_server(workers=3, env={"BANGUI_SNAPSHOT_SECONDS": "0.5"})
    token_file = tmp_path / "metrics-token"
    token_file.write_text(cli_token(server, "metrics") + "\n")
    token_file.chmod(0o600)
    operator = {"Authorization": f"Bearer {cli_token(server, 'operator')}"}
    reply = fresh("POST", server.url + "/api/v1/jails/sshd/bans", headers=operator,
                  json={"ips": ["192.0.2.10", "192.0.2.11", "2001:db8::10"]})
    assert reply.status_code == 200, reply.text
    assert fresh("DELETE", server.url + "/api/v1/jails/sshd/bans/2001:db8::10", headers=operator).status_code in (200, 204)

    url = prometheus(f"127.0.0.1:{server.port}", token_file)
    wait_value(url, 'up{job="bangui"}', 1.0)
    wait_value(url, 'f2b_jail_banned_current{job="bangui",jail="sshd"}', 2.0)
    wait_value(url, 'f2b_jail_banned_total{jail="sshd"}', 3.0)
    wait_value(url, "f2b_up", 1.0)
    wait_value(url, 'sum(bangui_http_requests_total{route="/api/v1/jails/{jail}/bans",method="POST",status="200"})', 1.0)
    wait_value(url, 'bangui_history_bans{origin="manual"}', 3.0)
    assert query(url, 'f2b_jail_banned_current{jail="nginx-http-auth"}')[0]["value"][1] == "0"
    for name in DASHBOARD_SERIES:  # each query of the exporter's Grafana dashboard finds data
        assert query(url, name + '{instance=~".*"}'), name
    targets = httpx.get(url + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"] and not targets[0]["lastError"]

    # Counters are the same whichever worker answers the scrape: 40 requests spread over the workers...
    pids = {fresh("GET", server.url + "/api/v1/health", headers=operator).json()["worker_pid"] for _ in range(40)}
    assert len(pids) >= 2, f"only worker(s) {pids} answered"
    scraper = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    series = 'bangui_http_requests_total{method="GET",route="/api/v1/health",status="200"}'
    values = set()
    for _ in range(15):  # ...and every scrape, on a new connection (so by any worker), counts all 40
        text = fresh("GET", server.url + "/metrics", headers=scraper).text
        values.add(next(line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(series + " ")))
    assert values == {"40.0"}
    check_metrics(text)
    assert fresh("GET", server.url + "/metrics").status_code == 401
    assert fresh("GET", server.url + "/api/v1/jails", headers=scraper).status_code == 403
