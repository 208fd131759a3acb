"""First start: an admin from BANGUI_ADMIN_PASSWORD(_FILE), or a one-time setup token on disk.

Nobody who merely reaches the port first can take over: `POST /api/v1/setup` needs the token that
only someone with access to `<data dir>/setup-token` (0600) can read. Every worker runs `bootstrap`
at start; `add` (create-if-absent) makes the first writer's token the only one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from typing import Any

import anyio

from errors import Conflict, Forbidden, Unavailable
from store import Store
from store.base import offload, write_secret_file
from store.users import SETUP_COMPLETE_KEY

log = logging.getLogger("bangui.setup")
_KEY = "setup:token"
COMPLETE_KEY = SETUP_COMPLETE_KEY  # set with the first user (store/users.py): a one-key read, no scan
FILENAME = "setup-token"


def is_complete(store: Store) -> bool:
    """Whether a user exists: one small read (the public GET /setup must not scan the store)."""
    return bool(store.shared.get(COMPLETE_KEY))


def bootstrap(store: Store, admin_password: str) -> None:
    if store.users.any_exist():
        store.shared.set(COMPLETE_KEY, True)  # data dirs from before the marker existed
        _forget_token(store)
        return
    if admin_password:
        try:
            store.users.create("admin", admin_password, "admin", only_if_none=True)
            log.info("created user 'admin' from BANGUI_ADMIN_PASSWORD")
        except Conflict:
            pass  # a sibling process created the first user meanwhile
        _forget_token(store)
        return
    store.shared.add(_KEY, secrets.token_urlsafe(24))
    token_file = store.path / FILENAME
    if not token_file.exists():
        write_secret_file(token_file, str(store.shared.get(_KEY)) + "\n")
    log.warning("no user yet: finish setup with the one-time token in %s "
                "(POST /api/v1/setup or the web page), or set BANGUI_ADMIN_PASSWORD", token_file)


async def bootstrap_in_background(store: Store, admin_password: str, retry_s: float = 1.0, *,
                                  task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    """`bootstrap` at start; when the fleet store (Redis) is unreachable, serve anyway and retry until it answers.

    A server (or one of its workers) starting while Redis is away must still come up: fail2ban never depends
    on bangui, and health has to say "degraded" rather than the server being gone."""
    started = False
    while True:
        try:
            await offload(bootstrap, store, admin_password)
            break
        except Unavailable as exc:
            if not started:
                log.warning("first-start check postponed: %s; retrying every %.0f s", exc.message, retry_s)
                task_status.started()
                started = True
            await anyio.sleep(retry_s)
    if started:
        log.info("first-start check done: the fleet store answers again")
    else:
        task_status.started()


def complete(store: Store, setup_token: str, username: str, password: str) -> dict[str, object]:
    expected = store.shared.get(_KEY)
    if store.users.any_exist():
        raise Conflict("setup is already complete", code="setup_complete")
    if not expected or not hmac.compare_digest(str(expected).encode(), setup_token.encode()):
        raise Forbidden("wrong or missing setup token; read it from <data dir>/setup-token",
                        code="invalid_setup_token")
    user = store.users.create(username, password, "admin", only_if_none=True)
    _forget_token(store)
    return user


def _forget_token(store: Store) -> None:
    store.shared.delete(_KEY)
    Path(store.path / FILENAME).unlink(missing_ok=True)
