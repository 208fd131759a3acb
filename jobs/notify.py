"""The `notifications` job (leader only, every 2 s): turn new events into per-target queues, then deliver them.

Event sources, each read from where it already lives (nothing is written twice for notifications):
- the history archive (ids only grow): `ban` and `unban`, every origin (fail2ban's own, the API's, blocklists, the
  fleet's), with `source_host` as history items carry it (the publishing host of a fleet-origin event, else null);
- the audit log (ids only grow): `login.failed` (auth.login refused), `config.change` (a successful `config.*`
  action, jail setting, ignore-list or server setting change);
- the leader record: `leader.change` when the epoch moves; the leader's fail2ban snapshot: `fail2ban.down` and
  `fail2ban.up` when reachability flips; blocklist records: `blocklist.failed` for each failed import.
The first run ever starts from "now" (the past is not replayed). Routing: a target gets the events it asked for,
ban/unban only for its jails when it names some. Delivery (jobs/notify_delivery.py): a message carries up to
BATCH events (text formats list 20 and count the rest), at most one message per `min_interval_s` per target, so a
burst of 1,000 bans is a message or two; a failure is retried with exponential backoff (5 s doubling, capped at
10 min). Each target is sent to from its own thread, started by the job and not awaited: a target that never answers
holds only its own thread for its own timeout, never another target nor the next run (issue 20: six dead targets
had delayed a healthy seventh by 61.6 s, one after another, at every retry).
Exactly-once is not promised across a leader's death mid-delivery: see store/notifications.py.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from jobs.notify_delivery import DeliveryError, message_id, payload, post
from store.base import offload
from store.leader import NotLeader

if TYPE_CHECKING:
    from jobs.definitions import JobContext
    from store import Store

log = logging.getLogger("bangui.jobs.notifications")
READ_BATCH = 5000
BATCH = 500
MESSAGES_PER_RUN = 3
BACKOFF_S, MAX_BACKOFF_S = 5.0, 600.0
JAIL_EVENTS = ("ban", "unban")
# Audited actions that change fail2ban's configuration (files or runtime settings): `config.change`.
CONFIG_ACTIONS = ("jail.update", "jail.ignoreip_add", "jail.ignoreip_remove", "server.settings_update")


def _start_cursor(store: Store) -> dict[str, Any]:
    leader = store.leader.current() or {}
    snap = store.runtime.current() or {}
    return {"history": store.history.last_event_id(), "audit": store.audit.last_id(), "epoch": leader.get("epoch"),
            "reachable": snap.get("reachable"),
            "blocklists": {r["name"]: r.get("last_run") for r in store.blocklists.all()}}


def collect(store: Store) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(new events, the cursor after them): blocking reads, run in a thread."""
    cursor = store.notifications.cursor()
    if cursor is None:
        return [], _start_cursor(store)
    events: list[dict[str, Any]] = []
    rows = store.history.events_after(int(cursor["history"]), READ_BATCH)
    for row in rows:
        events.append({"id": f"h{row['id']}", "event": row["event"], "at": row["at"], "jail": row["jail"],
                       "ip": row["ip"], "origin": row["origin"], "actor": row["actor"],
                       "source_host": row["source_host"]})
    entries = store.audit.after(int(cursor["audit"]), READ_BATCH)
    for entry in entries:
        if entry["outcome"] == "pending":  # a started action: its completion (a row of its own) follows
            continue
        if entry["action"] == "auth.login" and entry["outcome"] != "ok":
            events.append({"id": f"a{entry['id']}", "event": "login.failed", "at": entry["at"],
                           "ip": entry["source_ip"], "detail": f"user {entry['target']!r} from {entry['source_ip']}"})
        elif (entry["action"].startswith("config.") or entry["action"] in CONFIG_ACTIONS) and entry["outcome"] == "ok":
            events.append({"id": f"a{entry['id']}", "event": "config.change", "at": entry["at"],
                           "actor": entry["actor"], "detail": f"{entry['action']} {entry['target'] or ''} by "
                           f"{entry['actor']}".replace("  ", " ")})
    new = dict(_start_cursor(store), history=rows[-1]["id"] if rows else cursor["history"],
               audit=entries[-1]["id"] if entries else cursor["audit"])
    if new["epoch"] is not None and cursor.get("epoch") is not None and new["epoch"] != cursor["epoch"]:
        leader = store.leader.current() or {}
        events.append({"id": f"e{new['epoch']}", "event": "leader.change", "at": leader.get("since") or 0.0,
                       "detail": f"pid {leader.get('pid')} on {leader.get('host')} leads (epoch {new['epoch']})"})
    if new["reachable"] is not None and cursor.get("reachable") is not None and new["reachable"] != cursor["reachable"]:
        snap = store.runtime.current() or {}
        kind = "fail2ban.up" if new["reachable"] else "fail2ban.down"
        events.append({"id": f"f{snap.get('at')}", "event": kind, "at": snap.get("at") or 0.0,
                       "detail": f"fail2ban {snap.get('version')}" if new["reachable"] else snap.get("error")})
    seen = cursor.get("blocklists") or {}
    for record in store.blocklists.all():
        if record.get("last_status") == "error" and record.get("last_run") != seen.get(record["name"]):
            events.append({"id": f"b{record['name']}:{record['last_run']}", "event": "blocklist.failed",
                           "at": record["last_run"], "detail": f"{record['name']}: {record.get('last_error')}"})
    return events, new


def route(targets: list[dict[str, Any]], events: list[dict[str, Any]], tests: dict[str, dict[str, Any]],
          ) -> dict[str, list[dict[str, Any]]]:
    """Each target's share of `events`, plus its test message if one was asked for."""
    out: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        wanted, jails = set(target["events"]), set(target.get("jails") or ())
        mine = [e for e in events if target["enabled"] and e["event"] in wanted and
                (not jails or e["event"] not in JAIL_EVENTS or e.get("jail") in jails)]
        if (test := tests.get(target["name"])) is not None:
            mine.append({"id": f"t{target['name']}:{test['requested_at']}", "event": "test",
                         "at": test["requested_at"], "detail": f"a test message asked for by {test['by']}"})
        out[target["name"]] = mine
    return out


def send(store: Store, epoch: int, target: dict[str, Any], batch: list[dict[str, Any]], allow_private: bool,
         ) -> None:
    """Deliver `batch` (claimed) and what follows it, up to MESSAGES_PER_RUN messages; blocking: its own thread.

    Every outcome is written fenced: a process that lost the leadership while sending writes nothing.
    """
    name, notifications = target["name"], store.notifications
    try:
        for sent in range(1, MESSAGES_PER_RUN + 1):
            msg_id = message_id(name, batch)
            body, headers = payload(target["format"], msg_id, batch)
            try:
                post(target["url"], body, headers, msg_id, allow_private)
            except DeliveryError as exc:
                failures = int(target.get("failures") or 0) + 1
                retry = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (failures - 1))
                log.warning("notification target %s: %s; retrying in %gs", name, exc, retry)
                store.leader.run_fenced(epoch, notifications.record_attempt, name, [], False, str(exc), retry)
                return
            more = BATCH if sent < MESSAGES_PER_RUN and target["min_interval_s"] <= 0 else 0
            batch = store.leader.run_fenced(epoch, notifications.record_attempt, name, [e["id"] for e in batch],
                                            True, None, None, more)
            if not batch:
                return
    except NotLeader:
        return  # the new leader sends what is left (the target is free again after SEND_HOLD_S)
    except Exception as exc:  # e.g. the store closed under a server that stops: one line, never a thread traceback
        log.warning("notification target %s: delivery abandoned: %s", name, exc or type(exc).__name__)


async def deliver(ctx: JobContext, target: dict[str, Any]) -> None:
    """Start sending to `target` in its own thread if it is due and not already in flight (never waits for it)."""
    name, now = target["name"], ctx.clock()
    if not target["enabled"]:
        return  # paused: its queue waits for the resume
    if target.get("sending_until") and now < target["sending_until"]:
        return  # a message is in flight (its thread records the outcome)
    if target.get("next_attempt") and now < target["next_attempt"]:
        return  # backing off after a failure
    if target.get("last_delivery") and now < target["last_delivery"] + target["min_interval_s"]:
        return  # rate limit: the queue waits, and the next message carries all of it (up to BATCH)
    if not await offload(ctx.deps.store.notifications.pending, name):
        return  # nothing queued: no write transaction (the claim's) every run for every target
    batch = await ctx.fenced(ctx.deps.store.notifications.claim, name, BATCH)
    if batch:
        threading.Thread(target=send, args=(ctx.deps.store, ctx.epoch, target, batch,
                                            ctx.deps.settings.notify_allow_private),
                         name=f"notify:{name}", daemon=True).start()


async def notifications(ctx: JobContext) -> None:
    store = ctx.deps.store
    events, cursor = await offload(collect, store)
    targets = await offload(store.notifications.all)
    tests = await offload(store.notifications.test_requests)
    per_target = route(targets, events, tests)
    served = {name: request["requested_at"] for name, request in tests.items()}
    if any(per_target.values()) or served or cursor != await offload(store.notifications.cursor):
        await ctx.fenced(store.notifications.enqueue, per_target, cursor, served)
    for target in await offload(store.notifications.all):
        await deliver(ctx, target)
