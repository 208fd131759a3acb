"""How an action is declared, authorised and audited.

    @action("jail.ban", Role.operator, target="jail")
    async def ban(act: Act, jail: str, ips: list[str]) -> BanResult: ...

    result = await ban(deps, actor, "sshd", ["192.0.2.1"])

The decorator checks the actor's role (401 for nobody, 403 for too little: one entry, `denied`, nothing ran).
Then it is write-ahead (issue 18): the entry is appended as `pending` before the body's first side effect
(`Act.begin`; when that append fails the action does not run: 507 `storage_full` or 503), and completed after
it: `ok`, `denied` (401/403/429 raised by the body), `failed` (anything else; status is the error's, 500 for
an unexpected one), or `partial` (failed after `details["applied"]` items were done). An action declared with
`plans=True` calls `await act.begin(plan)` itself once its input is checked (a ban: the plan names the jail, the
origin and every address, what the leader needs to reconcile it after a crash, jobs/reconcile.py); if it fails
before that, it leaves one entry as before. The body adds what is worth keeping to `act.details` (never a
secret) and may set `act.status` (e.g. 201) and `act.target`.

A completion (or a history write a ban deferred, `act.deferred`) that cannot be written never undoes the work:
the entry stays `pending` and this process retries it before its next action starts; if the process dies
first, the leader reconciles the entry (`interrupted`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from core.actor import Actor
from core.processes import this_process
from core.roles import Role
from errors import AppError, Forbidden, Unauthorized
from store.base import offload
from store.faults import storage_full, too_little_room
from store.inline import write

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.audit")
P = ParamSpec("P")
R = TypeVar("R")
DENIED_STATUSES = {401, 403, 429}
INLINE_PLAN = 1000  # a plan of more addresses than this is appended in a worker thread (store/inline.py)
# Writes this process could not make (a completion, a ban's history): each list is retried in order before the
# next action of this process begins; the leader reconciles them if the process dies first.
_stranded: list[list[Callable[[], Any]]] = []


@dataclasses.dataclass
class Act:
    """What an action body gets: the dependencies, who acts, and the audit entry being built."""

    deps: Deps
    actor: Actor
    name: str
    target: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: int = 200
    entry_id: int | None = None  # the pending entry, once begun
    deferred: list[Callable[[], Any]] = dataclasses.field(default_factory=list)  # writes to make before completing

    async def begin(self, plan: dict[str, Any] | None = None) -> None:
        """Append this action's entry as `pending` (write-ahead): call before the first side effect. Raises
        507 storage_full / 503 when it cannot be written: then nothing may happen."""
        await _retry_stranded()
        if too_little_room(self.deps.store.audit.path.parent):  # SQLite may still find WAL room for this entry,
            raise storage_full()  # but not for its completion or the history of a ban
        details = dict(self.details)
        ips = (plan or {}).get("ips") or []
        if len(ips) > len(details.get("ips") or ()):  # the entry holds a digest; the intent holds the list
            details["ips_sha256"] = hashlib.sha256("\n".join(ips).encode()).hexdigest()
        audit = self.deps.store.audit
        pending = dict(entry(self.actor, self.name, self.target, 0, details), outcome="pending")
        intent = (this_process(), json.dumps(plan, separators=(",", ":")) if plan else None)
        if len(ips) > INLINE_PLAN:
            self.entry_id = await offload(audit.append, pending, intent)
        else:
            self.entry_id = await write(audit.nowait, audit.append, pending, intent)


def outcome_of(status: int, details: dict[str, Any] | None = None) -> str:
    if status < 400:
        return "ok"
    if status in DENIED_STATUSES:
        return "denied"
    return "partial" if (details or {}).get("applied") else "failed"


def entry(actor: Actor, name: str, target: str | None, status: int, details: dict[str, Any]) -> dict[str, Any]:
    return {"actor": actor.name, "role": actor.role.name if actor.role is not None else None, "via": actor.via,
            "source_ip": actor.source_ip, "action": name, "target": target, "outcome": outcome_of(status, details),
            "status": status, "details": details}


async def record(deps: Deps, actor: Actor, name: str, target: str | None, status: int,
                 details: dict[str, Any] | None = None) -> None:
    """Append one audit entry; a failure is logged (the audit must not turn done work into an error)."""
    audit = deps.store.audit
    try:  # inline when SQLite's lock is free (store/inline.py): one thread hop less per action
        await write(audit.nowait, audit.append, entry(actor, name, target, status, details or {}))
    except Exception:
        log.exception("could not write the audit entry for %s by %s", name, actor.name)


async def finish(act: Act, status: int, details: dict[str, Any]) -> None:
    """Complete the action's entry (or, if it never began, append its one entry); never raises."""
    if act.entry_id is None:
        await record(act.deps, act.actor, act.name, act.target, status, details)
        return
    audit = act.deps.store.audit
    completion = dict(entry(act.actor, act.name, act.target, status, details), of=act.entry_id)
    writes: list[Callable[[], Any]] = [*act.deferred, functools.partial(audit.append, completion)]
    if act.deferred:
        if not await _run(writes):
            _stranded.append(writes)
        return
    try:
        await write(audit.nowait, audit.append, completion)
    except Exception:
        log.exception("could not complete audit entry %d (%s by %s): it stays pending and is retried",
                      act.entry_id, act.name, act.actor.name)
        _stranded.append(writes)


async def _run(writes: list[Callable[[], Any]]) -> bool:
    """Make `writes` in order in a worker thread, dropping each one done; False if one failed."""
    while writes:
        try:
            await offload(writes[0])
        except Exception as exc:
            log.warning("a deferred audit/history write failed again (%s); retried later", exc)
            return False
        writes.pop(0)
    return True


async def _retry_stranded() -> None:
    while _stranded:
        if not await _run(_stranded[0]):
            return
        _stranded.pop(0)


async def record_refusal(deps: Deps, actor: Actor, name: str, target: str | None, exc: AppError) -> None:
    """Audit a call refused before its action ran (no credentials, too little role, CSRF, bad input)."""
    await record(deps, actor, name, target, exc.status, {"error": exc.code})


def authorise(actor: Actor, role: Role | None) -> None:
    """Nothing for a public action (role None); 401 for nobody, 403 for too little role."""
    if role is None:
        return
    if actor.role is None:
        raise Unauthorized()
    if actor.role < role:
        raise Forbidden(f"this needs the {role.name} role; you have {actor.role.name}")


class Action(Generic[R]):
    """An audited operation; call it as `await action(deps, actor, *args)`."""

    def __init__(self, name: str, role: Role | None, target: str | None,
                 body: Callable[..., Awaitable[R]], plans: bool = False) -> None:
        self.name, self.role, self.body, self.plans = name, role, body, plans
        self.target_param = target
        self._signature = inspect.signature(body)
        params = list(self._signature.parameters.values())[1:]  # after `act`
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._target_index = positional.index(target) if target in positional else None
        functools.update_wrapper(self, body)

    def target_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if self.target_param is None:
            return None
        if self.target_param in kwargs:
            value = kwargs[self.target_param]
        elif self._target_index is not None and self._target_index < len(args):
            value = args[self._target_index]  # positional: no signature binding per call (issue 13)
        else:
            try:
                bound = self._signature.bind_partial(None, *args, **kwargs)
            except TypeError:
                return None
            value = bound.arguments.get(self.target_param)
        return None if value is None else str(value)[:200]

    async def __call__(self, deps: Deps, actor: Actor, *args: Any, **kwargs: Any) -> R:
        act = Act(deps, actor, self.name, self.target_of(args, kwargs))
        try:
            authorise(actor, self.role)
        except AppError as exc:  # refused before anything ran: one entry, no pending phase
            await record(deps, actor, self.name, act.target, exc.status, {"error": exc.code})
            raise
        if not self.plans:
            await act.begin()
        try:
            result = await self.body(act, *args, **kwargs)
        except AppError as exc:
            await finish(act, exc.status, dict(act.details, error=exc.code))
            raise
        except Exception as exc:
            await finish(act, 500, dict(act.details, error="internal_error", exception=type(exc).__name__))
            raise
        await finish(act, act.status, act.details)  # act.actor: login names its user
        return result


def action(name: str, role: Role | None, target: str | None = None, *, plans: bool = False,
           ) -> Callable[[Callable[Concatenate[Act, P], Awaitable[R]]], Action[R]]:
    """Declare an action named `<resource>.<verb>` needing `role` (None: public, e.g. login); `target`
    names the argument audited as its target; `plans`: the body calls `act.begin(plan)` itself."""

    def wrap(body: Callable[Concatenate[Act, P], Awaitable[R]]) -> Action[R]:
        return Action(name, role, target, body, plans)

    return wrap
