"""The scrape: this server's process instruments plus the shared store's state, in Prometheus' text format.

The fail2ban series carry the names and labels of the widely used fail2ban exporter (hectorjsmith
fail2ban-prometheus-exporter), so its dashboards work unchanged. They are read from the leader's snapshot in the
store (`store.runtime`, refreshed every BANGUI_SNAPSHOT_SECONDS), never from fail2ban by the scraping worker, so
every worker answers the same. Types: `f2b_jail_{banned,failed}_total` are counters here (the exporter declares
them gauges; fail2ban's totals only grow until it restarts), `f2b_errors` stays a gauge (a counter must end in
`_total`); neither changes a PromQL query.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from metrics import process
from store.history_schema import ORIGINS

if TYPE_CHECKING:
    from store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_JAIL_SERIES = (  # (exporter name, snapshot field, counter?, help)
    ("f2b_jail_banned_current", "currently_banned", False, "Number of IPs currently banned in this jail"),
    ("f2b_jail_banned_total", "total_banned", True, "Total number of IPs banned by this jail (includes expired "
     "bans)"),
    ("f2b_jail_failed_current", "currently_failed", False, "Number of current failures on this jail's filter"),
    ("f2b_jail_failed_total", "total_failed", True, "Number of total failures on this jail's filter"),
)

_CONFIG_SERIES = (  # (exporter name, snapshot field, help): the "F2B Config" panel of the exporter's dashboard
    ("f2b_config_jail_ban_time", "bantime", "How long an IP is banned for in this jail (in seconds)"),
    ("f2b_config_jail_find_time", "findtime", "How far back the filter will look for failures in this jail "
     "(in seconds)"),
    ("f2b_config_jail_max_retries", "maxretry", "The number of failures allowed until the IP is banned by this "
     "jail"),
)


def _version() -> str:
    try:
        return metadata.version("bangui")
    except metadata.PackageNotFoundError:
        return "unknown"


def _gauge(name: str, doc: str, labels: list[str] | None = None, value: float | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value, labels=labels)


class StoreCollector:
    """Series computed at scrape time from the shared store (a few small reads and two index-only queries)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        yield from self._fail2ban(self.store.runtime.current() or {})
        yield from self._leader()
        yield from self._history_and_audit()
        yield from self._blocklists()
        yield from self._notifications()
        yield from self._bouncers()

    def _fail2ban(self, snap: dict[str, Any]) -> Iterator[Metric]:
        jails = snap.get("jails") or []
        yield _gauge("f2b_up", "Check if the fail2ban server is up", value=1.0 if snap.get("reachable") else 0.0)
        errors = _gauge("f2b_errors", "Number of errors found since startup", labels=["type"])
        for kind in ("socket_conn", "socket_req"):
            errors.add_metric([kind], float((snap.get("errors") or {}).get(kind, 0)))
        yield errors
        yield _gauge("f2b_jail_count", "Number of defined jails", value=float(len(jails)))
        for name, field, is_counter, doc in _JAIL_SERIES:
            family: CounterMetricFamily | GaugeMetricFamily
            family = CounterMetricFamily(name, doc, labels=["jail"]) if is_counter else _gauge(name, doc, ["jail"])
            for jail in jails:
                family.add_metric([jail["name"]], float(jail.get(field) or 0))
            yield family
        for name, field, doc in _CONFIG_SERIES:
            config = _gauge(name, doc, ["jail"])
            for jail in jails:
                if jail.get(field) is not None:
                    config.add_metric([jail["name"]], float(jail[field]))
            yield config
        version = _gauge("f2b_version", "Version of the exporter and fail2ban server", labels=["exporter", "fail2ban"])
        version.add_metric([f"bangui-{_version()}", str(snap.get("version") or "")], 1.0)
        yield version
        if snap.get("at"):
            yield _gauge("bangui_fail2ban_snapshot_timestamp_seconds", "When the leader last read fail2ban's state "
                         "(Unix time); the f2b_* series are as of then.", value=float(snap["at"]))

    def _leader(self) -> Iterator[Metric]:
        record = self.store.leader.current() or {}
        epoch = float(record.get("epoch") or 0)
        yield _gauge("bangui_leader_epoch", "Epoch of the current leader (0: none yet).", value=epoch)
        yield CounterMetricFamily("bangui_leader_changes", "Times a process took the leadership since the data dir "
                                  "was created (the epoch counter).", value=epoch)
        if record:
            yield _gauge("bangui_leader_heartbeat_age_seconds", "Age of the leader's last heartbeat.",
                         value=round(self.store.leader.heartbeat_age(record), 3))

    def _history_and_audit(self) -> Iterator[Metric]:
        bans = _gauge("bangui_history_bans", "Ban events in bangui's history archive, by origin.", labels=["origin"])
        counts = self.store.history.events_by_origin()
        for origin in ORIGINS:
            bans.add_metric([origin], float(counts.get(origin, 0)))
        yield bans
        yield CounterMetricFamily("bangui_audit_entries", "Entries ever written to the audit log.",
                                  value=float(self.store.audit.last_id()))

    def _blocklists(self) -> Iterator[Metric]:
        records = self.store.blocklists.all()
        entries = _gauge("bangui_blocklist_entries", "Entries of each blocklist at its last import.", labels=["list"])
        last = _gauge("bangui_blocklist_last_import_timestamp_seconds", "When each blocklist was last imported "
                      "successfully (Unix time).", labels=["list"])
        ok = _gauge("bangui_blocklist_last_import_ok", "1 when the last import of each blocklist succeeded.",
                    labels=["list"])
        for record in records:
            name = record["name"]
            entries.add_metric([name], float(record.get("last_count") or 0))
            ok.add_metric([name], 1.0 if record.get("last_status") == "ok" else 0.0)
            if record.get("last_status") == "ok" and record.get("last_run"):
                last.add_metric([name], float(record["last_run"]))
        yield from (entries, last, ok)

    def _notifications(self) -> Iterator[Metric]:
        failures = CounterMetricFamily("bangui_notification_failures", "Failed deliveries to each notification "
                                       "target since it was created.", labels=["target"])
        last = _gauge("bangui_notification_last_success_timestamp_seconds", "When each notification target last "
                      "accepted a message (Unix time).", labels=["target"])
        ok = _gauge("bangui_notification_last_delivery_ok", "1 when the last delivery to each notification target "
                    "succeeded (or none was tried yet).", labels=["target"])
        for record in self.store.notifications.all():
            name = record["name"]
            failures.add_metric([name], float(record.get("failures_total") or 0))
            ok.add_metric([name], 0.0 if record.get("last_status") == "error" else 1.0)
            if record.get("last_delivery"):
                last.add_metric([name], float(record["last_delivery"]))
        yield from (failures, last, ok)

    def _bouncers(self) -> Iterator[Metric]:
        """CrowdSec bouncers (issue 22): when each last pulled decisions, and how many decisions are current."""
        last = _gauge("bangui_bouncer_last_pull_timestamp_seconds", "When each CrowdSec bouncer last pulled "
                      "decisions (Unix time; refreshed at most every few seconds).", labels=["bouncer"])
        for record in self.store.bouncers.list():
            if record["last_pull"] is not None:
                last.add_metric([record["name"]], float(record["last_pull"]))
        yield last
        yield _gauge("bangui_decisions", "Decisions CrowdSec bouncers receive now (fail2ban's current bans of the "
                     "decisions' jails).", value=float(self.store.decisions.count()))


def render(store: Store) -> bytes:
    """One scrape (blocking: a few store reads and the multiprocess files; run it in a worker thread)."""
    registry = CollectorRegistry(auto_describe=False)
    if process.MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        for instrument in process.ALL:
            registry.register(instrument)
    registry.register(StoreCollector(store))
    return generate_latest(registry)
