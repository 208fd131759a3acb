"""The log of applied configuration changes, kept in `<data dir>/config/changes/` (one JSON file each,
0600 in a 0700 dir): who, when, which action, every file's previous and new text, and a unified diff.
The previous text is what a revert restores; nothing else in bangui keeps old versions of files.

`outcome` is `applied`, or `interrupted` for a change whose process died midway (recovered from the
journal, f2bconfig/journal.py): then `state` says where the configuration was left (`before`: rolled back
to the before-images) and `fail2ban_verified` whether fail2ban was seen running every jail it ran before.
The id is also in the action's audit details (`change`), so the two records match.
"""

from __future__ import annotations

import difflib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from errors import NotFound
from f2bconfig.files import fsync_dir

MAX_KEPT = 1000  # oldest records beyond this are deleted


def unified_diff(rel: str, before: bytes | None, after: bytes | None) -> str:
    old = (before or b"").decode(errors="replace").splitlines(keepends=True)
    new = (after or b"").decode(errors="replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, "a/" + rel if before is not None else "/dev/null",
                                        "b/" + rel if after is not None else "/dev/null"))


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="surrogateescape")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", errors="surrogateescape")


class ChangeLog:
    def __init__(self, data_dir: Path | str) -> None:
        self.folder = Path(data_dir) / "config" / "changes"

    @staticmethod
    def new_id() -> str:
        return f"{int(time.time() * 1000):013d}-{secrets.token_hex(3)}"

    def exists(self, change_id: str) -> bool:
        return (self.folder / f"{change_id}.json").is_file()

    def record(self, action: str, actor: str, target: str | None, files: dict[str, tuple[bytes | None, bytes | None]],
               summary: dict[str, Any] | None = None, change_id: str | None = None,
               outcome: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write one record durably (fsynced): ``outcome`` defaults to {"outcome": "applied", "state": "after"}."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = time.time()
        change_id = change_id or self.new_id()
        entry = {
            "id": change_id, "time": now, "actor": actor, "action": action, "target": target,
            **(outcome or {"outcome": "applied", "state": "after"}),
            "files": [{"path": rel, "before": _text(b), "after": _text(a)} for rel, (b, a) in sorted(files.items())],
            "diff": "".join(unified_diff(rel, b, a) for rel, (b, a) in sorted(files.items())),
            "summary": summary or {},
        }
        path = self.folder / f"{change_id}.json"
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(entry, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(path.with_suffix(".tmp"), path)
        fsync_dir(self.folder)
        self._prune()
        return entry

    def _ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted((p.stem for p in self.folder.glob("*.json")), reverse=True)

    def _prune(self) -> None:
        for stale in self._ids()[MAX_KEPT:]:
            (self.folder / f"{stale}.json").unlink(missing_ok=True)

    def get(self, change_id: str) -> dict[str, Any]:
        if not change_id.replace("-", "").isalnum():
            raise NotFound(f"no configuration change {change_id!r}", code="change_not_found")
        try:
            entry: dict[str, Any] = json.loads((self.folder / f"{change_id}.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"no configuration change {change_id!r}", code="change_not_found") from None
        return entry

    def page(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, without the full file texts (the diff says what changed)."""
        out = []
        for change_id in self._ids()[:limit]:
            entry = self.get(change_id)
            entry["files"] = [f["path"] for f in entry["files"]]
            out.append(entry)
        return out

    @staticmethod
    def reverted_by(entries: list[dict[str, Any]]) -> dict[str, str]:
        """change id -> id of the applied `config.revert` that undid it and still stands, among `entries` (any
        order). A revert that was itself reverted no longer counts: its change is in effect again."""
        by: dict[str, str] = {}
        for entry in sorted(entries, key=lambda e: e["id"]):  # ids sort by time
            if entry["action"] != "config.revert" or entry.get("outcome", "applied") != "applied":
                continue
            target = str(entry["target"])
            by[target] = entry["id"]
            undone = next((e for e in entries if e["id"] == target), None)
            if undone is not None and undone["action"] == "config.revert":
                by.pop(str(undone["target"]), None)
        return by

    @staticmethod
    def file_states(entry: dict[str, Any]) -> dict[str, tuple[bytes | None, bytes | None]]:
        return {f["path"]: (_bytes(f["before"]), _bytes(f["after"])) for f in entry["files"]}
