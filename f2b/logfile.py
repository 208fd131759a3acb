"""fail2ban's own log file: parse its lines, read the tail backwards, follow it across rotation.

fail2ban 1.0.2 writes ``2026-11-30 03:43:43,462 fail2ban.server         [12187]: INFO    message``
(local time, its logger name padded, pid, level padded). A line without that prefix (a traceback, a
wrapped message) is a continuation: its time is None and it keeps the level of the line before it.
Blocking file work here is called through store.base.offload by the handlers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

# fail2ban's levels (its own NOTICE/MSG/HEAVYDEBUG/TRACEDEBUG included) by severity, for ?level=.
LEVELS = {"TRACEDEBUG": 7, "HEAVYDEBUG": 5, "DEBUG": 10, "INFO": 20, "MSG": 22, "NOTICE": 25,
          "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
_LINE = re.compile(r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,(?P<ms>\d{1,6}))? +\S+ *\[\d+\]: "
                   r"(?P<level>[A-Z]+) +(?P<text>.*)")
BLOCK = 64 * 1024
MAX_SCAN = 64 * 1024 * 1024  # a tail with a rare grep reads at most this far back


@dataclass(frozen=True, slots=True)
class Entry:
    time: float | None  # epoch seconds (fail2ban writes local time)
    level: str | None
    text: str


def parse(lines: list[str], level: str | None = None) -> list[Entry]:
    """Entries of consecutive lines; ``level`` is the level of the line before the first one."""
    out = []
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            out.append(Entry(None, level, line))
            continue
        level = match["level"]
        stamp = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S").timestamp()
        out.append(Entry(stamp + int((match["ms"] or "0").ljust(6, "0")) / 1e6, level, match["text"]))
    return out


def wanted(entry: Entry, grep: str | None, min_level: int | None) -> bool:
    if min_level is not None and LEVELS.get(entry.level or "", 20) < min_level:
        return False
    return grep is None or grep in entry.text.lower()


def _decode(raw: bytes) -> list[str]:
    return raw.decode("utf-8", errors="replace").splitlines()


def tail(path: str, count: int, grep: str | None = None, min_level: int | None = None
         ) -> tuple[list[Entry], bool]:
    """The last ``count`` entries passing the filters (grep: case-insensitive substring), oldest first,
    and whether the file holds earlier lines than those returned (truncated)."""
    needle = grep.lower() if grep else None
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        buf, size = b"", BLOCK
        while True:
            step = min(size, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            size *= 2
            lines = _decode(buf)
            if pos > 0 and lines:
                lines = lines[1:]  # the first may be cut in the middle
            hits = [e for e in parse(lines) if wanted(e, needle, min_level)]
            if len(hits) >= count or pos == 0 or len(buf) >= MAX_SCAN:
                return hits[-count:] if count else [], pos > 0 or len(hits) > count


class Follower:
    """Reads what is appended to a file, reopening it when it is rotated (a new file at the path) or
    truncated (copytruncate). Starts at the current end, or at a `cursor` a previous Follower gave
    (``"<inode>:<offset>"``: the same file from that offset; another file, i.e. rotated meanwhile: its start)."""

    def __init__(self, path: str, resume: str | None = None) -> None:
        self.path = path
        self._fh: BinaryIO | None = None
        self._partial = b""
        self._level: str | None = None
        self._open(at_end=True)
        if resume and self._fh is not None:
            self._resume(resume)

    def _resume(self, cursor: str) -> None:
        assert self._fh is not None
        inode, _, offset = cursor.partition(":")
        if not (inode.isdigit() and offset.isdigit()):
            return  # not one of ours: follow from the end
        info = os.fstat(self._fh.fileno())
        same = int(inode) == info.st_ino and int(offset) <= info.st_size
        self._fh.seek(int(offset) if same else 0)

    @property
    def cursor(self) -> str | None:
        """Where the next read starts (after the last complete line returned)."""
        if self._fh is None:
            return None
        return f"{os.fstat(self._fh.fileno()).st_ino}:{self._fh.tell() - len(self._partial)}"

    def _open(self, at_end: bool) -> None:
        self.close()
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 (kept open between reads)
        except FileNotFoundError:  # rotated away and not yet recreated: retry at the next read
            self._fh = None
            return
        if at_end:
            self._fh.seek(0, os.SEEK_END)
        self._partial = b""

    def read(self) -> list[Entry]:
        """Entries appended since the last call (complete lines only)."""
        if self._fh is None:
            self._open(at_end=False)
            if self._fh is None:
                return []
        chunk = self._fh.read(4 * BLOCK)
        if not chunk:
            if self._rotated():
                self._open(at_end=False)
                return self.read()
            return []
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        entries = parse(_decode(data[:cut]), self._level)
        if entries:
            self._level = entries[-1].level
        return entries

    def _rotated(self) -> bool:
        assert self._fh is not None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False  # keep reading the old file until a new one appears
        mine = os.fstat(self._fh.fileno())
        return (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev) or now.st_size < self._fh.tell()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
