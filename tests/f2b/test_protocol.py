"""Wire format and the restricted unpickler, with hostile payloads and real fail2ban replies."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from f2b.blocking import sync_call
from f2b.instance import PrivateServer
from f2b.protocol import (
    TERMINATOR,
    Fail2BanRemoteError,
    UnknownJail,
    decode_reply,
    encode_command,
    restricted_loads,
)


class _Evil:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


def test_encode_command_frames_a_pickled_list() -> None:
    data = encode_command(["status", "sshd"])
    assert data.endswith(TERMINATOR)
    assert pickle.loads(data[: -len(TERMINATOR)]) == ["status", "sshd"]
    with pytest.raises(TypeError):
        encode_command("status")
    with pytest.raises(ValueError):
        encode_command([])


def test_refuses_os_system_and_never_runs_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps((0, _Evil(os.system, f"touch {marker}")))
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        decode_reply(payload)
    assert not marker.exists()


@pytest.mark.parametrize("func", [eval, getattr, __import__, open, Path, pickle.loads])
def test_refuses_other_callables(func: Any) -> None:
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps(_Evil(func, "x")))


def test_refuses_garbage_and_odd_shapes() -> None:
    with pytest.raises(pickle.UnpicklingError):
        decode_reply(b"not a pickle")
    with pytest.raises(pickle.UnpicklingError):
        decode_reply(pickle.dumps((0, "x"))[:-3])  # truncated
    with pytest.raises(pickle.UnpicklingError, match="shape"):
        decode_reply(pickle.dumps([0, "x"]))


def test_maps_exception_classes_to_standins() -> None:
    # Pickled exactly like fail2ban pickles its own exceptions: class reference + args via REDUCE.
    code, exc = decode_reply(pickle.dumps((1, KeyError("sshd"))))
    assert code == 1 and isinstance(exc, Fail2BanRemoteError) and not isinstance(exc, KeyError)
    assert (type(exc).__name__, exc.remote_module, exc.args) == ("KeyError", "builtins", ("sshd",))
    state = ValueError("with state")
    state.extra = 1  # type: ignore[attr-defined]  # pickled with BUILD, like exceptions with a __dict__
    code, exc = decode_reply(pickle.dumps((1, state)))
    assert exc.remote_name == "ValueError" and exc.extra == 1


def test_decodes_real_replies(fail2ban: PrivateServer) -> None:
    assert sync_call(fail2ban.socket, "ping") == (0, "pong")
    code, status = sync_call(fail2ban.socket, "status")
    assert code == 0 and dict(status)["Jail list"] == "nginx-http-auth, sshd, sshd-dummy"
    assert sync_call(fail2ban.socket, "set", "sshd", "banip", "192.0.2.1", "2001:db8::1") == (0, 2)
    # Each address arrives as fail2ban's IPAddr reduced to `builtins.str(...)`.
    assert sync_call(fail2ban.socket, "get", "sshd", "banned") == (0, ["192.0.2.1", "2001:db8::1"])
    code, nested = sync_call(fail2ban.socket, "status", "sshd")
    assert code == 0 and dict(dict(nested)["Actions"])["Banned IP list"] == ["192.0.2.1", "2001:db8::1"]


def test_maps_real_unknown_jail_and_other_errors(fail2ban: PrivateServer) -> None:
    code, exc = sync_call(fail2ban.socket, "status", "nojail")
    assert code == 1 and isinstance(exc, UnknownJail) and exc.jail == "nojail"
    assert exc.remote_module == "fail2ban.exceptions" and exc.remote_name == "UnknownJailException"
    code, exc = sync_call(fail2ban.socket, "set", "sshd", "unbanip", "--report-absent", "192.0.2.9")
    assert code == 1 and exc.remote_name == "ValueError" and "not banned" in str(exc)
    code, exc = sync_call(fail2ban.socket, "bogus")
    assert code == 1 and exc.remote_name == "Exception" and str(exc) == "Invalid command"


def test_unpicklable_request_gets_bare_error_string(fail2ban: PrivateServer) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(fail2ban.socket)
        sock.sendall(b"garbage" + TERMINATOR)
        reply = b""
        while not reply.endswith(TERMINATOR):
            reply += sock.recv(4096)
    code, exc = decode_reply(reply)
    assert code == 1 and isinstance(exc, Fail2BanRemoteError) and str(exc).startswith("ERROR:")
