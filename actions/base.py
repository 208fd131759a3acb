"""How an action is declared, authorised and audited.

    @action("jail.ban", Role.operator, target="jail")
    async def ban(act: Act, jail: str, ips: list[str]) -> BanResult: ...

    result = await ban(deps, actor, "sshd", ["192.0.2.1"])

The decorator checks the actor's role (401 for nobody, 403 for too little), runs the body, and appends
exactly one audit entry whatever happens: outcome `ok`, `denied` (401/403/429 and CSRF: the caller was
refused) or `failed` (anything else went wrong; status is the error's, 500 for an unexpected one).
The body adds what is worth keeping to `act.details` (never a secret) and may set `act.status`
(e.g. 201) and `act.target`. A failed audit write is logged and never undoes the work.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from core.actor import Actor
from core.roles import Role
from errors import AppError, Forbidden, Unauthorized
from store.inline import write

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.audit")
P = ParamSpec("P")
R = TypeVar("R")
DENIED_STATUSES = {401, 403, 429}


@dataclasses.dataclass
class Act:
    """What an action body gets: the dependencies, who acts, and the audit entry being built."""

    deps: Deps
    actor: Actor
    name: str
    target: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: int = 200


def outcome_of(status: int) -> str:
    return "ok" if status < 400 else "denied" if status in DENIED_STATUSES else "failed"


def entry(actor: Actor, name: str, target: str | None, status: int, details: dict[str, Any]) -> dict[str, Any]:
    return {"actor": actor.name, "role": actor.role.name if actor.role is not None else None, "via": actor.via,
            "source_ip": actor.source_ip, "action": name, "target": target, "outcome": outcome_of(status),
            "status": status, "details": details}


async def record(deps: Deps, actor: Actor, name: str, target: str | None, status: int,
                 details: dict[str, Any] | None = None) -> None:
    """Append one audit entry; a failure is logged (the audit must not turn done work into an error)."""
    audit = deps.store.audit
    try:  # inline when SQLite's lock is free (store/inline.py): one thread hop less per action
        await write(audit.nowait, audit.append, entry(actor, name, target, status, details or {}))
    except Exception:
        log.exception("could not write the audit entry for %s by %s", name, actor.name)


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
                 body: Callable[..., Awaitable[R]]) -> None:
        self.name, self.role, self.body = name, role, body
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
            result = await self.body(act, *args, **kwargs)
        except AppError as exc:
            await record(deps, actor, self.name, act.target, exc.status, dict(act.details, error=exc.code))
            raise
        except Exception as exc:
            await record(deps, actor, self.name, act.target, 500,
                         dict(act.details, error="internal_error", exception=type(exc).__name__))
            raise
        await record(deps, act.actor, self.name, act.target, act.status, act.details)  # login names its user
        return result


def action(name: str, role: Role | None, target: str | None = None,
           ) -> Callable[[Callable[Concatenate[Act, P], Awaitable[R]]], Action[R]]:
    """Declare an action named `<resource>.<verb>` needing `role` (None: public, e.g. login); `target`
    names the argument audited as its target."""

    def wrap(body: Callable[Concatenate[Act, P], Awaitable[R]]) -> Action[R]:
        return Action(name, role, target, body)

    return wrap
