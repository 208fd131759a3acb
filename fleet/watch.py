"""The shared jails' watcher: publishes the bans fail2ban makes itself, once, even across restarts of the agent.

Every WATCH_S it reads the shared jails' ban lists (one pipelined call) and shares what is new there, except the
bans the agent applied from the fleet (marked before they reach fail2ban: a propagated ban is never propagated
again). What it knew is kept in `<data dir>/fleet-watch.json` (0600, replaced atomically):
- `known`: each jail's ban list at the last look. A new agent (a restart, another worker taking over as host
  leader) compares fail2ban's list with it, so a ban fail2ban made while no agent watched is shared when the
  agent starts. Without the file (the first start in fleet mode, or a jail newly shared) the current list is
  the baseline: bans made before this host ever shared that jail are not published.
- `applied`: fleet bans the agent is applying and has not seen in the list yet (a crash between the two must not
  publish them as this host's own);
- `own`: what this host shared and fail2ban still bans (republished if Redis restarts empty).
Writing: the file holds every ban of the shared jails (~2 MB with 100,000), so it is not rewritten at every look
that sees a change: a change is written at once when the last write is SAVE_S old, else SAVE_S after it (a burst
costs one write a second), and always when the watcher stops (the agent is cancelled: the host leader steps
down, or its lifespan ends at a graceful stop). A crash of the process (SIGKILL, the OOM killer) loses what
changed in the last SAVE_S at most: the next agent shares this host's own bans of that second again. That is
harmless: the other hosts find them banned already (no new history; fail2ban restarts the ban's time, a second
late at most) and the log holds one more entry. The fleet's bans must never be taken for this host's own, so
their marks do not wait for the next save: each is appended to `<data dir>/fleet-watch-applied.jsonl` before the
ban reaches fail2ban (a few bytes per address, not the whole view) and folded into the next save, which empties
it. (Neither file is fsynced: they outlive a crash of the process, not of the machine.)
A ban that expires and comes back while no agent watches is missed (it was known).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import fleet
from store.base import offload

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.fleet")
WATCH_S = 0.1
SAVE_S = 1.0  # the view is written at most this often (and when the watcher stops)
STOP_SAVE_S = 5.0  # how long a stopping watcher may take to write its view
NAME = "fleet-watch.json"
MARKS = "fleet-watch-applied.jsonl"
Parts = dict[str, dict[str, set[str]]]  # "known" | "applied" | "own" -> jail -> addresses


class WatchState:
    """The watcher's memory in the data dir: the view, and the fleet bans marked since it was written. An
    unreadable view counts as none (a fresh baseline); the marks are read whatever the view."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / NAME
        self.marks = Path(data_dir) / MARKS

    def load(self) -> Parts:
        try:
            raw = json.loads(self.path.read_text())
            parts = {part: {jail: set(ips) for jail, ips in raw.get(part, {}).items()}
                     for part in ("known", "applied", "own")}
        except FileNotFoundError:
            parts = {"known": {}, "applied": {}, "own": {}}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("fleet: ignoring %s (%s): the shared jails' current bans are the new baseline",
                        self.path, exc)
            parts = {"known": {}, "applied": {}, "own": {}}
        for jail, ips in self._marked():
            parts["applied"].setdefault(jail, set()).update(ips)
        return parts

    def _marked(self) -> list[tuple[str, list[str]]]:
        try:
            lines = self.marks.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                mark = json.loads(line)
                out.append((str(mark["jail"]), [str(ip) for ip in mark["ips"]]))
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash while it was written
                log.warning("fleet: ignoring a damaged line of %s", self.marks)
        return out

    def mark(self, jail: str, ips: list[str]) -> None:
        """Remember fleet bans about to be applied (one appended line; the page cache outlives the process)."""
        fd = os.open(self.marks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps({"jail": jail, "ips": ips}, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)

    def save(self, parts: dict[str, dict[str, list[str]]]) -> None:
        """Write the view (the marks included), then empty the marks it holds."""
        data = {part: {jail: sorted(ips) for jail, ips in jails.items()} for part, jails in parts.items()}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, self.path)
        self.marks.unlink(missing_ok=True)


class Watcher:
    def __init__(self, deps: Deps, share: Callable[[str, list[str]], None]) -> None:
        self.deps, self.share = deps, share
        self.state = WatchState(Path(deps.store.path))
        saved = self.state.load()  # read once per agent
        self.saved_known = saved["known"]
        self.known: dict[str, set[str]] = {}
        self.applied = saved["applied"]  # jail -> bans we are applying from the fleet: not ours to share
        self.own = saved["own"]  # jail -> bans this host shared that fail2ban still has
        self.jails = set(fleet.shared_jails(deps.settings))
        self._saving = anyio.Lock()  # a save and a mark never interleave (see mark_applied)
        self.dirty = False  # the view changed since it was last written
        self.saved_at = float("-inf")  # time.monotonic() of the last write

    async def mark_applied(self, jail: str, ips: list[str]) -> None:
        """Before the agent bans `ips` from the fleet in a shared jail: they are the fleet's, not this host's.
        On disk when this returns. Under the save's lock: a save empties the marks file once the view it wrote
        holds them, so a mark made while it wrote would be lost."""
        if jail in self.jails:
            async with self._saving:
                self.applied.setdefault(jail, set()).update(ips)
                self.dirty = True
                await offload(self.state.mark, jail, list(ips))

    async def save(self) -> None:
        """Write the view now. The copies are taken here, on the event loop, in one go (a consistent view: a mark
        is dropped only together with the `known` that replaces it); sorting and writing run in a thread."""
        async with self._saving:
            parts = {"known": {j: list(v) for j, v in self.known.items()},
                     "applied": {j: list(v) for j, v in self.applied.items() if v},
                     "own": {j: list(v) for j, v in self.own.items() if v}}
            self.dirty, self.saved_at = False, time.monotonic()
            try:
                await offload(self.state.save, parts)
            except BaseException:
                self.dirty = True
                raise

    async def watch(self) -> None:
        try:
            await self._watch()
        finally:  # stopping (cancelled, or an error the agent retries after): write what changed since the last save
            if self.dirty:
                with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_SAVE_S):
                    try:
                        await self.save()
                    except OSError as exc:
                        log.warning("fleet: could not save %s: %s", self.state.path, exc)

    async def _watch(self) -> None:
        present = set(await self.deps.fail2ban.jail_names())
        jails = [j for j in fleet.shared_jails(self.deps.settings) if j in present]
        if not jails:
            await anyio.sleep_forever()
        commands = [["get", j, "banned"] for j in jails]
        first = await self.deps.fail2ban.pipeline(commands)
        for jail, banned in zip(jails, first, strict=True):
            if jail not in self.known:  # (known already: this loop restarted after an error)
                self.known[jail] = self.saved_known.get(jail, set(banned))
        missed = sum(len(set(b) - self.known[j] - self.applied.get(j, set()))
                     for j, b in zip(jails, first, strict=True))
        if missed:
            log.info("fleet: sharing %d ban(s) fail2ban made while no agent watched", missed)
        await self.save()  # at once: a jail's first baseline must survive a crash in the next second
        # ...and it does not hold back the next save: the bans shared at the first look (made while no agent
        # watched) are written at once, so a stop right after does not share them again.
        self.saved_at = float("-inf")
        while True:
            if await self.look(jails, await self.deps.fail2ban.pipeline(commands)):
                self.dirty = True
            if self.dirty and time.monotonic() - self.saved_at >= SAVE_S:
                await self.save()
            await anyio.sleep(WATCH_S)

    async def look(self, jails: list[str], results: list[Any]) -> bool:
        """Share what is new in the ban lists; True when anything the state file holds changed."""
        changed = False
        for jail, banned in zip(jails, results, strict=True):
            now = set(banned)
            if now == self.known[jail]:
                continue
            applied = self.applied.get(jail, set())
            fresh = sorted(now - self.known[jail] - applied)
            applied -= now  # seen (or banned before the fleet asked): the mark has done its work
            self.known[jail] = now
            own = self.own.setdefault(jail, set())
            own &= now
            own.update(fresh)
            changed = True
            if fresh:
                await offload(self.share, jail, fresh)
        return changed
