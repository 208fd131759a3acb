"""The `bangui` command: `serve`, `healthcheck`, `user add|passwd|list|delete`, `token create|list|revoke`,
`bouncer add|list|delete`, `audit verify`.

Every subcommand takes the same configuration (flags from settings.FIELDS, or BANGUI_* variables) and
works while servers are running: they all share the store in the data dir. Changes go through the
action layer like the API's, audited as `cli:<os user>`; tokens made here belong to that owner.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio


def _refuse_foreign_modules(error: ImportError | None = None) -> None:
    """Exit naming each module file that is not bangui's own (another package's `settings.py`, a `core/` from the
    working directory: core/install.py), before it breaks bangui somewhere deep."""
    try:
        from core.install import HOW_TO_FIX, shadowed
    except ImportError:  # bangui's own `core` is the one shadowed
        sys.exit(f"bangui: cannot import its own modules ({error}): another package or directory shadows them; "
                 "install bangui into a virtual environment of its own")
    problems = shadowed()
    if problems:
        sys.exit("bangui: " + "; ".join(problems) + f". To fix: {HOW_TO_FIX}")
    if error is not None:
        raise error


try:
    import healthcheck
    import logs
    from actions import bouncers, tokens, users
    from core.actor import cli as cli_actor
    from core.deps import Deps
    from core.roles import ROLE_NAMES, TOKEN_ROLE_NAMES
    from f2b.client import Fail2Ban
    from handlers import transport
    from metrics.files import multiprocess_dir
    from settings import FIELDS, ConfigError, Settings
    from stopping import StopForwarder, join_workers
    from store import Store, StoreError
except ImportError as exc:
    _refuse_foreign_modules(exc)
    raise

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig

log = logging.getLogger("bangui")
# How long the main process waits for workers still shutting down, beyond hypercorn's graceful_timeout: the
# leader's job grace (3 s, jobs/scheduler.py) and the rest of a lifespan's shutdown.
WORKER_STOP_EXTRA_S = 10.0


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for field in FIELDS:
        if field.flag:
            parser.add_argument(field.option, dest=field.name, metavar=field.kind.upper(),
                                help=f"{field.help} [{field.env}, default {field.default}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bangui", description="Watch and steer fail2ban over a JSON API.")
    sub = parser.add_subparsers(dest="command", required=True)
    epilog = "Every setting: " + ", ".join(f.env for f in FIELDS)
    serve = sub.add_parser("serve", help="run the API under hypercorn", epilog=epilog)
    _add_settings_flags(serve)
    check = sub.add_parser("healthcheck", help="exit 0 when the local server answers, else 1 (container "
                           "HEALTHCHECK)", epilog=epilog)
    check.add_argument("--ready", action="store_true", help="ask /api/v1/health/ready instead of /live")
    check.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    _add_settings_flags(check)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user (password from a prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", default="viewer", choices=ROLE_NAMES)
    passwd = user.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("name")
    user.add_parser("list", help="list users")
    delete = user.add_parser("delete", help="delete a user, their sessions and tokens")
    delete.add_argument("name")

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token and print it alone on stdout")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=TOKEN_ROLE_NAMES)
    create.add_argument("--expires-in-days", type=int)
    token.add_parser("list", help="list tokens (no secrets)")
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")

    bouncer = sub.add_parser("bouncer", help="manage CrowdSec bouncer keys").add_subparsers(dest="action",
                                                                                              required=True)
    bouncer_add = bouncer.add_parser("add", help="create a bouncer key and print it alone on stdout (shown once)")
    bouncer_add.add_argument("name")
    bouncer.add_parser("list", help="list bouncers (no keys)")
    bouncer_delete = bouncer.add_parser("delete", help="delete a bouncer key (refused at once)")
    bouncer_delete.add_argument("name")

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="check the audit log's hash chain (exit 1 naming the first "
                              "altered or removed entry)")

    for sp in (add, passwd, user.choices["list"], delete, create, token.choices["list"], revoke, verify,
               bouncer_add, bouncer.choices["list"], bouncer_delete):
        _add_settings_flags(sp)
    return parser


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise SystemExit("bangui: passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _demo_fail2ban(settings: Settings) -> Iterator[Settings]:
    """A private demo server (no firewall changes, its own config dir) with BANGUI_DEMO=on, or with auto when no
    fail2ban answers at the socket."""
    if settings.demo == "off" or (settings.demo == "auto" and _socket_answers(settings.fail2ban_socket)):
        yield settings
        return
    from f2b.instance import PrivateServer, PrivateServerError

    server = PrivateServer(Path(settings.data_dir).resolve() / "demo-fail2ban")
    try:
        server.start()
    except PrivateServerError as exc:
        raise ConfigError(f"--demo auto: no fail2ban answers at {settings.fail2ban_socket} and no demo "
                          f"fail2ban could be started: {exc}. Mount the host's fail2ban socket directory "
                          "(BANGUI_FAIL2BAN_SOCKET) or install Debian's fail2ban package") from None
    for ip in ("203.0.113.5", "198.51.100.23"):  # documentation addresses: something to look at at once
        server.append_failures("sshd", ip, 3)
    log.warning("no fail2ban at %s: started a private demo fail2ban-server (socket %s; it changes no "
                "firewall) and fed it a few failed ssh logins", settings.fail2ban_socket, server.socket)
    try:
        yield replace(settings, fail2ban_socket=str(server.socket), fail2ban_config_dir=str(server.conf_dir))
    finally:
        server.stop()


def _run_hypercorn(config: HypercornConfig) -> int:
    """hypercorn's `run`, with an exit status that tells a supervisor when a worker died.

    hypercorn stops every worker when one dies abnormally, but 0.18.0 may then return 0 (the crash's
    code is overwritten by the siblings' clean exits). The serving loop only ends cleanly when we were
    asked to stop (SIGTERM/SIGINT, whose hypercorn handlers run through Python's signal machinery, which
    also writes each signal's number to the wakeup fd); so 0 without such a signal means a crash.
    """
    from hypercorn.run import run

    forwarder = StopForwarder()  # also tells idle workers of a stop at once (stopping.py)
    try:
        status = int(run(config))
        join_workers(config.graceful_timeout + WORKER_STOP_EXTRA_S)  # see stopping.py
    finally:
        received = forwarder.close()
    if status == 0 and not {signal.SIGTERM, signal.SIGINT} & set(received):
        log.error("a worker died abnormally and hypercorn stopped the server: exiting 1 for the supervisor")
        return 1
    return status


_LISTEN_HINTS = {
    errno.EADDRINUSE: "another process listens there: stop it, or choose another port",
    errno.EADDRNOTAVAIL: "no network interface of this host has that address: use 127.0.0.1, 0.0.0.0 or [::]",
    errno.EACCES: "ports below 1024 need privileges bangui does not have: choose a port above 1024",
}


def _explain_listen_errors(config: HypercornConfig, bind: str) -> None:
    """hypercorn's socket creation, a failure to listen told as one line that says what to change (it was a
    traceback from inside hypercorn's run: a port already in use is the commonest mistake of all). The override
    removes itself when called, before hypercorn pickles the config for its workers (a closure cannot go)."""
    create_sockets = config.create_sockets

    def create() -> Any:
        vars(config).pop("create_sockets", None)
        try:
            return create_sockets()
        except OSError as exc:
            hint = _LISTEN_HINTS.get(exc.errno or 0, "check the address")
            if isinstance(exc, socket.gaierror):
                hint = "the host name does not resolve here: use an address, e.g. 127.0.0.1 or [::]"
            raise ConfigError(f"cannot listen on {bind} (BANGUI_BIND or --bind): {exc.strerror or exc}; {hint}",
                              ) from None

    config.create_sockets = create  # type: ignore[method-assign]


def forget_working_directory() -> None:
    """Drop the directory bangui was started in from sys.path (issue 20 item 13).

    `python -c`/`-m` put it first; an `app.py` or a `jobs/` package there would shadow bangui's own modules
    here and in every worker (spawned workers inherit this sys.path). The only exception is bangui's own
    source directory (`python -m cli serve` in a checkout)."""
    own = Path(__file__).resolve().parent
    try:
        here = Path.cwd().resolve()
    except OSError:  # the directory was removed: nothing can be imported from it
        return
    if here != own:
        sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]


def application_path() -> str:
    """bangui's app for hypercorn, by absolute path: hypercorn puts the directory of the module it is given
    first on sys.path (`app` alone would mean the working directory's app.py)."""
    own = Path(__file__).resolve().with_name("app")
    # hypercorn splits the path at ':' (an optional "asgi:" prefix): a directory with one cannot be named
    return f"{own}:create_app()" if ":" not in str(own) else "app:create_app()"


def serve(settings: Settings) -> int:
    from hypercorn.config import Config

    store = Store(settings)  # fail here, once, with the clear line, rather than in every worker
    try:
        if settings.fleet_url:
            from fleet.hosts import check_host_name

            check_host_name(settings, store)
    finally:
        store.close()
    with _demo_fail2ban(settings) as settings, multiprocess_dir(settings.data_dir):
        os.environ.update(settings.to_env())  # spawned workers rebuild exactly these settings
        config = Config()
        config.bind = [settings.bind]
        _explain_listen_errors(config, settings.bind)
        config.workers = settings.workers
        config.application_path = application_path()
        config.graceful_timeout = 5.0
        config.accesslog = None
        transport.configure(config)  # no server header, read timeout (issue 8 items 13, 17)
        # hypercorn's own lines through our handler only, in our format (text or JSON): given a name instead,
        # hypercorn adds a handler of its own and every line came out twice, once in its format
        config.errorlog = logging.getLogger("hypercorn.error")
        host = settings.bind.rsplit(":", 1)[0].strip("[]")
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        # logged, not printed, so that BANGUI_LOG_FORMAT=json gives JSON lines only
        log.info("serving http://%s:%s/ with %d worker(s); data in %s", shown, settings.bind.rsplit(":", 1)[1],
                 settings.workers, settings.data_dir)
        token_file = Path(settings.data_dir) / "setup-token"
        if not settings.admin_password and token_file.exists():
            log.warning("first run: open the page and finish setup with the token from `cat %s`, or set "
                        "BANGUI_ADMIN_PASSWORD", token_file)
        serving = healthcheck.record_serving(settings.data_dir, settings.bind)  # what `bangui healthcheck` asks
        try:
            return _run_hypercorn(config)
        finally:
            healthcheck.forget_serving(serving)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _manage(args: argparse.Namespace, deps: Deps) -> int:
    """Run one user/token/audit subcommand through the action layer (audited as `cli:<os user>`)."""
    actor, store = cli_actor(), deps.store
    if args.command == "user":
        if args.action == "add":
            await users.create_user(deps, actor, args.name, _read_password("password: "), args.role)
        elif args.action == "passwd":
            await users.update_user(deps, actor, args.name, password=_read_password("new password: "))
        elif args.action == "list":
            _print_json([{k: u[k] for k in ("name", "role", "created")} for u in store.users.list()])
        elif args.action == "delete":
            await users.delete_user(deps, actor, args.name)
    elif args.command == "token":
        if args.action == "create":
            token, _ = await tokens.create_token(deps, actor, args.name, args.role, args.expires_in_days)
            print(token)
        elif args.action == "list":
            _print_json(store.tokens.list())
        else:
            await tokens.revoke_token(deps, actor, args.id)
    elif args.command == "bouncer":
        if args.action == "add":
            key, _ = await bouncers.create_bouncer(deps, actor, args.name)
            print(key)
        elif args.action == "list":
            _print_json(store.bouncers.list())
        else:
            await bouncers.delete_bouncer(deps, actor, args.name)
    elif args.action == "verify":
        result = store.audit.verify()
        _print_json(result)
        return 0 if result["ok"] else 1
    return 0


def manage(args: argparse.Namespace, store: Store) -> int:
    deps = Deps(store.settings, store, Fail2Ban(store.settings.fail2ban_socket))
    return anyio.run(_manage, args, deps)


def main(argv: Sequence[str] | None = None) -> int:
    forget_working_directory()  # before the lazy imports (hypercorn, fleet, the workers' app)
    _refuse_foreign_modules()  # then every bangui module must be its own (core/install.py)
    os.umask(0o077)  # everything bangui creates (store, archive, setup token, demo files) is private
    args = build_parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name, None) is not None}
    served = None
    if args.command == "healthcheck":
        # the record of the server on our data dir (env or flag) first; else the flags of the container's
        # `bangui serve` count too (a --bind or --data-dir argument): see healthcheck.py
        with contextlib.suppress(ConfigError):
            served = healthcheck.served_bind(Settings.load(overrides=overrides).data_dir)
        if served is None:
            overrides = {**healthcheck.serve_flags(build_parser()), **overrides}
            with contextlib.suppress(ConfigError):  # the record in the data dir the container's serve was given
                served = healthcheck.served_bind(Settings.load(overrides=overrides).data_dir)
    try:
        settings = Settings.load(overrides=overrides)
        logs.configure(settings.log_level, settings.log_format)
        if args.command == "serve":
            return serve(settings)
        if args.command == "healthcheck":
            return healthcheck.check(settings, args.ready, args.timeout, bind=args.bind or served)
        store = Store(settings)
        try:
            return manage(args, store)
        finally:
            store.close()
    except (ConfigError, StoreError) as exc:
        print(f"bangui: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # AppError from the stores: show its message, not a traceback
        message = getattr(exc, "message", None)
        if message is None:
            raise
        print(f"bangui: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
