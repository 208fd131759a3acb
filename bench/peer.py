"""The simplest peer of bangui, for comparison only (issue 13): the standard library's `http.server`, no
authentication, no history, no audit, a new fail2ban socket connection per command.

    python -m bench.peer --port PORT --socket SOCK

Routes (the same paths and bodies as bangui's, so one client drives both):
  POST   /api/v1/jails/{jail}/bans {"ips": [ip, ...]}  -> `set <jail> banip ip...`  -> {"banned": <count>}
  DELETE /api/v1/jails/{jail}/bans/{ip}                -> `set <jail> unbanip ip`   -> {"unbanned": ip}
Keep-alive HTTP/1.1, a thread per connection (`ThreadingHTTPServer`). Not part of bangui, never installed.
"""

from __future__ import annotations

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.common import comparison_args
from f2b.protocol import TERMINATOR, decode_reply, encode_command

PREFIX = "/api/v1/jails/"


def fail2ban(path: str, *args: str) -> tuple[int, Any]:
    """One command on a fresh connection, as a minimal client does it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(encode_command(args))
        buf = b""
        while not buf.endswith(TERMINATOR):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("fail2ban closed the connection")
            buf += chunk
    return decode_reply(buf)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: headers and body are two writes (else ~40 ms delayed-ACK stalls)
    socket_path = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def reply(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        jail = self.path[len(PREFIX):].split("/", 1)[0]
        code, result = fail2ban(self.socket_path, "set", jail, "banip", *body.get("ips", []))
        self.reply(200 if code == 0 else 500, {"banned": result} if code == 0 else {"error": str(result)})

    def do_DELETE(self) -> None:  # noqa: N802 - the stdlib's name
        jail, _, ip = self.path[len(PREFIX):].partition("/bans/")
        code, result = fail2ban(self.socket_path, "set", jail, "unbanip", ip)
        self.reply(200 if code == 0 else 500, {"unbanned": ip} if code == 0 else {"error": str(result)})


def main(argv: list[str] | None = None) -> int:
    args = comparison_args("peer", __doc__, argv)
    if args is None:
        return 0
    Handler.socket_path = args.socket
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()  # until SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
