"""The store refuses to start, with one line saying what and how to fix it, on an unusable data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cli import main
from settings import Settings
from store import Store
from store.base import StoreError, filesystem_type

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
nas:/export /srv/nfs nfs4 rw,vers=4.2 0 0
//files/share /mnt/smb cifs rw 0 0
tmpfs /srv/nfs/local tmpfs rw 0 0
"""


def test_filesystem_type_picks_the_deepest_mount() -> None:
    assert filesystem_type(Path("/srv/nfs/bangui"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/srv/nfs/local/bangui"), MOUNTS) == "tmpfs"
    assert filesystem_type(Path("/mnt/smb"), MOUNTS) == "cifs"
    assert filesystem_type(Path("/var/lib/bangui"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/srv/nfsx"), MOUNTS) == "ext4"  # a prefix of a mount point is not inside it


def test_data_dir_is_created_private(tmp_path: Path) -> None:
    store = Store(Settings.for_tests(data_dir=str(tmp_path / "a" / "data")))
    assert stat.S_IMODE((tmp_path / "a" / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "data" / "state" / "cache.db").stat().st_mode) == 0o600
    store.close()


def test_a_file_in_place_of_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot be created.*BANGUI_DATA_DIR"):
        Store(Settings.for_tests(data_dir=str(tmp_path / "data")))


def test_a_corrupt_store_reports_path_and_sqlite_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "data" / "state"
    state.mkdir(parents=True)
    (state / "cache.db").write_bytes(b"this is not an SQLite database, not at all" * 100)
    assert main(["user", "list", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(state) in err and "DatabaseError" in err
