"""Which files of the config dir bangui may read and write, resolved safely.

A path is relative to the config dir and names `fail2ban.conf|.local`, `jail.conf|.local`, or a
`.conf`/`.local` file directly inside `fail2ban.d/`, `jail.d/`, `filter.d/` or `action.d/`. Refused:
NUL, absolute paths, `..`, other names or suffixes (400), and anything whose real path (symlinks
followed) leaves the config dir (403). Editable: every `.local`, and `.conf` files bangui created
(the others belong to the package and are replaced on upgrade: bangui never modifies them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from f2bconfig.errors import PathForbidden, PathRefused

TOP_FILES = ("fail2ban.conf", "fail2ban.local", "jail.conf", "jail.local")
SUBDIRS = ("fail2ban.d", "jail.d", "filter.d", "action.d")
SUFFIXES = (".conf", ".local")
MAX_FILE_BYTES = 512 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def check_relative(rel: str) -> str:
    """The canonical relative path, or PathRefused (400) naming the rule it breaks."""
    if "\x00" in rel:
        raise PathRefused("a config path must not contain NUL")
    if rel.startswith("/") or rel.startswith("\\"):
        raise PathRefused("config paths are relative to the fail2ban config dir, not absolute")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PathRefused("'..', '.' and empty path segments are refused")
    if len(parts) == 1 and parts[0] in TOP_FILES:
        return rel
    if len(parts) == 2 and parts[0] in SUBDIRS and _NAME.match(parts[1]) and parts[1].endswith(SUFFIXES):
        return rel
    raise PathRefused(f"{rel!r} is not a fail2ban configuration file: allowed are {', '.join(TOP_FILES)} "
                      f"and *.conf / *.local directly inside {', '.join(SUBDIRS)}")


class ConfigTree:
    """The config dir at ``root`` plus bangui's record (in ``data_dir``) of the .conf files it created."""

    def __init__(self, root: Path | str, data_dir: Path | str) -> None:
        self.root = Path(root)
        self.created_file = Path(data_dir) / "config" / "created.json"

    def resolve(self, rel: str) -> Path:
        """Absolute path of ``rel`` inside the config dir (it may not exist yet)."""
        rel = check_relative(rel)
        root = self.root.resolve()
        path = root / rel
        real = path.resolve()  # follows symlinks of the file and of its directory
        if real != path and not real.is_relative_to(root):
            raise PathForbidden(f"{rel!r} leads outside the fail2ban config dir (symlink)")
        if path.is_symlink() or path.parent.is_symlink():
            raise PathForbidden(f"{rel!r} is a symlink: bangui edits only regular files")
        return path

    def created(self) -> set[str]:
        try:
            return set(json.loads(self.created_file.read_text()))
        except (OSError, ValueError):
            return set()

    def mark_created(self, rels: set[str]) -> None:
        self.created_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.created_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(rels)))
        os.replace(tmp, self.created_file)

    def editable(self, rel: str, exists: bool | None = None) -> bool:
        if rel.endswith(".local"):
            return True
        if exists is None:
            exists = (self.root / rel).exists()
        return not exists or rel in self.created()

    def require_editable(self, rel: str) -> Path:
        path = self.resolve(rel)
        if not self.editable(rel, path.exists()):
            raise PathForbidden(f"{rel} belongs to the fail2ban package: bangui never modifies it; "
                                f"put your change in {rel[:-5]}.local", details={"path": rel})
        return path

    def read(self, rel: str) -> bytes | None:
        path = self.resolve(rel)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise PathRefused(f"{rel!r} is a directory") from None

    def files(self) -> list[dict[str, Any]]:
        """Every config file bangui shows, with size, mtime and whether bangui may edit it."""
        out = []
        created = self.created()
        candidates = [self.root / name for name in TOP_FILES]
        for sub in SUBDIRS:
            folder = self.root / sub
            if folder.is_dir() and not folder.is_symlink():
                candidates += sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIXES))
        for path in candidates:
            rel = path.relative_to(self.root).as_posix()
            if path.is_symlink() or not path.is_file():
                continue
            try:
                check_relative(rel)
            except PathRefused:
                continue
            st = path.stat()
            out.append({"path": rel, "size": st.st_size, "modified": st.st_mtime,
                        "editable": rel.endswith(".local") or rel in created})
        return out

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """(path, mtime_ns, size) of every file: changes when anything in the tree changes (cache key)."""
        out = []
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue
                out.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))
