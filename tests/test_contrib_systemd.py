"""contrib/systemd units pass `systemd-analyze verify` (Debian's `systemd` package; systemd need not be PID 1).

The units are verified unchanged under a scratch root (`--root`) holding systemd's own units and an executable at
the ExecStart path the units document (/opt/bangui/bin/bangui), so the check covers every key and reference
without installing anything. Any diagnostic at all (also "Unknown key ..., ignoring", exit 0) fails the test.
"""

from __future__ import annotations

import re
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


def exposure(tmp_path: Path, unit: Path) -> float:
    """`systemd-analyze security --offline=true`'s overall exposure (0 safest .. 10), for a copy of the unit whose
    ExecStart points at an executable that exists (the offline check needs one)."""
    assert ANALYZE is not None
    exe = tmp_path / "bin/bangui"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/bangui/bin/bangui", str(exe)))
    result = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(copy)], capture_output=True,
                            text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_is_hardened_to_an_exposure_of_at_most_4_5(tmp_path: Path, unit: Path) -> None:
    assert exposure(tmp_path, unit) <= 4.5


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_hardening_keeps_what_bangui_needs(unit: Path) -> None:
    # root (fail2ban's socket is root-only), fail2ban's configuration and socket directory writable, the data
    # dir as the state directory, the logs readable (CAP_DAC_READ_SEARCH), its own and fail2ban's sockets
    keys = [line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line and not line.startswith("#")]
    settings = {key: value for key, value in keys}
    assert "User" not in settings and "DynamicUser" not in settings
    assert settings["ProtectSystem"] == "strict" and settings["StateDirectory"] == "bangui"
    assert set(settings["ReadWritePaths"].split()) == {"/etc/fail2ban", "-/run/fail2ban"}
    assert settings["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
    assert set(settings["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
