"""The checks of the options fail2ban eval()s as root before fail2ban sees them (issue 18): `bantime.formula`,
`bantime.factor` and its time values (`check_duration`, near the end).

fail2ban `compile()`s the formula and `eval()`s it as root at every ban, with jail.py's module globals in scope
(`math`, `random`, ...): `random._os.system(chr(116)+...)+ban.Time` passed a character-class regex and ran.
So the formula is parsed with `ast` and accepted only when every node is on an arithmetic grammar:

- numbers (int or float literals, at most MAX_LITERAL in size), `+ - * / // % ** <<` and unary `+ -`;
- the names fail2ban documents for it: `ban.Time`, `ban.Count`, `banFactor`;
- calls of a fixed list of math functions (`math.exp(...)`, `math.log(...)`, ..., `float`, `int`, `min`, `max`,
  `abs`, `round`), by those exact names, with positional arguments only;
- comparisons and `a if cond else b`, because fail2ban's own default formula caps the count with them:
  `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`.

No other name, attribute, subscript, string, lambda or keyword gets through. A formula whose value may grow too
large is refused too: fail2ban computes it with Python's unbounded integers, so a tower (`9**9**9`,
`(9**9)**9**9`) or one big power (`999999**999999`: 4.5 s) would keep fail2ban's root process busy at every ban.
Each node's magnitude is bounded (in bits, `_size`) assuming ban.Time < 2**32 and ban.Count < 2**12, and every
intermediate value must stay under MAX_BITS: arithmetic on such numbers takes microseconds.

`bantime.factor` is `eval()`ed too (at once, when fail2ban reads it: `check_factor`): numbers only, with the same
grammar, at most MAX_FACTOR. Both are checked by the actions (`actions.config`) and, for files written by hand or
through the raw file editor, on fail2ban's own reading of the whole configuration (f2bconfig/engine.py validate).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable

from errors import InvalidInput

MAX_LENGTH = 300
MAX_LITERAL = 10**6
MAX_BITS = 2**14
MAX_FACTOR = 1000
FLOAT_BITS = 1024.0  # a finite float is below 2**1024; anything larger raises OverflowError at once
# upper bounds (bits) of the names: a bantime of 136 years, 4096 bans of one address, a factor of MAX_FACTOR
_NAME_BITS = {"Time": 32.0, "Count": 12.0, "banFactor": 10.0}
NAMES = frozenset({"banFactor"})
BAN_FIELDS = frozenset({"Time", "Count"})  # ban.Time, ban.Count
MATH_FUNCTIONS = frozenset({"exp", "log", "log2", "log10", "sqrt", "pow", "ceil", "floor", "fabs"})
BUILTINS = frozenset({"float", "int", "min", "max", "abs", "round"})
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_GROWING = (ast.Pow, ast.LShift)
EXAMPLE = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor"


def _refuse(formula: str, why: str, field: str = "bantime_increment.formula") -> InvalidInput:
    if field.endswith("factor"):
        return InvalidInput(f"{field}: {why}; a number from 0 to {MAX_FACTOR} is accepted (e.g. 1 or 2.5)",
                            code="invalid_body", details={"field": field, "factor": formula[:MAX_LENGTH]})
    return InvalidInput(f"{field}: {why}; only arithmetic on ban.Time, ban.Count and banFactor "
                        f"is accepted (e.g. {EXAMPLE})", code="invalid_body",
                        details={"field": field, "formula": formula[:MAX_LENGTH]})


class _Refused(Exception):
    """What `_walk` found off the grammar (the caller names the field)."""


def _function(node: ast.expr) -> str | None:
    """The accepted name of a called function, None for anything else."""
    if isinstance(node, ast.Name) and node.id in BUILTINS:
        return node.id
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math"
            and node.attr in MATH_FUNCTIONS):
        return f"math.{node.attr}"
    return None


def _has_growth(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, _GROWING) for n in ast.walk(node))


def _walk(node: ast.AST) -> None:
    """_Refused(why) unless every node is on the grammar."""
    if isinstance(node, ast.Expression):
        _walk(node.body)
    elif isinstance(node, ast.Constant):
        value = node.value
        if not isinstance(value, (int, float)) or isinstance(value, bool):  # not str, bytes, None, complex, ...
            raise _Refused(f"{value!r} is not a number")
        if abs(value) > MAX_LITERAL:
            raise _Refused(f"{node.value!r} is larger than {MAX_LITERAL}")
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _OPERATORS):
            raise _Refused(f"operator {type(node.op).__name__} is not arithmetic")
        if isinstance(node.op, _GROWING) and _has_growth(node.right):
            raise _Refused("a power or shift in an exponent grows without bound")
        _walk(node.left)
        _walk(node.right)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise _Refused(f"operator {type(node.op).__name__} is not arithmetic")
        _walk(node.operand)
    elif isinstance(node, ast.Name):
        if node.id not in NAMES:
            raise _Refused(f"unknown name {node.id!r}")
    elif isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id == "ban" and node.attr in BAN_FIELDS):
            raise _Refused(f"unknown attribute {node.attr!r}")
    elif isinstance(node, ast.Call):
        if _function(node.func) is None:
            raise _Refused("only calls of math functions (math.exp, math.log, ..., float, int, min, max, "
                           "abs, round) are allowed")
        if node.keywords:
            raise _Refused("function arguments are positional only")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _Refused("no * arguments")
            _walk(arg)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARE) for op in node.ops):
            raise _Refused("only < <= > >= == != comparisons")
        for part in (node.left, *node.comparators):
            _walk(part)
    elif isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _walk(part)
    else:
        raise _Refused(f"{type(node).__name__} is not allowed")


def _size(node: ast.AST) -> tuple[float, bool]:
    """(an upper bound of log2(|value| + 1), whether the value is certainly a float) of a node `_walk` accepted.
    Only integers cost time: a float stays below 2**FLOAT_BITS (an overflow raises at once), and an operation with
    a float operand is a float operation."""
    if isinstance(node, ast.Expression):
        return _size(node.body)
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))  # _walk refused the rest
        return math.log2(abs(node.value) + 1), isinstance(node.value, float)
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _NAME_BITS[node.id if isinstance(node, ast.Name) else node.attr], False
    if isinstance(node, ast.UnaryOp):
        return _size(node.operand)
    if isinstance(node, ast.Compare):
        return 1.0, False
    if isinstance(node, ast.IfExp):
        (body, body_float), (orelse, orelse_float) = _size(node.body), _size(node.orelse)
        return max(body, orelse), body_float and orelse_float
    if isinstance(node, ast.Call):
        return _call_size(str(_function(node.func)), [_size(arg) for arg in node.args])
    assert isinstance(node, ast.BinOp)
    (left, left_float), (right, right_float) = _size(node.left), _size(node.right)
    if left_float or right_float or isinstance(node.op, ast.Div):
        return FLOAT_BITS, True
    if isinstance(node.op, ast.Pow):
        return (left * 2.0 ** right if right < 64 else math.inf), False
    if isinstance(node.op, ast.LShift):
        return (left + 2.0 ** right if right < 64 else math.inf), False
    if isinstance(node.op, ast.Mult):
        return left + right, False
    return max(left, right) + 1, False  # + - // %


def _call_size(name: str, args: list[tuple[float, bool]]) -> tuple[float, bool]:
    widest = max(bits for bits, _ in args) if args else 0.0
    if name in ("math.ceil", "math.floor", "int", "round"):  # an int: of a float's size at most, or of the int's
        return widest + 1, False
    if name in ("min", "max", "abs"):
        return widest, all(is_float for _, is_float in args)
    return FLOAT_BITS, True  # float() and the other math functions


def _bounded(tree: ast.AST, text: str, field: str, limit: float) -> None:
    names = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}  # `math.exp`, `ban` of ban.Time: no values
    names |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.expr) and id(node) not in names and _size(node)[0] > limit:
            raise _refuse(text, f"{ast.unparse(node)[:60]} may grow beyond 2**{int(limit)}", field)


def _parse(text: str, field: str) -> ast.Expression:
    if not text.strip() or len(text) > MAX_LENGTH:
        raise _refuse(text, f"1 to {MAX_LENGTH} characters", field)
    if any(not ch.isprintable() for ch in text):
        raise _refuse(text, "control characters", field)  # a newline would also end the value in the .local file
    try:
        return ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise _refuse(text, "not a Python expression", field) from None


def check(formula: str, field: str = "bantime_increment.formula") -> str:
    """``formula`` unchanged when it is on the arithmetic grammar above; InvalidInput (400) otherwise."""
    tree = _parse(formula, field)
    try:
        _walk(tree)
    except _Refused as exc:
        raise _refuse(formula, str(exc), field) from None
    _bounded(tree, formula, field, MAX_BITS)
    return formula


def check_factor(factor: str, field: str = "bantime_increment.factor") -> str:
    """``factor`` unchanged when it is arithmetic on numbers only (fail2ban evals it as root when it reads it)
    with a value of at most MAX_FACTOR; InvalidInput (400) otherwise."""
    tree = _parse(factor, field)
    if any(isinstance(node, (ast.Name, ast.Attribute, ast.Call)) for node in ast.walk(tree)):
        raise _refuse(factor, "no names or calls", field)
    check(factor, field)
    if _size(tree)[0] > math.log2(MAX_FACTOR + 1):
        raise _refuse(factor, f"larger than {MAX_FACTOR}", field)
    return factor


# fail2ban's time values (`MyTime.str2seconds`: "1h 30m", "1year-6mo", "600"): it replaces the unit words by
# `*<seconds>` and eval()s the rest as root (bantime, findtime, bantime.maxtime/rndtime, dbpurgeage), so
# `bantime = __import__('os')...` runs. Accepted: numbers, these unit words, + - * / ( ) and spaces; no `**`.
_UNITS = frozenset({"s", "se", "sec", "second", "seconds", "ss", "m", "mi", "min", "minute", "minutes", "mm",
                    "h", "ho", "hou", "hour", "hours", "hh", "d", "da", "day", "days", "dd", "w", "we", "wee",
                    "week", "weeks", "ww", "mo", "mon", "month", "months", "y", "ye", "yea", "year", "years", "yy"})
_DURATION_TOKEN = re.compile(r"\s+|[0-9]+(?:\.[0-9]+)?|[-+*/()]|[A-Za-z]+|.")
MAX_DURATION_LENGTH = 100


def check_duration(value: str, field: str) -> str:
    """``value`` unchanged when it is a fail2ban time expression (numbers, unit words, + - * / and parentheses);
    InvalidInput (400) otherwise."""
    text = value.strip()
    why = None
    if not text or len(value) > MAX_DURATION_LENGTH:
        why = f"1 to {MAX_DURATION_LENGTH} characters"
    elif "**" in text.replace(" ", ""):
        why = "no powers"
    else:
        for token in _DURATION_TOKEN.findall(text):
            if token in (" ", "+", "-", "*", "/", "(", ")") or token[0] in "0123456789" or token.strip(" ") == "":
                continue
            if not (token.isascii() and token.isalpha() and token.lower() in _UNITS):
                why = f"{token!r} is not a number or a time unit"
                break
    if why is not None:
        raise InvalidInput(f"{field}: {why}; a time such as 600, 10m, 1h 30m or 1d is accepted",
                           code="invalid_body", details={"field": field, "value": value[:MAX_LENGTH]})
    return value


# the jail options fail2ban eval()s, and their checks
EVALUATED: dict[str, Callable[[str, str], str]] = {
    "bantime.formula": check, "bantime.factor": check_factor, "bantime": check_duration,
    "findtime": check_duration, "bantime.maxtime": check_duration, "bantime.rndtime": check_duration}


def evaluated_problem(values: dict[str, dict[str, str]]) -> tuple[str, str, str] | None:
    """(jail, option, why) for the first value of an eval()ed option that is off the grammar, None when all pass.
    ``values``: jail -> {option: value}, as fail2ban would read them (f2b/engine.py `check`), or from a command
    stream (`stream_values`)."""
    for jail, options in sorted(values.items()):
        for key, checker in EVALUATED.items():
            if options.get(key) is None:
                continue
            try:
                checker(str(options[key]), f"{jail} {key}")
            except InvalidInput as exc:
                return jail, key, exc.message
    return None


def stream_values(stream: list[list[object]]) -> dict[str, dict[str, str]]:
    """jail -> {option: value} of the eval()ed options a command stream sets (`set <jail> <option> <value>`)."""
    values: dict[str, dict[str, str]] = {}
    for cmd in stream:
        if len(cmd) == 4 and cmd[0] == "set" and cmd[2] in EVALUATED:
            values.setdefault(str(cmd[1]), {})[str(cmd[2])] = str(cmd[3])
    return values
