"""The top-level modules import each other down the layers of docs/architecture.md only (issues 9 and 19): the
document's "Layers" table is the declaration, and every import of the tree (at module level and inside functions;
only `if TYPE_CHECKING:` blocks are exempt) must go from a row to a row below it. No cycles follow from that."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from core.install import TOP_LEVEL

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
NOT_IMPORTED = {ROOT / "f2b" / "engine.py"}  # runs in fail2ban's own interpreter, never imported by bangui


def layers(text: str) -> list[set[str]]:
    """The rows of the document's layer table, top (entry points) first."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [set(re.findall(r"`([a-z_0-9]+)`", row.split("|")[2])) for row in rows]


def allowed_edges(rows: list[set[str]]) -> dict[str, set[str]]:
    """Each module -> the modules it may import: those of every row below its own."""
    return {name: set().union(*rows[i + 1:]) for i, row in enumerate(rows) for name in row}


def is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (its `else:` runs)."""
    out: list[ast.AST] = []
    for node in ast.iter_child_nodes(tree):
        children = node.orelse if is_type_checking(node) else [node]  # type: ignore[attr-defined]
        for child in children:
            out.append(child)
            out.extend(runtime_nodes(child))
    return out


def imported(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) of every run-time import; a relative import would hide its target: refused."""
    found = []
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: a relative import (write it absolute)"
            found.append((node.module or "", node.lineno))
    return found


def sources(top: str) -> list[Path]:
    single = ROOT / f"{top}.py"
    return [single] if single.is_file() else sorted(p for p in (ROOT / top).rglob("*.py") if p not in NOT_IMPORTED)


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) top-level modules -> where (`path:line`)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for top in TOP_LEVEL:
        for path in sources(top):
            for name, line in imported(ast.parse(path.read_text(), str(path))):
                target = name.split(".", 1)[0]
                if target in TOP_LEVEL and target != top:
                    edges.setdefault((top, target), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        for nxt in sorted(graph.get(node, ())):
            if found := visit(nxt, path + [node]):
                return found
        return None

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return None


def test_every_top_level_module_has_exactly_one_layer() -> None:
    rows = layers(DOC.read_text())
    named = [name for row in rows for name in row]
    assert sorted(named) == sorted(TOP_LEVEL), "docs/architecture.md's layer table must name each module once"


def test_every_import_goes_down_the_layers() -> None:
    allowed = allowed_edges(layers(DOC.read_text()))
    wrong = [f"{a} -> {b} ({', '.join(where)})" for (a, b), where in sorted(import_edges().items())
             if b not in allowed[a]]
    assert not wrong, "imports against docs/architecture.md's layers:\n" + "\n".join(wrong)


def test_no_import_cycles_between_top_level_modules() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in import_edges():
        graph.setdefault(a, set()).add(b)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_core_imports_only_the_base() -> None:
    assert {b for a, b in import_edges() if a == "core"} <= {"errors", "settings"}


def test_imports_inside_functions_count_and_type_checking_ones_do_not() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import jobs\nelse:\n    import store\n"
                     "def f():\n    import fleet\n")
    assert sorted(name for name, _ in imported(tree)) == ["fleet", "store", "typing"]


def test_the_table_allows_only_rows_below() -> None:
    text = "## Layers\n| layer | modules |\n|---|---|\n| top | `a` |\n| mid | `b`, `c` |\n| low | `d` |\n## Next\n"
    assert allowed_edges(layers(text)) == {"a": {"b", "c", "d"}, "b": {"d"}, "c": {"d"}, "d": set()}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
