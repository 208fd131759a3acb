"""Notification targets (admin): list with each one's delivery state, create, delete, send a test.

Delivery runs only on the elected leader (jobs/notify.py): a test is handed over through the store and sent
within a few seconds. A target's URL is never shown back in full (webhook URLs carry their secret): scheme, host
and port only.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from actions import notifications as actions
from core.roles import Role
from handlers.api import Call, iso, route
from handlers.jobs import Requested, handed_over
from store.base import offload
from store.notifications import MAX_URL_LENGTH, masked_url

MAX_INTERVAL_S = 86400


class NewTarget(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_LENGTH)]
    format: str = "json"  # json | ntfy | gotify | slack | discord
    events: list[str] = msgspec.field(default_factory=lambda: ["ban"])
    jails: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] = msgspec.field(default_factory=list)
    min_interval_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_INTERVAL_S)] = 30
    enabled: bool = True


class TargetChange(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool  # false: paused (no new events queued, nothing sent); true: resumed


class TargetInfo(msgspec.Struct):
    name: str
    url: str  # scheme://host[:port]/... : the rest is the receiver's secret
    format: str
    events: list[str]
    jails: list[str]  # empty: every jail
    min_interval_s: int
    enabled: bool
    created: str | None
    created_by: str | None
    pending: int  # events queued for the next message
    delivered: int  # events delivered so far
    dropped: int  # events dropped because the queue was full (10,000)
    last_attempt: str | None
    last_delivery: str | None
    last_status: str | None  # null: nothing sent yet; ok | error
    last_error: str | None
    next_attempt: str | None  # after a failure: when the retry is due


def shown(r: dict[str, Any], pending: int) -> TargetInfo:
    return TargetInfo(r["name"], masked_url(r["url"]), r["format"], list(r["events"]), list(r["jails"]),
                      r["min_interval_s"], r["enabled"], iso(r["created"]), r.get("created_by"), pending,
                      int(r.get("delivered") or 0), int(r.get("dropped") or 0), iso(r.get("last_attempt")),
                      iso(r.get("last_delivery")), r.get("last_status"), r.get("last_error"),
                      iso(r.get("next_attempt")))


def _all(store: Any) -> list[TargetInfo]:
    return [shown(r, store.notifications.pending(r["name"])) for r in store.notifications.all()]


async def list_targets(call: Call) -> dict[str, list[TargetInfo]]:
    return {"notifications": await offload(_all, call.deps.store)}


async def create_target(call: Call) -> TargetInfo:
    body: NewTarget = call.body
    record = await actions.create_target(call.deps, call.actor, body.name, body.url, body.format, body.events,
                                         body.jails, body.min_interval_s, body.enabled)
    return shown(record, 0)


async def pause_target(call: Call) -> TargetInfo:
    name = call.param("name")
    body: TargetChange = call.body
    record = await actions.pause_target(call.deps, call.actor, name, body.enabled)
    return shown(record, await offload(call.deps.store.notifications.pending, name))


async def delete_target(call: Call) -> None:
    await actions.delete_target(call.deps, call.actor, call.param("name"))


async def test_target(call: Call) -> Requested:
    name = call.param("name")
    return Requested(name, *handed_over(call.deps.store, await actions.test_target(call.deps, call.actor, name)))


routes = [
    route("GET", "/notifications", list_targets, Role.admin,
          "Notification targets with each one's delivery state (URLs shown without their secret part)."),
    route("POST", "/notifications", create_target, Role.admin,
          "Add a notification target: a webhook URL, a format, the events it wants, optional jails, a rate limit.",
          body=NewTarget, response=TargetInfo, status=201, action=actions.create_target),
    route("PATCH", "/notifications/{name}", pause_target, Role.admin,
          "Pause (`enabled: false`: no new events queued, nothing sent) or resume a notification target.",
          body=TargetChange, response=TargetInfo, action=actions.pause_target),
    route("DELETE", "/notifications/{name}", delete_target, Role.admin, "Remove a notification target.",
          status=204, action=actions.delete_target),
    route("POST", "/notifications/{name}/test", test_target, Role.admin,
          "Ask the leader to send a test message to the target (202; sent within seconds).",
          response=Requested, status=202, action=actions.test_target),
]
