"""GET /metrics in-process: who may read it, the `metrics` token role (API and CLI), the series and their labels."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

import cli
from tests.fixtures.app import Api
from tests.fixtures.promtool import check_metrics


def scrape(api: Api, persona: str = "metrics") -> str:
    reply = api.client.get("/metrics", headers=api.as_(persona))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return reply.text


def sample(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for_snapshot(api: Api) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = scrape(api)
        if sample(text, "f2b_up") == 1.0 and sample(text, 'f2b_jail_banned_current{jail="sshd"}') is not None:
            return text
        time.sleep(0.1)
    raise AssertionError(f"no fail2ban snapshot in the metrics:\n{text}")


def test_metrics_need_a_token_and_the_metrics_role_reads_nothing_else(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics").json()["error"]["code"] == "unauthorized"
    for persona in ("metrics", "viewer", "operator", "admin"):
        scrape(api, persona)
    for path in ("/health", "/jails", "/tokens", "/history", "/jobs", "/openapi.json"):
        reply = api.call("metrics", "GET", path)
        assert reply.status_code == 403 and reply.json()["error"]["code"] == "forbidden", path
    assert api.call("metrics", "POST", "/tokens", json={"name": "x", "role": "metrics"}).status_code == 403


def test_a_viewer_creates_a_metrics_token_over_the_api(api: Api) -> None:
    reply = api.call("viewer", "POST", "/tokens", json={"name": "prometheus", "role": "metrics"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["role"] == "metrics"
    token = reply.json()["token"]
    assert api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_no_user_has_the_metrics_role(api: Api) -> None:
    reply = api.call("admin", "POST", "/users", json={"username": "scraper", "password": "a long password!",
                                                      "role": "metrics"})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_role"
    assert api.call("admin", "PATCH", "/users/viewer", json={"role": "metrics"}).status_code == 400


def test_cli_creates_a_metrics_token(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "create", "--name", "prom", "--role", "metrics",
                     "--data-dir", api.settings.data_dir]) == 0
    token = capsys.readouterr().out.strip()
    assert api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.client.get("/api/v1/jails", headers={"Authorization": f"Bearer {token}"}).status_code == 403


@pytest.mark.with_jobs
def test_fail2ban_series_use_the_exporters_names_and_http_series_route_templates(api: Api, fail2ban: Any) -> None:
    # In-process values are per test process (other tests count too): compare with a scrape taken first.
    ok = 'bangui_http_requests_total{method="GET",route="/api/v1/jails/{jail}",status="200"}'
    missing = 'bangui_http_requests_total{method="GET",route="/api/v1/jails/{jail}",status="404"}'
    histogram = 'bangui_http_request_duration_seconds_count{method="GET",route="/api/v1/jails/{jail}"}'
    before = scrape(api)
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.9"]}).status_code in (200, 201)
    for _ in range(3):
        assert api.call("viewer", "GET", "/jails/sshd").status_code == 200
    api.call("viewer", "GET", "/jails/no-such-jail")
    api.call("operator", "POST", "/jobs/snapshot/run")
    deadline = time.monotonic() + 20
    while True:
        text = wait_for_snapshot(api)
        if sample(text, 'f2b_jail_banned_current{jail="sshd"}') == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sample(text, 'f2b_jail_banned_current{jail="sshd"}') == 1.0
    assert sample(text, "f2b_jail_count") == len(fail2ban.jails)
    assert sample(text, 'f2b_jail_banned_total{jail="sshd"}') == 1.0
    for series in ('f2b_jail_failed_current{jail="sshd"}', 'f2b_jail_failed_total{jail="sshd"}',
                   'f2b_errors{type="socket_conn"}', 'f2b_errors{type="socket_req"}', "bangui_leader_epoch",
                   "bangui_leader_changes_total", 'bangui_history_bans{origin="manual"}', "bangui_audit_entries_total"):
        assert sample(text, series) is not None, series
    assert "# TYPE f2b_jail_banned_total counter" in text and "# TYPE f2b_jail_banned_current gauge" in text
    for jail in (spec.name for spec in fail2ban.jails):  # the exporter dashboard's "F2B Config" panel
        for series in ("f2b_config_jail_ban_time", "f2b_config_jail_find_time", "f2b_config_jail_max_retries"):
            assert sample(text, f'{series}{{jail="{jail}"}}') is not None, (series, jail)
    assert "# TYPE f2b_config_jail_ban_time gauge" in text and "# TYPE f2b_errors gauge" in text
    assert sample(text, 'bangui_history_bans{origin="manual"}') == 1.0
    assert (sample(text, ok) or 0) - (sample(before, ok) or 0) == 3.0
    assert (sample(text, missing) or 0) - (sample(before, missing) or 0) == 1.0
    assert (sample(text, histogram) or 0) - (sample(before, histogram) or 0) == 4.0
    assert "192.0.2.9" not in text and "no-such-jail" not in text  # templates, never raw paths
    assert sample(text, 'bangui_job_runs_total{job="snapshot"}') >= 1  # type: ignore[operator]
    if shutil.which("promtool"):  # the real Prometheus test (tests/test_prometheus.py) always runs it
        check_metrics(text)


def test_an_unmatched_path_and_a_made_up_method_add_no_series(api: Api) -> None:
    unmatched = 'bangui_http_requests_total{method="GET",route="unmatched",status="404"}'
    other = 'bangui_http_requests_total{method="other",route="/api/v1/health/live",status="405"}'
    before = scrape(api)
    api.client.get("/no/such/path/192.0.2.55")
    api.client.request("BREW", "/api/v1/health/live")
    text = scrape(api)
    assert "192.0.2.55" not in text and "BREW" not in text
    assert (sample(text, unmatched) or 0) - (sample(before, unmatched) or 0) == 1.0
    assert (sample(text, other) or 0) - (sample(before, other) or 0) == 1.0
