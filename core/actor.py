"""Who performs an action, as the action layer and the audit log see it."""

from __future__ import annotations

import dataclasses
import getpass

from core.roles import Role

VIAS = ("cookie", "token", "cli", "job", "fleet", "anonymous")


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """`name` is what the audit log and history show: a username, `token:<name>`, `cli:<os user>`,
    `blocklist:<list>` (a job) or `anonymous`. `user` is the account whose rights apply (a token's
    owner); `role` is None for an unauthenticated caller. `token_id`/`session_id` identify the
    credential (the session id never leaves the process: it is not audited).
    """

    name: str
    role: Role | None
    via: str
    source_ip: str | None = None
    user: str | None = None
    token_id: str | None = None
    session_id: str | None = dataclasses.field(default=None, repr=False)
    expires_at: float | None = None  # the session's absolute end, or the token's expiry


def anonymous(source_ip: str | None) -> Actor:
    return Actor("anonymous", None, "anonymous", source_ip)


def cli_user() -> str:
    """`cli:<os user>`: the owner of what the CLI creates, and its name in the audit log."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"cli:{name}"


def cli(role: Role = Role.admin) -> Actor:
    """The host's administrator at the command line (whoever can read the data dir is one)."""
    user = cli_user()
    return Actor(user, role, "cli", "local", user=user)


def job(name: str) -> Actor:
    """A background job acting on the leader, named as history shows it (e.g. `blocklist:<list>`)."""
    return Actor(name, Role.admin, "job", None, user=name)
