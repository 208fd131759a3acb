"""bangui refuses to run with a module that is not its own (issue 19, item 7): another package's `settings.py`
installed over bangui's, or a directory holding a `core/` first on the path. The message names the foreign file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.install import TOP_LEVEL

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = "FIELDS_ARE_NOT_HERE = True\n"


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_top_level_names_are_those_pyproject_installs() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(TOP_LEVEL) == set(config["py-modules"]) | {p.parent.name for p in ROOT.glob("*/__init__.py")} - {
        "tests", "bench"}


def test_a_module_earlier_on_the_path_is_named_not_a_deep_import_error(tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "settings.py").write_text(FOREIGN)
    done = run(f"import sys; sys.path[:0] = [{str(tmp_path / 'foreign')!r}, {str(ROOT)!r}]; import cli", tmp_path)
    assert done.returncode == 1
    assert str(tmp_path / "foreign" / "settings.py") in done.stderr and "not bangui's own" in done.stderr
    assert "virtual environment of its own" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.processes
def test_a_file_overwritten_by_another_install_is_named(tmp_path: Path) -> None:
    """A real wheel install (with its RECORD of hashes), then `settings.py` replaced in place as pip does when
    another package ships that name: `bangui --help` exits 1 naming it."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and egg-info there
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "wheel"),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "wheel").glob("bangui-*.whl"))
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    code = f"import sys; sys.path.insert(0, {str(target)!r}); import cli; sys.exit(cli.main(['--help']))"
    assert run(code, tmp_path).returncode == 0  # intact: its own files, hashes as recorded
    (target / "logs.py").write_text((target / "logs.py").read_text() + "\n# another package's logs.py\n")
    done = run(code, tmp_path)
    assert done.returncode == 1
    assert f"{target / 'logs.py'} is not the file bangui installed" in done.stderr
