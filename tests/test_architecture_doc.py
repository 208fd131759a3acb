"""docs/architecture.md stays true (issue 19, item 5): every module of the tree is in its module index, and every
dotted module name it mentions (`store.audit`, `jobs.history_sync`) exists."""

from __future__ import annotations

import re
from pathlib import Path

from core.install import TOP_LEVEL

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def modules() -> set[str]:
    found = set()
    for top in TOP_LEVEL:
        if (ROOT / f"{top}.py").is_file():
            found.add(top)
            continue
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def indexed(text: str) -> set[str]:
    index = text.split("## Module index", 1)[1]
    return set(re.findall(r"^- `([a-z_0-9.]+)`:", index, flags=re.M))


def mentioned(text: str) -> set[str]:
    """Dotted names in backticks whose first part is a top-level package (attributes after a module are allowed)."""
    names = set()
    for name in re.findall(r"`([a-z_0-9]+(?:\.[a-z_0-9]+)+)", text):
        if name.split(".")[0] in TOP_LEVEL and not name.endswith(".py"):
            names.add(name)
    return names


def test_every_module_is_in_the_index() -> None:
    text = DOC.read_text()
    assert not sorted(modules() - indexed(text)), "add to docs/architecture.md's module index"
    assert not sorted(indexed(text) - modules()), "the index names modules that do not exist"


def test_every_module_named_in_the_document_exists() -> None:
    known = modules()
    missing = sorted(n for n in mentioned(DOC.read_text())
                     if not any(n == m or n.startswith(m + ".") for m in known))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_the_checks_catch_a_missing_and_a_made_up_module() -> None:
    text = "`jobs.history_sync` and `store.audit.AuditLog`\n## Module index\n- `store.audit`: x\n"
    assert mentioned(text) == {"jobs.history_sync", "store.audit"}  # a class after a module: the module is checked
    assert indexed(text) == {"store.audit"}
