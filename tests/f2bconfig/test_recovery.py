"""Issue 18 §3: a change whose process died is recovered under the lock before the next change (not only
at server start). The crash is real: a child process runs the change and SIGKILLs itself at a chosen
step (right after the files were written, before fail2ban reloads)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from f2b.blocking import sync_call
from f2b.stock import StockConfigServer
from f2bconfig import journal
from tests.fixtures.app import Api

DIES_BEFORE_RELOAD = textwrap.dedent("""
    import os, signal, sys
    from f2bconfig import operations, tools
    from f2b.client import Fail2Ban
    from f2b.blocking import BlockingFail2Ban
    from f2bconfig.engine import Engine

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    tools.reload = die  # the files are live now; fail2ban has not reloaded
    engine = Engine(sys.argv[1], sys.argv[2], BlockingFail2Ban(Fail2Ban(sys.argv[3])))
    operations.write_file(engine, "admin", "jail.d/x.local", b"[sshd]\\nmaxretry = 4\\n", None)
""")


def test_the_next_change_first_rolls_back_a_change_whose_process_died(config_api: Api,
                                                                       stock_fail2ban: StockConfigServer) -> None:
    data_dir = Path(config_api.settings.data_dir)
    child = subprocess.run([sys.executable, "-c", DIES_BEFORE_RELOAD, str(stock_fail2ban.conf_dir), str(data_dir),
                            stock_fail2ban.socket], cwd=Path(__file__).resolve().parents[2], capture_output=True)
    assert child.returncode == -9, child.stderr
    assert (stock_fail2ban.conf_dir / "jail.d" / "x.local").exists() and journal.read(data_dir) is not None

    r = config_api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 6})
    assert r.status_code == 200, r.text
    assert not (stock_fail2ban.conf_dir / "jail.d" / "x.local").exists()  # rolled back to its before-image
    assert journal.read(data_dir) is None
    changes = config_api.call("admin", "GET", "/config/changes").json()["changes"]
    assert [(c["action"], c["outcome"], c["state"]) for c in changes] == [
        ("jail.update", "applied", "after"), ("config.file_write", "interrupted", "before")]
    assert changes[1]["fail2ban_verified"] is True and changes[1]["files"] == ["jail.d/x.local"]
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "maxretry")[1] == 6
    r = config_api.call("admin", "POST", f"/config/changes/{changes[1]['id']}/revert")
    assert r.status_code == 409 and r.json()["error"]["code"] == "revert_conflict"
