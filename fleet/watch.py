"""The shared jails' watcher: publishes the bans fail2ban makes itself, once, even across restarts of the agent.

Every WATCH_S it reads the shared jails' ban lists (one pipelined call) and shares what is new there, except the
bans the agent applied from the fleet (marked before they reach fail2ban: a propagated ban is never propagated
again). What it knew is kept in `<data dir>/fleet-watch.json` (0600, replaced atomically on every change):
- `known`: each jail's ban list at the last look. A new agent (a restart, another worker taking over as host
  leader) compares fail2ban's list with it, so a ban fail2ban made while no agent watched is shared when the
  agent starts. Without the file (the first start in fleet mode, or a jail newly shared) the current list is
  the baseline: bans made before this host ever shared that jail are not published.
- `applied`: fleet bans the agent is applying and has not seen in the list yet (a crash between the two must not
  publish them as this host's own);
- `own`: what this host shared and fail2ban still bans (republished if Redis restarts empty).
A ban that expires and comes back while no agent watches is missed (it was known); a crash in the instant between
publishing and saving publishes those bans once more, and the other hosts find them banned already.
"""

from __future__ import annotations

import json
import logging
import os
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
NAME = "fleet-watch.json"


class WatchState:
    """The watcher's memory in the data dir; an unreadable file counts as none (a fresh baseline)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / NAME

    def load(self) -> dict[str, dict[str, set[str]]]:
        try:
            raw = json.loads(self.path.read_text())
            return {part: {jail: set(ips) for jail, ips in raw.get(part, {}).items()}
                    for part in ("known", "applied", "own")}
        except FileNotFoundError:
            return {"known": {}, "applied": {}, "own": {}}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("fleet: ignoring %s (%s): the shared jails' current bans are the new baseline",
                        self.path, exc)
            return {"known": {}, "applied": {}, "own": {}}

    def save(self, data: dict[str, dict[str, list[str]]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, self.path)


class Watcher:
    def __init__(self, deps: Deps, share: Callable[[str, list[str]], None]) -> None:
        self.deps, self.share = deps, share
        self.state = WatchState(Path(deps.store.path))
        saved = self.state.load()  # a small file, read once per agent
        self.saved_known = saved["known"]
        self.known: dict[str, set[str]] = {}
        self.applied = saved["applied"]  # jail -> bans we are applying from the fleet: not ours to share
        self.own = saved["own"]  # jail -> bans this host shared that fail2ban still has
        self.jails = set(fleet.shared_jails(deps.settings))
        self._saving = anyio.Lock()

    async def mark_applied(self, jail: str, ips: list[str]) -> None:
        """Before the agent bans `ips` from the fleet in a shared jail: they are the fleet's, not this host's."""
        if jail in self.jails:
            self.applied.setdefault(jail, set()).update(ips)
            await self.save()

    async def save(self) -> None:
        async with self._saving:  # in order: the last write holds the newest state
            data = {"known": {j: sorted(v) for j, v in self.known.items()},
                    "applied": {j: sorted(v) for j, v in self.applied.items() if v},
                    "own": {j: sorted(v) for j, v in self.own.items() if v}}
            await offload(self.state.save, data)

    async def watch(self) -> None:
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
        await self.save()
        while True:
            if await self.look(jails, await self.deps.fail2ban.pipeline(commands)):
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
