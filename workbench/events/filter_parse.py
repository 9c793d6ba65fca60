"""How a ``--filter`` expression is parsed and checked before it ever meets an event.

Python's own parser reads it; the check admits only the node types the evaluator handles, known
names and functions, and a bounded depth. Every refusal is a :class:`FilterError` that points at
the column with a caret, with advice where a common mistake (``=``, a statement) is likely.
"""

from __future__ import annotations

import ast
import difflib
import re
import unicodedata
import warnings

from workbench.events.filter_eval import OPERATORS
from workbench.events.filter_fields import NAMES
from workbench.events.filter_functions import ARITY, FUNCTIONS, cached_regex
from workbench.events.text import safe_text

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "FilterError", "parse"]

MAX_LENGTH = 2000
MAX_DEPTH = 64  # nesting of the expression tree
_WINDOW = 100  # characters of the expression shown in an error


class FilterError(ValueError):
    """A filter that cannot be compiled.

    ``text`` is the expression, ``line``/``column`` (1-based, in characters) where the problem is,
    ``reason`` the bare message; ``str(exc)`` renders the message, the line and a caret under the
    column.
    """

    def __init__(self, reason: str, text: str, column: int = 1, line: int = 1) -> None:
        self.reason = reason
        self.text = text
        self.line = line
        self.column = column
        super().__init__(_render(reason, text, line, column))


def _width(s: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _render(reason: str, text: str, line: int, column: int) -> str:
    lines = text.split("\n") or [""]
    line = min(max(line, 1), len(lines))
    source = lines[line - 1]
    where = f"line {line}, column {column}" if len(lines) > 1 else f"column {column}"
    start = 0
    if len(source) > _WINDOW:  # show a window around the column
        start = max(0, min(column - 1 - _WINDOW // 2, len(source) - _WINDOW))
    before = source[start : max(column - 1, start)]
    shown = source[start : start + _WINDOW]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + _WINDOW < len(source) else ""
    caret = " " * (_width(prefix) + _width(safe_text(before)))
    return f"filter error at {where}: {reason}\n  {prefix}{safe_text(shown)}{suffix}\n  {caret}^"


# Everything the evaluator may meet; anything else is rejected at compile time.
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Constant,
    ast.List,
    ast.Tuple,
    *OPERATORS,
)

_DESCRIPTIONS = {
    ast.Lambda: "lambda functions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.Dict: "dict literals",
    ast.Set: "set literals (use a list)",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.BitAnd: "bitwise operators (use 'and')",
    ast.BitOr: "bitwise operators (use 'or')",
    ast.BitXor: "bitwise operators",
    ast.Invert: "bitwise operators (use 'not')",
    ast.LShift: "bitwise operators",
    ast.RShift: "bitwise operators",
    ast.MatMult: "the @ operator",
}


def _char_column(text: str, lineno: int, byte_offset: int) -> int:
    """1-based character column of an AST node (``col_offset`` counts UTF-8 bytes)."""
    lines = text.split("\n")
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", "ignore")) + 1


def _at(node: ast.AST, text: str, reason: str) -> FilterError:
    lineno = getattr(node, "lineno", 1)
    column = _char_column(text, lineno, getattr(node, "col_offset", 0))
    return FilterError(reason, text, column, lineno)


def _syntax_error(exc: SyntaxError, text: str) -> FilterError:
    lines = text.split("\n")
    lineno = exc.lineno or 1
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    column = exc.offset if exc.offset and exc.offset > 0 else len(line) + 1
    if exc.lineno is None and "\0" in text:
        lineno, column = text[: text.index("\0")].count("\n") + 1, 1
        column = text.index("\0") - text.rfind("\n", 0, text.index("\0"))
    reason = exc.msg or "invalid syntax"
    # Statements give better advice than "invalid syntax".
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        module = None
    if module is not None and module.body:
        statement = module.body[0]
        if isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            reason = "assignment is not allowed (did you mean '==' ?)"
            target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
            lineno = target.end_lineno or 1
            after = _char_column(text, lineno, target.end_col_offset or 0) - 1
            line_text = text.split("\n")[lineno - 1]
            equals = line_text.find("=", after)
            column = equals + 1 if equals >= 0 else after + 1
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            reason, column, lineno = "import is not allowed: a filter is one expression", 1, 1
        elif len(module.body) > 1:
            reason = "a filter is one expression"
        else:
            reason = f"{type(statement).__name__.lower()} statements are not allowed: a filter is one expression"
    return FilterError(reason, text, max(column, 1), lineno)


def _depth(node: ast.AST, limit: int) -> int:
    """Depth of the tree, iteratively (so a hostile expression cannot overflow the stack)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _check(tree: ast.Expression, text: str) -> frozenset[str]:
    used: set[str] = set()
    called: set[int] = set()  # ids of Name nodes in call position
    if _depth(tree, MAX_DEPTH) > MAX_DEPTH:
        raise FilterError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", text)
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            what = _DESCRIPTIONS.get(type(node), type(node).__name__)
            raise _at(node, text, f"{what} not allowed in a filter")
        if isinstance(node, ast.Name):
            if id(node) in called:
                continue
            if node.id not in NAMES:
                if node.id in FUNCTIONS:
                    raise _at(node, text, f"{node.id!r} is a function: call it, {node.id}(...)")
                close = difflib.get_close_matches(node.id, NAMES, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise _at(node, text, f"unknown name {node.id!r}; {hint}names: {', '.join(NAMES)}")
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__"):
                raise _at(
                    node,
                    text,
                    f'access to {node.attr!r} is not allowed (use ["{node.attr}"] for a JSON member)',
                )
        elif isinstance(node, ast.Call):
            _check_call(node, text)
            called.add(id(node.func))
    return frozenset(used)


def _check_call(node: ast.Call, text: str) -> None:
    if not isinstance(node.func, ast.Name):
        raise _at(node, text, f"method calls are not allowed; use a function: {', '.join(FUNCTIONS)}")
    name = node.func.id
    if name not in FUNCTIONS:
        close = difflib.get_close_matches(name, FUNCTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise _at(node.func, text, f"unknown function {name!r}; {hint}functions: {', '.join(FUNCTIONS)}")
    if node.keywords:
        raise _at(node.keywords[0], text, f"keyword arguments are not allowed ({name})")
    expected = ARITY.get(name, 1)
    if len(node.args) != expected:
        plural = "s" if expected > 1 else ""
        raise _at(node, text, f"{name}() takes {expected} argument{plural}, got {len(node.args)}")
    if name == "matches":
        pattern = node.args[1]
        if isinstance(pattern, ast.Constant):
            if not isinstance(pattern.value, str):
                raise _at(pattern, text, "matches() needs a regular expression string")
            try:
                cached_regex(pattern.value)
            except re.error as exc:
                raise _at(pattern, text, f"invalid regular expression: {exc}") from None


def parse(text: str) -> tuple[ast.expr, frozenset[str]]:
    """The checked expression tree of a filter and the names it uses; raises :class:`FilterError`."""
    if not isinstance(text, str):
        raise FilterError("a filter must be text", repr(text))
    if len(text) > MAX_LENGTH:
        raise FilterError(
            f"the filter is too long ({len(text)} characters, at most {MAX_LENGTH})",
            text,
            MAX_LENGTH + 1,
        )
    source = text.lstrip()
    if not source.strip():
        raise FilterError("the filter is empty", text)
    lead = text[: len(text) - len(source)]
    lines_before = lead.count("\n")
    indent = len(lead) - lead.rfind("\n") - 1

    def moved(exc: FilterError) -> FilterError:
        """The error with its position in ``text`` (the parser saw ``source``)."""
        column = exc.column + indent if exc.line == 1 else exc.column
        return FilterError(exc.reason, text, column, exc.line + lines_before)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for invalid escapes
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise moved(_syntax_error(exc, source)) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "null characters are not allowed" if "null" in str(exc) else "the expression is too complex"
        column = text.find("\0") + 1 if "\0" in text else 1
        raise FilterError(reason, text, column) from None
    try:
        names = _check(tree, source)
    except FilterError as exc:
        raise moved(exc) from None
    return tree.body, names
