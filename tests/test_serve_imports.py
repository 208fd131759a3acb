"""`bangui serve` never imports modules from the directory it is started in (issue 20 item 13): hypercorn puts
the application's directory first on sys.path, and `python -c`/`-m` put the working directory there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.processes import ServerProcess

pytestmark = pytest.mark.processes
ROOT = Path(__file__).resolve().parents[1]
# Modules bangui imports after start: the app (each worker), the jobs package (the leader), hypercorn (lazily)
SHADOWS = {"app.py": "", "jobs/__init__.py": "", "hypercorn/__init__.py": "", "hypercorn/config.py": ""}


@pytest.mark.parametrize("launch", [
    ["-P", "-c"],  # like the `bangui` console script: the working directory is not on sys.path
    ["-c"],  # `python -c`/`-m`: it is first on sys.path
])
def test_serve_from_a_directory_with_an_app_py_and_a_jobs_package_imports_its_own(
        tmp_path: Path, fail2ban: Any, launch: list[str]) -> None:
    stranger = tmp_path / "project"
    marker = tmp_path / "imported-from-cwd"
    for name in SHADOWS:
        (stranger / name).parent.mkdir(parents=True, exist_ok=True)
        (stranger / name).write_text(f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n"
                                     f"raise SystemExit('bangui imported {name} from its working directory')\n")
    server = ServerProcess(tmp_path / "data", fail2ban, 2, tmp_path,
                           env={"PYTHONPATH": str(ROOT)})
    server.args[:3] = [sys.executable, *launch, "import sys, cli; sys.exit(cli.main())"]
    server.cwd = stranger
    try:
        server.start()
        assert httpx.get(server.url + "/api/v1/health/ready", timeout=5).status_code == 200
    finally:
        assert server.stop() == 0, server.output()
    assert not marker.exists(), marker.read_text()
