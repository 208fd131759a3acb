"""The bantime.formula grammar (pure logic): fail2ban eval()s the formula as root at every ban."""

from __future__ import annotations

import pytest

from errors import InvalidInput
from f2bconfig.formula import check, check_duration, check_factor

# What fail2ban's jail.conf documents, and plain arithmetic on its names.
ACCEPTED = [
    "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor",
    "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)",
    "ban.Time * 2 ** min(ban.Count, 10)",
    "ban.Time + ban.Count * 3600 - 1.5",
    "-ban.Time // 2 % 7 + abs(round(math.log(ban.Count + 1)))",
    "ban.Time * 2 ** (ban.Count / 2)",
    "(9**9)**9",
    "ban.Time ** 2 + float(ban.Time) ** 99",
]
# Code execution, data access and fail2ban-hanging towers: each once got past (or would get past) a character
# class regex. The first is the issue's own example.
REFUSED = [
    "random._os.system(chr(116)+chr(111)+chr(117)+chr(99)+chr(104))+ban.Time",
    "__import__('os').system('id')",
    "ban.Time.__class__",
    "ban.__dict__",
    "math.__loader__",
    "ban.Time + len(open(chr(47)).read())",
    "getattr(ban, chr(84))",
    "ban.Time if print(1) else 0",
    "(lambda: 1)() + ban.Time",
    "[x for x in (1,)][0]",
    "math.exp(x=ban.Count)",
    "max(*ban.Count)",
    "ban.Time + 'a'",
    "ban.Time + True",
    "9**9**9",
    "ban.Time << (1 << ban.Count)",
    "ban.Time * 10000000",
    "ban.Time or 1",
    "ban.Time\n+1",
    "",
    "ban.Time * (",
    "banFactor" + " + 1" * 200,
    # one big power, or a tower built on the left side: seconds to hours of fail2ban's time at every ban
    "999999**999999",
    "(999999**9)**999999",
    "((9**9)**9)**99",
    "max(999999, 1)**999999",
    "int(math.exp(700))**1000",
    "2**ban.Time",
    "ban.Count**ban.Count",
    "(ban.Time * ban.Time) << ban.Time",
    "ban.__class__",
    "ban.Time+\uff11",  # a full-width digit
]


@pytest.mark.parametrize("formula", ACCEPTED)
def test_fail2bans_documented_formulas_are_accepted(formula: str) -> None:
    assert check(formula) == formula


@pytest.mark.parametrize("formula", REFUSED)
def test_anything_but_arithmetic_on_fail2bans_names_is_refused(formula: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check(formula)
    assert caught.value.status == 400 and caught.value.code == "invalid_body"
    assert caught.value.details["field"] == "bantime_increment.formula"


@pytest.mark.parametrize("factor", ["1", "2.5", "1000", "1e3", "0.5"])
def test_a_plain_number_is_accepted_as_bantime_factor(factor: str) -> None:
    assert check_factor(factor) == factor


@pytest.mark.parametrize("factor", ["__import__('os').system('id')", "banFactor", "ban.Time", "abs(2)", "1001",
                                    "2**10", "999999**999999", "", "1\n"])
def test_bantime_factor_is_a_number_too_because_fail2ban_evals_it_on_reading(factor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_factor(factor, "sshd bantime.factor")
    assert caught.value.details["field"] == "sshd bantime.factor"


@pytest.mark.parametrize("value", ["600", "-1", "10m", "1h 30m", "1d12h", "1year-6mo", "6 months", "2*(1h+30m)",
                                   "1.5h", "10 MIN"])
def test_fail2bans_time_expressions_are_accepted(value: str) -> None:
    assert check_duration(value, "sshd bantime") == value


@pytest.mark.parametrize("value", ["__import__('os').system('id')", "1h + __import__('os').getpid()", "9**9**9",
                                   "9* *9", "x", "1h; 2", "1e9", "\uff11h", "1h\t2m", "", "1" * 101])
def test_time_values_are_refused_beyond_fail2bans_time_grammar_because_str2seconds_evals_them(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_duration(value, "sshd bantime")
    assert caught.value.details["field"] == "sshd bantime"
