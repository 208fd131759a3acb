"""Notification targets and their outboxes, shared by every worker; only the leader's `notifications` job delivers.

Keys:
- `notify:target:<name>` {name, url, format, events, jails, min_interval_s, enabled, created, created_by,
  delivered, failures (in a row: the backoff), failures_total (ever: the metric), dropped, last_attempt,
  last_delivery, last_status, last_error, next_attempt, sending_until (a message is in flight: see `claim`)}
- `notify-index`          the target names
- `notify:queue:<name>`   events waiting for delivery to that target, oldest first (at most MAX_QUEUE: older
                          ones are dropped and counted)
- `notify:cursor`         how far the leader has read the event sources (history and audit ids, leader epoch,
                          fail2ban reachability, each blocklist's last run)
- `notify:testreq:<name>` a test message asked for by `POST /notifications/{name}/test`

Guarantees: the leader moves new events into the queues and advances the cursor in ONE fenced transaction (no
event lost or queued twice across takeovers); a delivered batch leaves its queue only after the receiver said
2xx (fenced). Each target is sent to from its own thread (jobs/notify.py): `claim` marks it in flight so
that no second sender takes the same batch, for at most SEND_HOLD_S (a sender that died frees it then).
A leader killed between sending and recording sends that batch again: at-least-once, with the same message id
(`Idempotency-Key`) so a receiver can drop the copy.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from errors import InvalidInput
from store.records import NamedRecords

FORMATS = ("json", "ntfy", "gotify", "slack", "discord")
EVENTS = ("ban", "unban", "config.change", "fail2ban.down", "fail2ban.up", "leader.change", "login.failed",
          "blocklist.failed")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_URL_LENGTH = 2048
MAX_QUEUE = 10_000

_INDEX = "notify-index"
CURSOR_KEY = "notify:cursor"
STATE_FIELDS = ("delivered", "failures", "failures_total", "dropped", "last_attempt", "last_delivery", "last_status",
                "last_error", "next_attempt", "sending_until")
# One message's whole exchange ends within jobs/notify_delivery.TIMEOUT_S (10 s); the margin covers the writes.
SEND_HOLD_S = 15.0


def target_key(name: str) -> str:
    return f"notify:target:{name}"


def queue_key(name: str) -> str:
    return f"notify:queue:{name}"


def test_key(name: str) -> str:
    return f"notify:testreq:{name}"


def check_target(name: str, url: str, fmt: str, events: list[str]) -> None:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput("notification names have 1-64 letters, digits or _.- (starting with a letter or digit)",
                           code="invalid_notification_name")
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", code="invalid_format")
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise InvalidInput(f"events: one or more of {', '.join(EVENTS)}", code="invalid_events",
                           details={"unknown": unknown})
    parts = urllib.parse.urlsplit(url)
    why = None
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        why = f"at most {MAX_URL_LENGTH} characters, no spaces or control characters"
    elif parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        why = "an http:// or https:// URL with a host"
    elif parts.username is not None or parts.password is not None:
        why = "no user:password@ (put a token in the path or query: it is never shown back)"
    else:
        try:
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            why = "invalid port"
    if why:
        raise InvalidInput(f"notification URL: {why}", code="invalid_url", details={"reason": why})


def masked_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs carry their secret in the path or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    hidden = "/..." if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{port}{hidden}"


class Notifications(NamedRecords):
    KIND, CODE, INDEX = "notification target", "notification", _INDEX
    record_key = staticmethod(target_key)
    request_key = staticmethod(test_key)

    # -- targets (any worker) ---------------------------------------------------------------------------
    def pending(self, name: str) -> int:
        return len(self.cache.get(queue_key(name)) or [])

    def create(self, name: str, url: str, fmt: str, events: list[str], jails: list[str], min_interval_s: int,
               enabled: bool, by: str | None) -> dict[str, Any]:
        check_target(name, url, fmt, events)
        record: dict[str, Any] = {"name": name, "url": url, "format": fmt, "events": sorted(set(events)),
                                  "jails": sorted(set(jails)), "min_interval_s": min_interval_s, "enabled": enabled,
                                  "created": self.clock(), "created_by": by, **dict.fromkeys(STATE_FIELDS),
                                  "delivered": 0, "failures": 0, "failures_total": 0, "dropped": 0}
        return self._add(name, record)

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        """Pause (False) or resume (True) a target; 404 when there is none. Paused, it queues no new event and
        sends nothing (what was queued waits for the resume)."""
        with self.cache.transact():
            record = self._existing(name)
            record["enabled"] = enabled
            self.cache.set(target_key(name), record)
        return record

    def delete(self, name: str) -> dict[str, Any]:
        return self._remove(name, queue_key(name))

    def request_test(self, name: str, by: str) -> dict[str, Any]:
        return self._request(name, by)

    def test_requests(self) -> dict[str, dict[str, Any]]:
        return {n: r for n in self.names() if (r := self.cache.get(test_key(n))) is not None}

    # -- the leader (call inside its fenced transaction) ------------------------------------------------------
    def cursor(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.cache.get(CURSOR_KEY)
        return value

    def enqueue(self, per_target: dict[str, list[dict[str, Any]]], cursor: dict[str, Any],
                tests_served: dict[str, float]) -> None:
        """Append each target's new events, advance the cursor and consume the test requests served."""
        with self.cache.transact():
            for name, events in per_target.items():
                record = self.get(name)
                if record is None or not events:
                    continue
                queue = list(self.cache.get(queue_key(name)) or []) + events
                if len(queue) > MAX_QUEUE:
                    record["dropped"] = int(record.get("dropped") or 0) + len(queue) - MAX_QUEUE
                    queue = queue[-MAX_QUEUE:]
                    self.cache.set(target_key(name), record)
                self.cache.set(queue_key(name), queue)
            for name, requested_at in tests_served.items():
                request = self.cache.get(test_key(name))
                if request is not None and request["requested_at"] <= requested_at:
                    self.cache.delete(test_key(name))
            self.cache.set(CURSOR_KEY, cursor)

    def queue(self, name: str, limit: int) -> list[dict[str, Any]]:
        return list(self.cache.get(queue_key(name)) or [])[:limit]

    def claim(self, name: str, limit: int) -> list[dict[str, Any]]:
        """The queue head to send now (up to `limit` events), the target marked in flight for SEND_HOLD_S; [] when
        there is nothing to send."""
        with self.cache.transact():
            record = self.get(name)
            if record is not None and (record.get("sending_until") or 0.0) > self.clock():
                return []  # another sender holds it (checked here too: the caller's copy of the record may be old)
            batch = self.queue(name, limit) if record is not None else []
            if record is not None and batch:
                record["sending_until"] = self.clock() + SEND_HOLD_S
                self.cache.set(target_key(name), record)
            return batch

    def record_attempt(self, name: str, sent_ids: list[str], ok: bool, error: str | None, retry_in: float | None,
                       next_limit: int = 0) -> list[dict[str, Any]]:
        """After one delivery: drop the sent events from the queue head on success; keep the outcome.

        With `next_limit` (after a success) the next batch is claimed in the same transaction and returned, so no
        other sender can take it in between; otherwise the target is no longer in flight.
        """
        with self.cache.transact():
            record = self.get(name)
            if record is None:
                return []
            now = self.clock()
            record.update(last_attempt=now, last_status="ok" if ok else "error", last_error=error, sending_until=None)
            if ok:
                queue = list(self.cache.get(queue_key(name)) or [])
                sent = set(sent_ids)
                self.cache.set(queue_key(name), [e for e in queue if e["id"] not in sent])
                record.update(delivered=int(record.get("delivered") or 0) + len(sent_ids), failures=0,
                              last_delivery=now, next_attempt=None)
            else:
                record.update(failures=int(record.get("failures") or 0) + 1,
                              failures_total=int(record.get("failures_total") or 0) + 1,  # absent in old records
                              next_attempt=now + (retry_in or 0.0))
            self.cache.set(target_key(name), record)
            return self.claim(name, next_limit) if ok and next_limit else []
