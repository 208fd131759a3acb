"""The top-level packages import each other in one direction only (issue 9): no cycles at run time,
and the shared layer (`core`) imports no other package at run time. (`core.deps` names the store and
fail2ban client types for the type checker only: Deps is the bundle they form.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("handlers", "actions", "jobs", "store", "f2b", "core", "f2bconfig", "metrics", "advisor")


def package_of(module: str) -> str | None:
    top = module.split(".", 1)[0]
    return top if top in PACKAGES else None


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:`."""
    out: list[ast.AST] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        out.append(node)
        out.extend(runtime_nodes(node))
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in runtime_nodes(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    target = package_of(name)
                    if target and target != package:
                        graph[package].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        for nxt in sorted(graph[node]):
            if found := visit(nxt, path + [node]):
                return found
        return None

    for start in graph:
        if found := visit(start, []):
            return found
    return None


def test_no_import_cycles_between_top_level_packages() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_core_depends_on_no_other_package() -> None:
    assert import_graph()["core"] == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
