"""What the audit keeps of a configuration diff: everything but the values of credential-like keys."""

from __future__ import annotations

from actions.config import audited_diff


def test_credential_values_are_redacted_in_audited_diffs() -> None:
    diff = ("--- a/action.d/cf.local\n+++ b/action.d/cf.local\n@@ -1 +1,4 @@\n+cftoken = abc123\n"
            "-password: hunter2\n+api_key=zzz\n maxretry = 3\n+bantime = 600\n")
    out = audited_diff(diff)
    assert "abc123" not in out and "hunter2" not in out and "zzz" not in out
    assert "+cftoken = <redacted>" in out and "+bantime = 600" in out and " maxretry = 3" in out
