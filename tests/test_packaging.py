"""The installed package holds every module of the source tree: pyproject's `py-modules` and package patterns
must name each top-level module and package (a package left out installs fine and fails at import: the image
build of `./dev container` found `actions` and `core` missing once)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench"}


def test_every_top_level_module_and_package_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert modules == set(config["py-modules"])
    patterns = config["packages"]["find"]["include"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_SHIPPED
    missing = sorted(p for p in packages if not any(fnmatch.fnmatch(p, pat) for pat in patterns))
    assert not missing, f"add to [tool.setuptools.packages.find] include: {missing}"
