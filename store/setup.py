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

from errors import Conflict, Forbidden
from store import Store
from store.base import write_secret_file
from store.users import SETUP_COMPLETE_KEY

log = logging.getLogger("bangui.setup")
_KEY = "setup:token"
COMPLETE_KEY = SETUP_COMPLETE_KEY  # set with the first user (store/users.py): a one-key read, no scan
FILENAME = "setup-token"


def is_complete(store: Store) -> bool:
    """Whether a user exists: one small read (the public GET /setup must not scan the store)."""
    return bool(store.cache.get(COMPLETE_KEY))


def bootstrap(store: Store, admin_password: str) -> None:
    if store.users.any_exist():
        store.cache.set(COMPLETE_KEY, True)  # data dirs from before the marker existed
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
    store.cache.add(_KEY, secrets.token_urlsafe(24))
    token_file = store.path / FILENAME
    if not token_file.exists():
        write_secret_file(token_file, str(store.cache.get(_KEY)) + "\n")
    log.warning("no user yet: finish setup with the one-time token in %s "
                "(POST /api/v1/setup or the web page), or set BANGUI_ADMIN_PASSWORD", token_file)


def complete(store: Store, setup_token: str, username: str, password: str) -> dict[str, object]:
    expected = store.cache.get(_KEY)
    if store.users.any_exist():
        raise Conflict("setup is already complete", code="setup_complete")
    if not expected or not hmac.compare_digest(str(expected).encode(), setup_token.encode()):
        raise Forbidden("wrong or missing setup token; read it from <data dir>/setup-token",
                        code="invalid_setup_token")
    user = store.users.create(username, password, "admin", only_if_none=True)
    _forget_token(store)
    return user


def _forget_token(store: Store) -> None:
    store.cache.delete(_KEY)
    Path(store.path / FILENAME).unlink(missing_ok=True)
