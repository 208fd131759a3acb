"""Is every bangui module bangui's own? (issue 19, item 7)

bangui installs its modules under plain top-level names (`app`, `settings`, `core`, ... as the design card lays
them out). Another package installed into the same environment that ships one of those names replaces bangui's file
without a word from pip, and bangui then fails somewhere deep (`cannot import name 'FIELDS' from 'settings'`); a
directory holding an `app.py` first on `sys.path` does the same. `shadowed()` names each such file before anything
else is imported, so the message points at the cause. Two checks, both cheap (~1 ms):

- each top-level name resolves into the directory this package lives in (bangui's install);
- where the installer recorded hashes of bangui's files (a wheel install: RECORD), each module file still has its
  hash (a file overwritten in place by another package's install).

Only the standard library is used here: this runs before any other bangui module is imported.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

DISTRIBUTION = "bangui"
# The top-level names bangui installs (pyproject's py-modules and packages; tests/test_packaging.py keeps them equal).
TOP_LEVEL = ("actions", "advisor", "app", "cli", "core", "errors", "f2b", "f2bconfig", "fleet", "geo", "handlers",
             "healthcheck", "jobs", "logs", "metrics", "settings", "stopping", "store")
HOME = Path(__file__).resolve().parents[1]  # the directory holding bangui's top-level modules


def _origin(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def _misplaced() -> list[str]:
    problems = []
    for name in TOP_LEVEL:
        origin = _origin(name)
        if origin is None:
            problems.append(f"bangui's module {name!r} cannot be found (its install in {HOME} is incomplete)")
        elif HOME not in origin.parents:
            problems.append(f"module {name!r} is {origin}, not bangui's own (in {HOME})")
    return problems


def _overwritten() -> list[str]:
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return []  # run from a source tree: the placement check is the whole check
    problems = []
    for file in files:
        top = file.parts[0].removesuffix(".py") if file.parts else ""
        if top not in TOP_LEVEL or file.suffix != ".py" or file.hash is None or file.hash.mode != "sha256":
            continue
        path = Path(str(file.locate())).resolve()
        if HOME not in path.parents:
            continue
        try:
            digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        except OSError:
            problems.append(f"{path}: bangui's file is missing or unreadable")
            continue
        if digest != file.hash.value:
            problems.append(f"{path} is not the file bangui installed (another package overwrote it)")
    return problems


def shadowed() -> list[str]:
    """One line per module that is not bangui's own; empty when all are."""
    return _misplaced() + _overwritten()


HOW_TO_FIX = ("install bangui into a virtual environment of its own (python3 -m venv /opt/bangui && "
              "/opt/bangui/bin/pip install ...) and start it from there, not from a directory holding files "
              "named like its modules")
