"""The one check of `bantime.formula` before fail2ban sees it (issue 18).

fail2ban `compile()`s the formula and `eval()`s it as root at every ban, with jail.py's module globals in scope
(`math`, `random`, ...): `random._os.system(chr(116)+...)+ban.Time` passed a character-class regex and ran.
So the formula is parsed with `ast` and accepted only when every node is on an arithmetic grammar:

- numbers (int or float literals, at most MAX_LITERAL in size), `+ - * / // % ** <<` and unary `+ -`;
- the names fail2ban documents for it: `ban.Time`, `ban.Count`, `banFactor`;
- calls of a fixed list of math functions (`math.exp(...)`, `math.log(...)`, ..., `float`, `int`, `min`, `max`,
  `abs`, `round`), by those exact names, with positional arguments only;
- comparisons and `a if cond else b`, because fail2ban's own default formula caps the count with them:
  `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor`.

No other name, attribute, subscript, string, lambda or keyword gets through. A `**` or `<<` whose right side itself
holds a `**` or `<<` is refused too: such a tower (`9**9**9`) would keep fail2ban's root process busy at every ban.
"""

from __future__ import annotations

import ast

from errors import InvalidInput

MAX_LENGTH = 300
MAX_LITERAL = 10**6
NAMES = frozenset({"banFactor"})
BAN_FIELDS = frozenset({"Time", "Count"})  # ban.Time, ban.Count
MATH_FUNCTIONS = frozenset({"exp", "log", "log2", "log10", "sqrt", "pow", "ceil", "floor", "fabs"})
BUILTINS = frozenset({"float", "int", "min", "max", "abs", "round"})
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_GROWING = (ast.Pow, ast.LShift)
EXAMPLE = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor"


def _refuse(formula: str, why: str) -> InvalidInput:
    return InvalidInput(f"bantime_increment.formula: {why}; only arithmetic on ban.Time, ban.Count and banFactor "
                        f"is accepted (e.g. {EXAMPLE})", code="invalid_body",
                        details={"field": "bantime_increment.formula", "formula": formula[:MAX_LENGTH]})


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


def _walk(node: ast.AST, formula: str) -> None:
    if isinstance(node, ast.Expression):
        _walk(node.body, formula)
    elif isinstance(node, ast.Constant):
        value = node.value
        if not isinstance(value, (int, float)) or isinstance(value, bool):  # not str, bytes, None, complex, ...
            raise _refuse(formula, f"{value!r} is not a number")
        if abs(value) > MAX_LITERAL:
            raise _refuse(formula, f"{node.value!r} is larger than {MAX_LITERAL}")
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _OPERATORS):
            raise _refuse(formula, f"operator {type(node.op).__name__} is not arithmetic")
        if isinstance(node.op, _GROWING) and _has_growth(node.right):
            raise _refuse(formula, "a power or shift in an exponent grows without bound")
        _walk(node.left, formula)
        _walk(node.right, formula)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise _refuse(formula, f"operator {type(node.op).__name__} is not arithmetic")
        _walk(node.operand, formula)
    elif isinstance(node, ast.Name):
        if node.id not in NAMES:
            raise _refuse(formula, f"unknown name {node.id!r}")
    elif isinstance(node, ast.Attribute):
        if not (isinstance(node.value, ast.Name) and node.value.id == "ban" and node.attr in BAN_FIELDS):
            raise _refuse(formula, f"unknown attribute {node.attr!r}")
    elif isinstance(node, ast.Call):
        if _function(node.func) is None:
            raise _refuse(formula, "only calls of math functions (math.exp, math.log, ..., float, int, min, max, "
                                   "abs, round) are allowed")
        if node.keywords:
            raise _refuse(formula, "function arguments are positional only")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _refuse(formula, "no * arguments")
            _walk(arg, formula)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARE) for op in node.ops):
            raise _refuse(formula, "only < <= > >= == != comparisons")
        for part in (node.left, *node.comparators):
            _walk(part, formula)
    elif isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _walk(part, formula)
    else:
        raise _refuse(formula, f"{type(node).__name__} is not allowed")


def check(formula: str) -> str:
    """``formula`` unchanged when it is on the arithmetic grammar above; InvalidInput (400) otherwise."""
    if not formula.strip() or len(formula) > MAX_LENGTH:
        raise _refuse(formula, f"1 to {MAX_LENGTH} characters")
    if any(not ch.isprintable() for ch in formula):
        raise _refuse(formula, "control characters")  # a newline would also end the value in the .local file
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise _refuse(formula, "not a Python expression") from None
    _walk(tree, formula)
    return formula
