"""Path rules, atomic writes, bangui's override files and the change lock: pure, on temp dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from f2bconfig import files, override
from f2bconfig.errors import ConfigBusy, PathForbidden, PathRefused
from f2bconfig.lock import config_lock
from f2bconfig.paths import ConfigTree, check_relative


@pytest.fixture
def tree(tmp_path: Path) -> ConfigTree:
    root = tmp_path / "fail2ban"
    for sub in ("filter.d", "jail.d", "action.d", "fail2ban.d"):
        (root / sub).mkdir(parents=True)
    (root / "jail.conf").write_text("[sshd]\n")
    (root / "filter.d" / "sshd.conf").write_text("[Definition]\n")
    return ConfigTree(root, tmp_path / "data")


@pytest.mark.parametrize("rel", ["../jail.local", "filter.d/../../x.local", "/etc/passwd", "filter.d/a\x00.local",
                                 "filter.d/./sshd.local", "filter.d//sshd.local", "filter.d/sshd.py",
                                 "paths-debian.conf", "filter.d/sub/x.local", "other.d/x.local", "jail.d/.hidden.local",
                                 ""])
def test_paths_outside_the_allowed_set_are_refused(rel: str) -> None:
    with pytest.raises(PathRefused):
        check_relative(rel)


@pytest.mark.parametrize("rel", ["jail.local", "fail2ban.conf", "jail.d/zz-bangui.local", "filter.d/sshd.local",
                                 "action.d/my-action.conf"])
def test_allowed_paths_pass(rel: str) -> None:
    assert check_relative(rel) == rel


def test_a_symlink_leading_out_of_the_config_dir_is_refused(tree: ConfigTree, tmp_path: Path) -> None:
    secret = tmp_path / "secret.local"
    secret.write_text("x")
    (tree.root / "filter.d" / "evil.local").symlink_to(secret)
    with pytest.raises(PathForbidden):
        tree.resolve("filter.d/evil.local")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tree.root / "action.d").rmdir()
    (tree.root / "action.d").symlink_to(outside)
    with pytest.raises(PathForbidden):
        tree.resolve("action.d/new.local")
    assert not (outside / "new.local").exists()


def test_a_symlink_inside_the_dir_is_refused_too(tree: ConfigTree) -> None:
    (tree.root / "filter.d" / "alias.local").symlink_to(tree.root / "filter.d" / "sshd.conf")
    with pytest.raises(PathForbidden):
        tree.resolve("filter.d/alias.local")
    assert "filter.d/alias.local" not in {f["path"] for f in tree.files()}


def test_package_conf_files_are_not_editable_but_local_and_created_ones_are(tree: ConfigTree) -> None:
    assert not tree.editable("jail.conf")
    assert not tree.editable("filter.d/sshd.conf")
    with pytest.raises(PathForbidden):
        tree.require_editable("filter.d/sshd.conf")
    assert tree.editable("jail.local") and tree.editable("filter.d/new.conf")  # new .conf: bangui creates it
    (tree.root / "filter.d" / "mine.conf").write_text("")
    assert not tree.editable("filter.d/mine.conf")
    tree.mark_created({"filter.d/mine.conf"})
    assert tree.editable("filter.d/mine.conf")
    listed = {f["path"]: f["editable"] for f in tree.files()}
    assert listed == {"jail.conf": False, "filter.d/sshd.conf": False, "filter.d/mine.conf": True}


def test_atomic_write_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "jail.local"
    target.write_text("old")
    os.chmod(target, 0o640)
    files.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["jail.local"]
    files.atomic_write(tmp_path / "fresh.local", b"x")
    assert stat.S_IMODE((tmp_path / "fresh.local").stat().st_mode) == 0o644
    files.put(tmp_path / "fresh.local", None)
    assert not (tmp_path / "fresh.local").exists()


def test_override_update_keeps_other_sections_and_keys() -> None:
    hand = "[sshd]\nmaxretry = 3\n# a comment\nport = 2222\n\n[nginx-http-auth]\nenabled = true\n"
    out = override.update(hand, "sshd", {"maxretry": "7", "bantime.increment": "true"})
    assert out.startswith("# Managed by bangui")
    assert override.read_section(out, "sshd") == {"maxretry": "7", "port": "2222", "bantime.increment": "true"}
    assert override.read_section(out, "nginx-http-auth") == {"enabled": "true"}
    out = override.update(out, "sshd", {"maxretry": None, "port": None, "bantime.increment": None})
    assert "[sshd]" not in out and override.read_section(out, "nginx-http-auth") == {"enabled": "true"}


def test_the_change_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    with config_lock(tmp_path):
        with pytest.raises(ConfigBusy) as caught, config_lock(tmp_path):
            pass
        assert caught.value.status == 409 and caught.value.code == "config_busy"
    with config_lock(tmp_path):  # released
        pass
