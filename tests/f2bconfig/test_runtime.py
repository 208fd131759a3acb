"""The pure logic of issue 18 §4: which settings a change touched, how values compare, how to converge."""

from __future__ import annotations

from f2bconfig import runtime


def test_touched_settings_come_from_both_texts_default_sections_and_runtime_commands() -> None:
    files = {"jail.d/x.local": (b"[sshd]\nbantime.increment = true\nfilter = sshd\n", b"[DEFAULT]\nmaxretry = 3\n"),
             "filter.d/sshd.local": (None, b"[Definition]\nmaxretry = 1\n")}
    got = runtime.touched(files, [["set", "web", "addignoreip", "192.0.2.1"]], ["sshd", "web"])
    assert got == {"sshd": {"bantime.increment", "maxretry"}, "web": {"maxretry", "ignoreip"}}
    assert runtime.touched({"jail.d/x.local": (b"[ghost]\nmaxretry = 3\n", None)}, [], ["sshd"]) == {}


def test_values_compare_as_fail2ban_means_them() -> None:
    assert runtime.normal("bantime", "10m") == runtime.normal("bantime", 600)
    assert runtime.normal("bantime", "1d 2h") == 93600
    assert runtime.normal("bantime.factor", "3") == runtime.normal("bantime.factor", 3.0)
    assert runtime.normal("bantime.increment", None) == runtime.normal("bantime.increment", False)
    assert runtime.normal("bantime.increment", "true") != runtime.normal("bantime.increment", None)
    assert runtime.normal("ignoreip", "127.0.0.1/8 ::1") == runtime.normal("ignoreip", ["::1", "127.0.0.0/8"])
    assert runtime.normal("bantime.factor", None) != runtime.normal("bantime.factor", "3")


def test_a_value_no_file_names_needs_a_restart_others_a_set() -> None:
    wanted = {"sshd": {"maxretry": "5"}}
    running = {("sshd", "maxretry"): 8, ("sshd", "bantime.factor"): "3", ("sshd", "bantime.increment"): True}
    diff = runtime.mismatches(wanted, {"sshd": {"maxretry", "bantime.factor", "bantime.increment"}}, running)
    assert [(j, k) for j, k, _, _ in diff] == [("sshd", "bantime.factor"), ("sshd", "bantime.increment"),
                                             ("sshd", "maxretry")]
    assert runtime.commands("sshd", "maxretry", "5", 8) == [["set", "sshd", "maxretry", "5"]]
    assert runtime.commands("sshd", "bantime.factor", None, "3") is None
    assert runtime.commands("sshd", "bantime.increment", None, True) == [["set", "sshd", "bantime.increment", "false"]]
    assert runtime.commands("sshd", "ignoreip", "192.0.2.1", ["198.51.100.7"]) == [
        ["set", "sshd", "addignoreip", "192.0.2.1"], ["set", "sshd", "delignoreip", "198.51.100.7"]]
