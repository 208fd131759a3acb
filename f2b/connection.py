"""One connection to fail2ban's Unix socket, on asyncio's transport/protocol API.

Why not anyio's socket stream: every receive of it that has to wait registers the socket with the selector and
removes it afterwards, and asyncio formats the socket's repr (a getsockname and a getpeername) for a KeyError it
catches on the way; that was ~10% of the CPU of a ban request (profile in bench/README.md, issue 13). A protocol
stays registered while the connection lives and is handed the bytes as they arrive.

Used by one task at a time (the client's pool hands a connection to one call); `read_reply` may be cancelled
(a deadline), after which the connection must be closed, never reused: a reply may be half read.
"""

from __future__ import annotations

import asyncio
import socket

import anyio

from f2b import protocol

MAX_REPLY_BYTES = 64 * 1024 * 1024


class ConnectionClosed(ConnectionError):
    """fail2ban closed the connection (or it broke) before the reply was complete."""


class ReplyTooLarge(Exception):
    """A reply grew beyond MAX_REPLY_BYTES without its terminator."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our end too: fail2ban answers nothing more on a half-closed connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionClosed("fail2ban closed the connection")
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Connection:
    def __init__(self, transport: asyncio.Transport, proto: _Protocol) -> None:
        self._transport = transport
        self._proto = proto

    @property
    def buffered(self) -> bool:
        """Whether bytes of a reply arrived (then a failure must not be retried: the command may have run)."""
        return bool(self._proto.buf)

    def send(self, payload: bytes) -> None:
        """Queue `payload` (the transport writes what the socket takes now and the rest as it drains)."""
        if self._proto.lost is not None or self._transport.is_closing():
            raise ConnectionClosed("the connection to fail2ban is closed")
        self._transport.write(payload)

    async def read_reply(self) -> bytes:
        """The next reply's bytes, without its terminator."""
        proto, scan = self._proto, 0
        while (end := proto.buf.find(protocol.TERMINATOR, scan)) < 0:
            if proto.lost is not None:
                raise ConnectionClosed(f"fail2ban closed the connection mid-reply: {proto.lost}")
            if len(proto.buf) > MAX_REPLY_BYTES:
                raise ReplyTooLarge(f"fail2ban reply exceeds {MAX_REPLY_BYTES} bytes")
            scan = max(0, len(proto.buf) - len(protocol.TERMINATOR) + 1)
            proto.waiter = asyncio.get_running_loop().create_future()
            try:
                await proto.waiter
            finally:
                proto.waiter = None
        payload = bytes(proto.buf[:end])
        del proto.buf[: end + len(protocol.TERMINATOR)]
        return payload

    def close(self) -> None:
        self._transport.close()


async def connect(path: str) -> Connection:
    """Open a connection; the OSErrors of connecting (FileNotFoundError, PermissionError, ...) propagate.

    The connect is ours, not asyncio's: a non-blocking connect to a Unix socket whose backlog is full fails with
    EAGAIN, and asyncio then waits for writability and takes the socket for connected when it is not (seen as
    "closed before replying" with 50 concurrent calls); here it is retried until it succeeds or really fails."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:
                await anyio.wait_writable(sock)
        transport, proto = await asyncio.get_running_loop().create_unix_connection(_Protocol, sock=sock)
    except BaseException:
        sock.close()
        raise
    return Connection(transport, proto)
