"""Notification targets: create, delete, and "send a test" (delivery itself runs on the leader: jobs/notify.py)."""

from __future__ import annotations

import functools
from typing import Any

from actions.base import Act, action
from actions.jobs import hand_to_leader
from core.roles import Role
from store.base import offload
from store.notifications import masked_url

JOB = "notifications"


@action("notification.create", Role.admin, target="name")
async def create_target(act: Act, name: str, url: str, fmt: str, events: list[str], jails: list[str],
                        min_interval_s: int, enabled: bool) -> dict[str, Any]:
    act.details.update(url=masked_url(url), format=fmt, events=events, jails=jails, min_interval_s=min_interval_s,
                       enabled=enabled)  # never the full URL: it carries the receiver's secret
    act.status = 201
    return await offload(act.deps.store.notifications.create, name, url, fmt, events, jails, min_interval_s,
                         enabled, act.actor.name)


@action("notification.update", Role.admin, target="name")
async def pause_target(act: Act, name: str, enabled: bool) -> dict[str, Any]:
    """Pause (enabled=False) or resume a target; the updated record."""
    act.details.update(enabled=enabled)
    return await offload(act.deps.store.notifications.set_enabled, name, enabled)


@action("notification.delete", Role.admin, target="name")
async def delete_target(act: Act, name: str) -> None:
    act.status = 204
    await offload(act.deps.store.notifications.delete, name)


@action("notification.test", Role.admin, target="name")
async def test_target(act: Act, name: str) -> dict[str, Any]:
    """Ask the leader to send a test message to the target now; the request record."""
    return await hand_to_leader(act, JOB, functools.partial(act.deps.store.notifications.request_test, name))
