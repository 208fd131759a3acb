"""The `blocklists` job: fetch each due blocklist, parse it, ban its entries in its jail, record the outcome.

Fetching (the seed fetched whatever URL it was given: SSRF):
- http:// and https:// only, no credentials (`store.blocklists.check_url`), checked again at every redirect
  hop; at most MAX_REDIRECTS hops, never from https down to http.
- The host is resolved ONCE per hop; the fetch is refused if ANY of its addresses is not global (loopback,
  private, link-local, multicast, reserved, unspecified...: `store.blocklists.forbidden_reason`) unless
  BANGUI_BLOCKLIST_ALLOW_PRIVATE=1. We connect only to those checked addresses, never to a second lookup (no
  DNS rebinding), with the name in the Host header and in TLS (SNI and certificate check).
- At most BANGUI_BLOCKLIST_MAX_BYTES are read; the whole fetch, redirects included, ends within
  BANGUI_BLOCKLIST_TIMEOUT_SECONDS. Blocking http.client (standard library) in a worker thread.
Parsing: one entry per line; `#`/`;` comments; text after the first word ignored; IPv4, IPv6, CIDR (banned
as ONE fail2ban entry, never skipped). Invalid lines counted with examples, not fatal; duplicates dropped;
over MAX_ENTRIES entries fails the list. Banning: one fail2ban round trip per list; new bans go to history
(origin `blocklist`, actor `blocklist:<name>`). One list's error is logged and recorded in its record, the
others still run. Outcomes are written fenced (a lost leader writes nothing).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio.to_thread

from actions import bans
from actions.bans import protected_addresses
from core.actor import job as job_actor
from core.addresses import canonical_ip
from core.refusals import Screened, refusal_reason
from errors import AppError
from f2b.client import Fail2Ban
from settings import Settings
from store.base import offload
from store.blocklists import check_url, forbidden_reason

if TYPE_CHECKING:
    from core.deps import Deps
    from jobs.definitions import JobContext

log = logging.getLogger("bangui.jobs.blocklists")
MAX_ENTRIES = 100_000
MAX_REDIRECTS = 3
MAX_EXAMPLES = 5
# fail2ban runs every action of every ban inside the one `banip` call: 100,000 entries took ~3 s with no-op
# actions (measured), far longer with firewall actions. The job's own timeout (600 s) still bounds it.
BAN_TIMEOUT_S = 480.0


class BlocklistError(Exception):
    """One list cannot be imported; the message (its `last_error`) says why."""


class Parsed(NamedTuple):
    entries: list[str]  # normalised, de-duplicated, in list order
    invalid: int  # lines that were neither an address nor an acceptable network (refused ones included)
    examples: list[str]  # the first few of them
    refused: int = 0  # of `invalid`: addresses/networks the ban action refuses (core/refusals.py)
    refused_examples: list[str] = []  # the first few of those (`examples` has the first few of all)
    malformed_examples: list[str] = []  # the first few of the others


def lookup(host: str, port: int, deadline: float) -> list[str]:
    """getaddrinfo's addresses, in resolver order, within `deadline`: the resolver's own timeouts (5 s a try, per
    name server, per attempt) lie outside every socket timeout, so a dead name server would stretch the exchange.
    A lookup still running at the deadline is left to end in its daemon thread; TimeoutError here."""
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller's thread  # noqa: BLE001
            box.append(exc)

    worker = threading.Thread(target=work, name=f"resolve:{host}", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not box:
        raise TimeoutError("the name server did not answer in time")
    if isinstance(box[0], BaseException):
        raise box[0]
    return list(dict.fromkeys(str(info[4][0]) for info in box[0]))  # never empty: getaddrinfo raises


def resolve(host: str, port: int, allow_private: bool, deadline: float) -> list[str]:
    """The addresses to connect to, in resolver order. Refused if ANY is internal (never pick among them)."""
    try:
        addresses = lookup(host, port, deadline)
    except (OSError, UnicodeError) as exc:
        raise BlocklistError(f"cannot resolve {host}: {exc}") from None
    for address in [] if allow_private else addresses:
        if reason := forbidden_reason(address):
            where = address if address == host else f"{host} resolves to {address}, which"
            raise BlocklistError(f"refused: {where} is a {reason} address "
                                 "(BANGUI_BLOCKLIST_ALLOW_PRIVATE=1 allows such targets)")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects only to the checked `addresses` (the next one if a connect fails, like create_connection),
    whatever `host` (sent as Host) would resolve to now.

    The deadline bounds the whole exchange, not each read: a socket timeout restarts at every byte, so a server
    dripping its status line or headers a byte at a time would hold http.client's readline for ever. A watchdog
    timer shuts the socket down at the deadline (a blocked read then returns at once) and sets `expired`; callers
    end with finish(), not close().
    """

    def __init__(self, host: str, port: int, addresses: list[str], deadline: float) -> None:
        super().__init__(host, port, timeout=_left(deadline))
        self.addresses, self.deadline = addresses, deadline
        self.raw: socket.socket | None = None  # kept: http.client drops self.sock once the response owns it
        self.expired = False
        self._guard = threading.Lock()  # the watchdog never shuts down a socket that close() is releasing
        self._watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        with self._guard:
            self.expired = True
            if self.raw is not None:
                with contextlib.suppress(OSError):
                    self.raw.shutdown(socket.SHUT_RDWR)

    def _adopt(self, sock: socket.socket) -> None:
        with self._guard:
            if self.expired:
                sock.close()
                raise TimeoutError("the deadline passed while connecting")
            self.sock = self.raw = sock

    def _open(self) -> socket.socket:
        for address in self.addresses[:-1]:
            with contextlib.suppress(OSError):
                return socket.create_connection((address, self.port), _left(self.deadline))
        return socket.create_connection((self.addresses[-1], self.port), _left(self.deadline))

    def connect(self) -> None:
        self._adopt(self._open())

    def close(self) -> None:
        # http.client calls this itself once a response owns the socket (`Connection: close`, HTTP/1.0): the
        # watchdog stays on until finish(), since the body is read after that
        with self._guard:
            super().close()

    def finish(self) -> None:
        """The exchange is over: stop the watchdog, close."""
        self._watchdog.cancel()
        self.close()


class _PinnedHTTPS(_PinnedHTTP):
    default_port = 443

    def connect(self) -> None:
        sock = self._open()
        self._adopt(sock)  # watched during the handshake too
        try:  # the certificate is verified against the name, not the address we connect to
            self._adopt(ssl.create_default_context().wrap_socket(sock, server_hostname=self.host))
        except BaseException:
            sock.close()
            raise


def _timed_out() -> BlocklistError:
    return BlocklistError("the download took longer than BANGUI_BLOCKLIST_TIMEOUT_SECONDS")


def _left(deadline: float) -> float:
    if (left := deadline - time.monotonic()) <= 0:
        raise _timed_out()
    return left


def _get(parts: urllib.parse.SplitResult, port: int, addresses: list[str], deadline: float, max_bytes: int,
         ) -> tuple[int, str | None, bytes]:
    """One GET: (status, Location, body); the body only for 200, read within the deadline and size cap."""
    cls = _PinnedHTTPS if parts.scheme.lower() == "https" else _PinnedHTTP
    conn = cls(str(parts.hostname), port, addresses, deadline)
    too_big = BlocklistError(f"the list exceeds {max_bytes} bytes (BANGUI_BLOCKLIST_MAX_BYTES)")
    try:
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn.request("GET", target, headers={"User-Agent": "bangui-blocklist/1", "Accept": "text/plain, */*"})
        with conn.getresponse() as resp:  # closing it frees the socket, which the response may own by now
            if resp.status != 200:
                return resp.status, resp.getheader("Location"), b""
            declared = resp.getheader("Content-Length") or ""
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_big
            chunks, size, raw = list[bytes](), 0, conn.raw
            assert raw is not None  # set by connect()
            while True:
                raw.settimeout(_left(deadline))  # no single read may outlast the overall deadline
                chunk = resp.read1(65536)  # one recv per call, so a server dripping bytes cannot stretch it
                if not chunk:
                    if conn.expired:  # the watchdog's shutdown reads as an end of file: never a truncated list
                        raise _timed_out()
                    return 200, None, b"".join(chunks)
                size += len(chunk)
                if size > max_bytes:
                    raise too_big
                chunks.append(chunk)
    except (OSError, http.client.HTTPException) as exc:
        if conn.expired:
            raise _timed_out() from None
        raise BlocklistError(f"fetching from {parts.hostname}: {exc or type(exc).__name__}") from None
    finally:
        conn.finish()


def fetch(url: str, settings: Settings) -> bytes:
    """The body of `url` under the rules of the module docstring (blocking: run it in a thread).
    Raises BlocklistError, or InvalidInput `invalid_url` for a bad URL (a redirect's included)."""
    deadline = time.monotonic() + settings.blocklist_timeout_seconds
    allow_private, max_bytes = settings.blocklist_allow_private, settings.blocklist_max_bytes
    for _ in range(MAX_REDIRECTS + 1):
        parts = check_url(url)  # InvalidInput for a redirect to a URL we would not have accepted
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
        addresses = resolve(str(parts.hostname), port, allow_private, deadline)
        status, location, body = _get(parts, port, addresses, deadline, max_bytes)
        if status == 200:
            return body
        if status not in (301, 302, 303, 307, 308) or not location:
            raise BlocklistError(f"HTTP {status} from {parts.hostname}")
        next_url = urllib.parse.urljoin(url, location)
        if https and urllib.parse.urlsplit(next_url).scheme.lower() != "https":
            raise BlocklistError(f"refused a redirect from https to {next_url[:200]}")
        url = next_url
    raise BlocklistError(f"more than {MAX_REDIRECTS} redirects")


def parse(text: str, limit: int = MAX_ENTRIES, protected: frozenset[str] = frozenset()) -> Parsed:
    """The entries of a list (see the module docstring); BlocklistError beyond `limit` entries. Entries the
    ban action would refuse (core/refusals.py: loopback, too wide, covering `protected`...) count as invalid."""
    entries: dict[str, None] = {}
    invalid, refused, examples, refused_examples, malformed = 0, 0, list[str](), list[str](), list[str]()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split(None, 1)
        if not words:
            continue
        value = canonical_ip(words[0])
        is_refused = value is not None and refusal_reason(words[0], protected) is not None
        if value is None or is_refused:
            invalid += 1
            refused += is_refused
            for kept in (examples, refused_examples if is_refused else malformed):
                if len(kept) < MAX_EXAMPLES:
                    kept.append(line.strip()[:100])
            continue
        entries[value] = None
        if len(entries) > limit:
            raise BlocklistError(f"the list has more than {limit} entries; split it or use broader networks")
    return Parsed(Screened(entries, protected), invalid, examples, refused, refused_examples, malformed)


def fetch_and_parse(url: str, settings: Settings) -> Parsed:
    """Fetch `url` (SSRF rules above) and parse it as an import would, refusing what the ban action refuses
    (blocking: run it in a thread). Raises BlocklistError or InvalidInput `invalid_url`."""
    return parse(fetch(url, settings).decode(errors="replace"), protected=protected_addresses(settings))


async def ban(deps: Deps, name: str, jail: str, ips: list[str]) -> list[str]:
    """Ban `ips` in `jail` through the ban action (one round trip, history origin `blocklist`, audited as
    `blocklist:<name>`, via job); return those not banned before. Its own client: fail2ban runs every action
    of every ban inside that call, so it needs a longer timeout."""
    if not ips:
        return []
    s = deps.settings
    client = Fail2Ban(s.fail2ban_socket, max(s.fail2ban_timeout, BAN_TIMEOUT_S), max_calls=1, max_idle=0)
    try:
        result = await bans.ban(deps, job_actor(f"blocklist:{name}"), jail, ips, origin="blocklist",
                                client=client)
    finally:
        await client.aclose()
    return result["banned"]


Apply = Callable[["Deps", str, str, list[str]], Awaitable["list[str] | None"]]


async def import_list(deps: Deps, record: dict[str, Any], now: float, apply: Apply | None = None) -> dict[str, Any]:
    """Fetch, parse and ban one list; returns the outcome fields for its record (never raises). `apply(deps,
    name, jail, entries)` bans them and returns the new bans, or None when it cannot tell (fleet mode hands the
    entries to every host: jobs/fleet/blocklists.py); default: `ban` here."""
    name, jail = record["name"], record["jail"]
    outcome: dict[str, Any] = {"last_run": now, "last_status": "error", "last_error": None, "last_count": 0,
                               "last_added": 0, "last_invalid": 0, "last_invalid_examples": []}
    try:
        url, settings = record["url"], deps.settings  # parsed in the thread too: 100,000 lines would stall the loop
        parsed = await anyio.to_thread.run_sync(fetch_and_parse, url, settings)
        outcome.update(last_count=len(parsed.entries), last_invalid=parsed.invalid,
                       last_invalid_examples=parsed.examples)
        if parsed.invalid and not parsed.entries:
            raise BlocklistError(f"no valid entry in {parsed.invalid} lines: is this a list of addresses?")
        fresh = await (apply or ban)(deps, name, jail, parsed.entries)
        outcome.update(last_status="ok", last_added=None if fresh is None else len(fresh))
        log.info("blocklist %s: %d entries, %s newly banned in %s", name, len(parsed.entries),
                 "?" if fresh is None else len(fresh), jail)
    except (BlocklistError, AppError) as exc:
        outcome["last_error"] = str(exc)
        log.warning("blocklist %s not imported: %s", name, exc)
    except Exception as exc:  # one bad list never stops the others
        outcome["last_error"] = f"{type(exc).__name__}: {exc}"
        log.exception("blocklist %s failed", name)
    return outcome


async def blocklists(ctx: JobContext) -> None:
    """Run every due list, one after the other (kind to fail2ban), recording each outcome fenced. In fleet mode
    the lists are the fleet's and the fleet leader imports them (jobs/fleet/blocklists.py): nothing to do here."""
    if ctx.deps.settings.fleet_url:
        return
    store = ctx.deps.store.blocklists
    for record, requested_at in await offload(store.due):
        if not await ctx.still_leader():
            return
        outcome = await import_list(ctx.deps, record, ctx.clock())
        # NotLeader (another process leads now) reaches the scheduler, which steps down.
        await ctx.fenced(store.record_run, record["name"], record["created"], outcome, requested_at)
