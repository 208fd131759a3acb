"""ChangeLog.reverted_by (issue 23 item 8): which change a standing revert undid."""

from __future__ import annotations

from f2bconfig.changes import ChangeLog


def change(change_id: str, action: str = "config.file_write", target: str = "jail.local",
           outcome: str = "applied") -> dict[str, str]:
    return {"id": change_id, "action": action, "target": target, "outcome": outcome}


def test_a_revert_marks_its_change_and_a_revert_of_the_revert_unmarks_it() -> None:
    a, b = change("1-a"), change("2-b")
    revert_a = change("3-r", "config.revert", "1-a")
    assert ChangeLog.reverted_by([b, revert_a, a]) == {"1-a": "3-r"}
    again = change("4-r", "config.revert", "3-r")  # a's text is back: a may be reverted again
    assert ChangeLog.reverted_by([again, revert_a, b, a]) == {"3-r": "4-r"}


def test_an_interrupted_revert_reverted_nothing() -> None:
    assert ChangeLog.reverted_by([change("1-a"), change("2-r", "config.revert", "1-a", "interrupted")]) == {}
