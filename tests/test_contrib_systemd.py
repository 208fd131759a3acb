"""contrib/systemd units pass `systemd-analyze verify` (Debian's `systemd` package; systemd need not be PID 1).

The units are verified unchanged under a scratch root (`--root`) holding systemd's own units and an executable at
the ExecStart path the units document (/opt/bangui/bin/bangui), so the check covers every key and reference
without installing anything. Any diagnostic at all (also "Unknown key ..., ignoring", exit 0) fails the test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.systemd
ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "contrib" / "systemd").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)
needs_analyze = pytest.mark.skipif(ANALYZE is None or SYSTEM_UNITS is None,
                                   reason="systemd-analyze not installed: apt-get install systemd (.ci/run does)")


def scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    assert SYSTEM_UNITS is not None
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    exe = root / "opt/bangui/bin/bangui"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for unit in UNITS:
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    return root


def verify(root: Path, name: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    arg = str(root / "etc/systemd/system" / name) if "@." not in name else name.replace("@.", "@8081.")
    return subprocess.run([ANALYZE, "verify", f"--root={root}", arg], capture_output=True, text=True, timeout=60)


def test_the_units_exist() -> None:
    assert {u.name for u in UNITS} >= {"bangui.service", "bangui@.service"}


@needs_analyze
@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, unit: str) -> None:
    result = verify(scratch_root(tmp_path), unit)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    unit = root / "etc/systemd/system/bangui.service"
    unit.write_text(unit.read_text().replace("KillMode=mixed", "KillMode=mixed\nRestartSecs=1s"))
    result = verify(root, "bangui.service")
    assert "Unknown key 'RestartSecs'" in result.stdout + result.stderr
