"""One notification message: its payload in the target's format, and the SSRF-guarded POST that carries it.

The POST follows the blocklists' fetch rules (jobs/blocklists.py): http(s) only, the host resolved once and
refused if any of its addresses is loopback, private, link-local, reserved... (BANGUI_NOTIFY_ALLOW_PRIVATE=1 for
a receiver on your own network), the connection pinned to the checked addresses (no DNS rebinding), TLS checked
against the name. No redirects are followed (a webhook that moved is an error to fix), the whole exchange ends
within TIMEOUT_S, and at most 64 KiB of the answer is read. Blocking http.client: run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import socket
import time
import unicodedata
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jobs.blocklists import _PinnedHTTP, _PinnedHTTPS, lookup  # the blocklists' pinned connections (SSRF guard)
from store.blocklists import forbidden_reason

TIMEOUT_S = 10.0
MAX_LINES = 20  # text formats list this many events, then count the rest
MAX_LINE = 300  # characters of one event line (a username, a remote's error text... can be any length)
NTFY_MAX_BYTES = 4096  # ntfy turns a longer body into an attachment (or refuses it): the text is cut to fit
MAX_ANSWER = 65536
DISCORD_MAX = 2000  # characters of a message's content
DISCORD_SUPPRESS_EMBEDS = 1 << 2  # message flag: no link previews


class DeliveryError(Exception):
    """The message was not accepted; the message says why (shown as the target's last_error)."""


def message_id(target: str, events: list[dict[str, Any]]) -> str:
    """The same for the same batch: a leader that resends after a takeover sends the same id."""
    raw = f"{target}|{events[0]['id']}|{events[-1]['id']}|{len(events)}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _line(event: dict[str, Any]) -> str:
    kind = event["event"]
    if kind in ("ban", "unban"):
        # .get: events queued by an older version have no source_host
        where = f" from {event['source_host']}" if event.get("source_host") else ""
        who = f" by {event['actor']}" if event.get("actor") else ""
        return f"{kind} {event['ip']} in {event['jail']} ({event.get('origin')}{where}{who})"
    return f"{kind}: {event.get('detail') or ''}".rstrip(": ")


def title(events: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event["event"]] = kinds.get(event["event"], 0) + 1
    return "bangui on " + socket.gethostname() + ": " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


# Characters that reshape a message without being seen: line and paragraph breaks (a forged second line, or one
# starting a Markdown list or quote), zero-width and bidi controls (RTL override reverses what follows).
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def plain(line: str) -> str:
    """One event line as inert text in every text format: invisible characters shown as escapes (`\\n`,
    `\\u202e`), URLs defanged (`https[:]//...`: chat apps and ntfy's clients link any `scheme://` they see,
    whatever the message's format), at most MAX_LINE characters. Then each format escapes its own syntax."""
    shown = "".join(ascii(c)[1:-1] if unicodedata.category(c) in _INVISIBLE else c for c in line)
    shown = shown.replace("://", "[:]//")
    return shown if len(shown) <= MAX_LINE else shown[:MAX_LINE - 1] + "\u2026"


def text(events: list[dict[str, Any]], escape: Callable[[str], str] = str, limit: int = 0,
         size: Callable[[str], int] = len) -> str:
    """Up to MAX_LINES event lines (each through `plain`, then `escape`) and a count of the rest; with `limit`,
    only the whole lines that fit in `limit` (measured by `size`) with room for that count: a receiver's size cap
    (Discord's 2,000 characters, ntfy's 4,096 bytes) never cuts a line in two nor drops events uncounted."""
    lines, used = list[str](), 0
    for event in events[:MAX_LINES]:
        line = escape(plain(_line(event)))
        if limit and used + size(line) + 1 > limit - 40:  # 40: room for the count below
            break
        lines.append(line)
        used += size(line) + 1
    if len(lines) < len(events):
        lines.append(f"... and {len(events) - len(lines)} more")
    return "\n".join(lines)


# Discord's Markdown: a backslash shows the next character as it is (headings, quotes, lists, links, spoilers...).
_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()<:@-])")


def slack_escape(value: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting#escaping): without
    them `<!channel>` pings everyone and `<https://evil|bank>` is a disguised link."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord_escape(value: str) -> str:
    return _DISCORD_MARKDOWN.sub(r"\\\1", value)


def payload(fmt: str, msg_id: str, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one message in `fmt`.

    Event lines carry what outsiders control (a username typed at a failed login, an address, a blocklist's error):
    none of it may ping, link or format (issue 20). Every text format gets the lines through `plain` (no line
    breaks, zero-width or bidi characters, no linkable URL, bounded length), within the receiver's size cap. ntfy
    and gotify get plain text (ntfy renders Markdown only with a `Markdown: yes` header, never sent; gotify is
    told `contentType: text/plain` in its display extra); Slack gets its control characters escaped and `mrkdwn:
    false`; Discord gets its Markdown escaped, `allowed_mentions: {"parse": []}` (no @everyone, @here, user or role
    ping) and no link previews (flags: SUPPRESS_EMBEDS).
    """
    head = title(events)
    if fmt == "ntfy":
        body = text(events, limit=NTFY_MAX_BYTES, size=lambda line: len(line.encode()))
        return body.encode(), {"Content-Type": "text/plain; charset=utf-8", "Title": head, "Tags": "bangui"}
    if fmt == "gotify":
        data: dict[str, Any] = {"title": head, "message": text(events), "priority": 5,
                                "extras": {"client::display": {"contentType": "text/plain"}}}
    elif fmt == "slack":
        data = {"text": slack_escape(f"{head}\n{text(events)}"), "mrkdwn": False, "unfurl_links": False,
                "unfurl_media": False}
    elif fmt == "discord":
        bold = f"**{discord_escape(head)}**"
        data = {"content": f"{bold}\n{text(events, discord_escape, DISCORD_MAX - len(bold) - 1)}",
                "allowed_mentions": {"parse": []}, "flags": DISCORD_SUPPRESS_EMBEDS}
    else:  # json: every event, for scripts
        shown = [dict(e, at=datetime.fromtimestamp(e["at"], tz=UTC).isoformat(timespec="seconds")
                      .replace("+00:00", "Z")) for e in events]
        data = {"id": msg_id, "source": "bangui", "host": socket.gethostname(), "title": head, "events": shown}
    return json.dumps(data).encode(), {"Content-Type": "application/json"}


def _addresses(host: str, port: int, allow_private: bool, deadline: float) -> list[str]:
    try:
        addresses = lookup(host, port, deadline)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {host}: {exc}") from None
    for address in [] if allow_private else addresses:
        if reason := forbidden_reason(address):
            raise DeliveryError(f"refused: {host} is (or resolves to) a {reason} address "
                                "(BANGUI_NOTIFY_ALLOW_PRIVATE=1 allows such receivers)")
    return addresses


def post(url: str, body: bytes, headers: dict[str, str], msg_id: str, allow_private: bool) -> int:
    """POST one message; the HTTP status (2xx), else DeliveryError."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    deadline = time.monotonic() + TIMEOUT_S
    addresses = _addresses(str(parts.hostname), port, allow_private, deadline)
    conn = (_PinnedHTTPS if https else _PinnedHTTP)(str(parts.hostname), port, addresses, deadline)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("POST", target, body=body, headers={**headers, "User-Agent": "bangui-notify/1",
                                                          "Idempotency-Key": msg_id, "X-Bangui-Message-Id": msg_id})
        with conn.getresponse() as resp:
            status = resp.status
            # the answer's body says nothing we need: one cut off at the deadline leaves the status as it was
            with contextlib.suppress(OSError, http.client.HTTPException):
                resp.read(MAX_ANSWER)
    except Exception as exc:  # OSError, HTTPException, the pinned connection's deadline (BlocklistError)...
        if conn.expired:  # the watchdog cut a receiver that answers too slowly (a byte at a time, or never)
            raise DeliveryError(f"posting to {parts.hostname}: no answer within {TIMEOUT_S:g} s") from None
        raise DeliveryError(f"posting to {parts.hostname}: {exc or type(exc).__name__}") from None
    finally:
        conn.finish()
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {parts.hostname}")
    return status
