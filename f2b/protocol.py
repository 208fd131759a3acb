"""fail2ban's socket wire format (checked against fail2ban 1.0.2), with a restricted decoder.

Request: ``pickle.dumps([arg, ...], HIGHEST_PROTOCOL) + TERMINATOR``. Reply: a pickled ``(code, result)``
plus the same terminator; code 0 carries a value, code 1 an exception INSTANCE pickled by class
reference (``fail2ban.exceptions.UnknownJailException``, ``builtins.ValueError``, ...). A request the
server cannot unpickle is answered with a bare pickled str ``"ERROR: ..."`` instead of a tuple.

Why a restricted unpickler: a plain ``pickle.loads`` imports and calls any global the payload names.
fail2ban's own classes are not importable here anyway (its package lives in Debian's python3), and
a reply must never be able to run code in bangui. Replies reference globals even for plain values:
every banned address is fail2ban's ``IPAddr`` (a str subclass) reduced to ``builtins.str(...)``.
So `RestrictedUnpickler` allows a short list of builtin value types, turns exception classes into
`Fail2BanRemoteError` stand-ins (keeping the original class name and args) and refuses the rest.

The second half turns decoded replies into plain dataclasses (`JailStatus`, `BanTime`, ...), so the
shapes fail2ban uses (nested pairs, comma-joined jail lists, formatted ban times) are parsed in one place.
"""

from __future__ import annotations

import builtins
import io
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TERMINATOR = b"<F2B_END_COMMAND>"
#: Sent (followed by TERMINATOR) to end a connection politely; closing the socket works as well.
CLOSE_COMMAND = b"<F2B_CLOSE_COMMAND>"

# Value types a reply may construct. All are inert: calling them with pickled args runs no user code.
_SAFE_BUILTINS = frozenset({"str", "int", "float", "bool", "list", "tuple", "dict", "set", "frozenset",
                            "bytes", "complex"})
# Exception-looking class names from any module (fail2ban.*, builtins, sqlite3, ...): mapped, never imported.
_EXCEPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Warning|Exit|Interrupt)")


class Fail2BanRemoteError(Exception):
    """Stand-in for an exception raised inside fail2ban-server.

    ``remote_module``/``remote_name`` name the original class (e.g. ``builtins``/``ValueError``);
    ``args`` are the original args, so ``str(exc)`` is fail2ban's own message.
    """

    remote_module = ""
    remote_name = "Fail2BanRemoteError"

    def __repr__(self) -> str:
        return f"{self.remote_name}{self.args!r}"


class UnknownJail(Fail2BanRemoteError):
    """fail2ban's ``UnknownJailException``; ``args[0]`` is the jail name that was asked for."""

    remote_module = "fail2ban.exceptions"
    remote_name = "UnknownJailException"

    @property
    def jail(self) -> str:
        return str(self.args[0]) if self.args else ""


_STANDINS: dict[tuple[str, str], type[Fail2BanRemoteError]] = {
    ("fail2ban.exceptions", "UnknownJailException"): UnknownJail,
}


def _standin(module: str, name: str) -> type[Fail2BanRemoteError]:
    """One stand-in subclass per original (module, name), so ``type(exc).__name__`` is the original name."""
    key = (module, name)
    cls = _STANDINS.get(key)
    if cls is None:
        if len(_STANDINS) > 256:  # a misbehaving peer cannot grow this cache without bound
            return Fail2BanRemoteError
        cls = type(name, (Fail2BanRemoteError,), {"remote_module": module, "remote_name": name})
        _STANDINS[key] = cls
    return cls


def _is_exception_name(module: str, name: str) -> bool:
    if module == "builtins":
        obj = getattr(builtins, name, None)
        return isinstance(obj, type) and issubclass(obj, BaseException)
    return bool(_EXCEPTION_NAME.fullmatch(name))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only inert builtins and maps exception classes to stand-ins."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if _is_exception_name(module, name):
            return _standin(module, name)
        raise pickle.UnpicklingError(f"fail2ban reply references a forbidden global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("fail2ban reply uses persistent ids")


def encode_command(args: Sequence[str]) -> bytes:
    """Frame one command (a list of str, exactly what ``fail2ban-client`` sends) for the socket."""
    if isinstance(args, str | bytes):
        raise TypeError("encode_command takes a sequence of arguments, not a single string")
    items = [str(a) for a in args]
    if not items:
        raise ValueError("empty fail2ban command")
    return pickle.dumps(items, pickle.HIGHEST_PROTOCOL) + TERMINATOR


def encode_stream_command(args: Sequence[Any]) -> bytes:
    """Frame a command whose arguments nest lists (``reload <jail> [opts] <stream>``): the stream that
    fail2ban's config readers produce, made of str/int/float/bool/None and lists of them, nothing else."""
    def check(value: Any) -> None:
        if isinstance(value, list | tuple):
            for item in value:
                check(item)
        elif not (value is None or isinstance(value, str | int | float | bool)):
            raise TypeError(f"a fail2ban command stream holds no {type(value).__name__}")

    check(list(args))
    return pickle.dumps(list(args), pickle.HIGHEST_PROTOCOL) + TERMINATOR


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` through `RestrictedUnpickler`; raises ``pickle.UnpicklingError`` on anything else."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # truncated/garbled data surfaces as EOFError, ValueError, ...
        raise pickle.UnpicklingError(f"undecodable fail2ban reply: {exc!r}") from None


def decode_reply(payload: bytes) -> tuple[int, Any]:
    """Decode one reply (without or with its trailing TERMINATOR) into ``(code, result)``.

    code 0: ``result`` is the value. code 1: ``result`` is a `Fail2BanRemoteError` instance (e.g.
    `UnknownJail`). The server's bare ``"ERROR: ..."`` str (it could not unpickle our request) also
    comes back as code 1 with a `Fail2BanRemoteError` carrying that text. Any other shape, or a
    forbidden global, raises ``pickle.UnpicklingError``.
    """
    if payload.endswith(TERMINATOR):
        payload = payload[: -len(TERMINATOR)]
    value = restricted_loads(payload)
    if isinstance(value, str):
        return 1, Fail2BanRemoteError(value)
    if not (isinstance(value, tuple) and len(value) == 2 and type(value[0]) is int):
        raise pickle.UnpicklingError(f"unexpected fail2ban reply shape: {type(value).__name__}")
    code, result = value
    if code != 0 and not isinstance(result, Fail2BanRemoteError):
        result = Fail2BanRemoteError(str(result))
    return code, result


# ---- reply shapes (plain data for the client's callers; ``dataclasses.asdict`` works) -------------------


@dataclass(frozen=True, slots=True)
class JailStatus:
    name: str
    currently_failed: int
    total_failed: int
    file_list: list[str]  # empty for journal-backed jails
    currently_banned: int
    total_banned: int
    banned_ips: list[str]


@dataclass(frozen=True, slots=True)
class JailConfig:
    bantime: int  # seconds; -1 = permanent
    findtime: int
    maxretry: int
    ignoreip: list[str]
    logpaths: list[str]
    actions: list[str]


@dataclass(frozen=True, slots=True)
class BanTime:
    ip: str
    banned_at: float  # epoch seconds (whole seconds: fail2ban prints no fraction)
    expires_at: float | None  # None = permanent


@dataclass(frozen=True, slots=True)
class ServerTotals:
    """fail2ban's version and its counters summed over the jails (GET /server shows these, handlers/server.py)."""

    version: str
    jail_count: int
    currently_banned: int
    total_banned: int
    currently_failed: int
    total_failed: int


@dataclass(frozen=True, slots=True)
class ServerSummary(ServerTotals):
    jails: list[JailStatus]

    @classmethod
    def of(cls, version: str, jails: list[JailStatus]) -> ServerSummary:
        """The summary of ``jails``, with their counters summed."""
        return cls(version, len(jails), sum(j.currently_banned for j in jails),
                   sum(j.total_banned for j in jails), sum(j.currently_failed for j in jails),
                   sum(j.total_failed for j in jails), jails)


# "<ip> \t<start> + <bantime> = <end>", times in the server's local time (fail2ban's MyTime.time2str).
_WITH_TIME = re.compile(r"^(?P<ip>\S+) \t(?P<start>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+ (?P<bantime>-?\d+) = ")


def parse_jail_list(status: Any) -> list[str]:
    """Jail names from a ``status`` reply: ``[('Number of jail', 2), ('Jail list', 'a, b')]``."""
    joined = str(dict(status).get("Jail list", ""))
    return [name.strip() for name in joined.split(",") if name.strip()]


def parse_jail_status(name: str, reply: Any) -> JailStatus:
    """Flatten a ``status <jail>`` reply: ``[('Filter', [(k, v), ...]), ('Actions', [(k, v), ...])]``."""
    flat: dict[str, Any] = {}
    for _, pairs in reply:
        flat.update(pairs)
    return JailStatus(
        name=name, currently_failed=int(flat.get("Currently failed", 0)),
        total_failed=int(flat.get("Total failed", 0)),
        file_list=[str(f) for f in flat.get("File list", [])],
        currently_banned=int(flat.get("Currently banned", 0)), total_banned=int(flat.get("Total banned", 0)),
        banned_ips=[str(ip) for ip in flat.get("Banned IP list", [])])


def parse_ban_time(line: str) -> BanTime | None:
    """One ``get <jail> banip --with-time`` line; None when it does not have that shape.

    The start is read in OUR local time zone (fail2ban prints its own); a bantime of -1 (printed as
    ending ``9999-12-31 23:59:59``) means permanent: ``expires_at`` None.
    """
    match = _WITH_TIME.match(line)
    if match is None:
        return None
    start = datetime.strptime(match["start"], "%Y-%m-%d %H:%M:%S").timestamp()
    bantime = int(match["bantime"])
    return BanTime(match["ip"], start, start + bantime if bantime >= 0 else None)


def is_not_banned(result: Any) -> bool:
    """True for the error ``set <jail> unbanip --report-absent`` gives for an absent address.

    fail2ban raises a plain ``ValueError("not banned: [...]")``, so the text tells it apart.
    """
    return (isinstance(result, Fail2BanRemoteError) and result.remote_name == "ValueError"
            and str(result).startswith("not banned"))
