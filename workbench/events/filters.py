"""``--filter`` expressions over the event envelope.

A filter is one Python-syntax expression, evaluated with `simpleeval
<https://github.com/danthedeckie/simpleeval>`_ (no home-made parser), e.g.::

    value.status == "failed" and value.amount > 100
    headers["source"] == "web" or startswith(key, "order-")
    matches(raw, "timeout|refused") and partition in [0, 1]
    type == "order.created" and correlation_id == "c-42"

Names (per event):

=================  ==========================================================================
``key``            the key as text (invalid UTF-8 replaced by U+FFFD), None without a key
``value``          the value parsed as JSON when it is JSON, else its text, None when binary/null
``raw``            the value as text (invalid UTF-8 replaced), None without a value
``headers``        ``{name: text}``, the last occurrence of each name
``topic``          the topic name; ``partition``, ``offset``: integers
``timestamp``      milliseconds since the epoch (int) or None; ``time``: ISO-8601 string or None
``type``           the CloudEvents ``type`` (binary or structured mode) or None
``correlation_id`` by the default rules of :mod:`workbench.events.correlation`
``true`` ``false`` ``null``  (and Python's ``True`` ``False`` ``None``)
=================  ==========================================================================

Dict members are reachable with dots (``value.order.id``) or subscripts (``value["order-id"]``,
``value.items[0]``). A missing member, index or a step through a non-object is ``None`` instead of
an error; ordering comparisons with mismatched types (``None > 100``) and ``in`` on a non-container
are False. Any other failure while evaluating (``1 / 0``, ``int("x")``) makes the event not match.
Syntax errors, unknown names/functions and disallowed constructs are reported at compile time as
:class:`FilterError`, with the column and a caret.

Functions: ``len lower upper contains(a, b) startswith(s, prefix) endswith(s, suffix)
matches(text, regex)`` (``re.search``; compiled once and cached) ``int float str``. They return
None (predicates False) when given None.

Not allowed: attribute names starting with ``__``, method calls, lambdas, comprehensions,
f-strings, dict literals, walrus, starred arguments, keyword arguments, statements (``import``,
assignment), bitwise operators. Expressions are at most :data:`MAX_LENGTH` characters.
"""

from __future__ import annotations

import ast
import difflib
import functools
import operator as op
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable
from typing import Any

import simpleeval

from workbench.broker import Event
from workbench.events.codecs import Decoded, cloudevent_attributes, decode
from workbench.events.correlation import DEFAULT_RULES
from workbench.events.envelope import format_timestamp
from workbench.events.text import safe_text

__all__ = ["FUNCTIONS", "MAX_LENGTH", "NAMES", "Filter", "FilterError", "compile_filter"]

MAX_LENGTH = 2000
MAX_DEPTH = 64  # nesting of the expression tree
_WINDOW = 100  # characters of the expression shown in an error
_REGEX_CACHE = 256

#: The names a filter can use (constants included).
NAMES = (
    "key",
    "value",
    "raw",
    "headers",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "time",
    "type",
    "correlation_id",
    "true",
    "false",
    "null",
)
_NEEDS_VALUE = frozenset({"value", "type", "correlation_id"})


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


# --------------------------------------------------------------------------- functions


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def _len(value: Any) -> int | None:
    return None if value is None else len(value)


def _lower(value: Any) -> str | None:
    text = _text_or_none(value)
    return None if text is None else text.lower()


def _upper(value: Any) -> str | None:
    text = _text_or_none(value)
    return None if text is None else text.upper()


def _contains(container: Any, item: Any) -> bool:
    if container is None or item is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def _affixes(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return str(value)


def _startswith(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and prefix is not None and text.startswith(_affixes(prefix))


def _endswith(text: Any, suffix: Any) -> bool:
    return isinstance(text, str) and suffix is not None and text.endswith(_affixes(suffix))


@functools.lru_cache(maxsize=_REGEX_CACHE)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(text: Any, pattern: Any) -> bool:
    if text is None or pattern is None:
        return False
    text = _text_or_none(text) if not isinstance(text, str) else text
    return _regex(str(pattern)).search(text) is not None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


#: The functions a filter can call.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "lower": _lower,
    "upper": _upper,
    "contains": _contains,
    "startswith": _startswith,
    "endswith": _endswith,
    "matches": _matches,
    "int": _int,
    "float": _float,
    "str": _str,
}
_ARITY = {"contains": 2, "startswith": 2, "endswith": 2, "matches": 2}


# --------------------------------------------------------------------------- operators


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def safe(a: Any, b: Any) -> bool:
        try:
            return bool(compare(a, b))
        except TypeError:
            return False

    return safe


#: The ordered comparisons, whose type mismatches an evaluator notes (see Filter.on_mismatch).
_ORDERED = {ast.Lt: (op.lt, "<"), ast.LtE: (op.le, "<="), ast.Gt: (op.gt, ">"), ast.GtE: (op.ge, ">=")}
_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string", dict: "an object", list: "an array"}


def mismatch_text(a: Any, symbol: str, b: Any) -> str:
    """Why ``a SYMBOL b`` is false whatever the event: the values (cut short) and their kinds."""

    def kind(value: Any) -> str:
        return _KINDS.get(type(value), type(value).__name__)

    def shown(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    return (
        f"{shown(a)} {symbol} {shown(b)} compares {kind(a)} with {kind(b)}: such a comparison is false, "
        "so events like this never match"
    )


def _in(item: Any, container: Any) -> bool:
    if container is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def _safe_pow(a: Any, b: Any) -> Any:
    big = isinstance(a, int) and isinstance(b, int) and b > 0 and b * abs(a).bit_length() > 4096
    if big and abs(a) > 1:
        raise OverflowError("the result would be too large")
    return simpleeval.safe_power(a, b)


def _safe_mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise TypeError("string formatting is not available")
    return op.mod(a, b)


_OPERATORS = {
    ast.Add: simpleeval.safe_add,
    ast.Sub: op.sub,
    ast.Mult: simpleeval.safe_mult,
    ast.Div: op.truediv,
    ast.FloorDiv: op.floordiv,
    ast.Mod: _safe_mod,
    ast.Pow: _safe_pow,
    ast.Eq: op.eq,
    ast.NotEq: op.ne,
    ast.Lt: _ordered(op.lt),
    ast.LtE: _ordered(op.le),
    ast.Gt: _ordered(op.gt),
    ast.GtE: _ordered(op.ge),
    ast.In: _in,
    ast.NotIn: lambda a, b: not _in(a, b),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.Not: op.not_,
    ast.USub: op.neg,
    ast.UAdd: op.pos,
}

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
    *_OPERATORS,
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


# --------------------------------------------------------------------------- evaluation


class _Scope:
    """The names of one event, computed on first use (JSON is decoded only if needed)."""

    __slots__ = ("_cache", "_decoded", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._cache: dict[str, Any] = {}
        self._decoded: Decoded | None = None

    def decoded(self) -> Decoded:
        if self._decoded is None:
            self._decoded = decode(self.event.value)
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        result = _GETTERS[name](self)
        self._cache[name] = result
        return result


def _get_value(scope: _Scope) -> Any:
    decoded = scope.decoded()
    return decoded.value if decoded.kind in ("json", "text") else None


def _get_headers(scope: _Scope) -> dict[str, str]:
    return {name: bytes(value).decode("utf-8", "replace") for name, value in scope.event.headers}


def _get_type(scope: _Scope) -> str | None:
    decoded = scope.decoded()
    payload = decoded.value if decoded.kind == "json" else None
    return cloudevent_attributes(scope.event.headers, payload).get("type")


def _get_time(scope: _Scope) -> str | None:
    formatted = format_timestamp(scope.event.timestamp)
    return formatted if isinstance(formatted, str) else None


def _text(data: bytes | None) -> str | None:
    return None if data is None else bytes(data).decode("utf-8", "replace")


_GETTERS: dict[str, Callable[[_Scope], Any]] = {
    "key": lambda s: _text(s.event.key),
    "value": _get_value,
    "raw": lambda s: _text(s.event.value),
    "headers": _get_headers,
    "topic": lambda s: s.event.topic,
    "partition": lambda s: s.event.partition,
    "offset": lambda s: s.event.offset,
    "timestamp": lambda s: s.event.timestamp,
    "time": _get_time,
    "type": _get_type,
    "correlation_id": lambda s: DEFAULT_RULES.correlation_id(s.event, s.decoded()),
    "true": lambda s: True,
    "false": lambda s: False,
    "null": lambda s: None,
}
assert set(_GETTERS) == set(NAMES)


def _member(container: Any, key: Any) -> Any:
    """``container[key]``, or None when it is missing or the container is not a container."""
    if type(container) is dict:
        try:
            return container.get(key)
        except TypeError:  # unhashable key
            return None
    if isinstance(container, (list, str, tuple)):
        if isinstance(key, bool) or not isinstance(key, (int, slice)):
            return None
        try:
            return container[key]
        except (IndexError, ValueError, TypeError):
            return None
    return None


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with data-only semantics for names, dots and subscripts.

    Names come from the event scope; ``a.b`` and ``a[b]`` only ever look up JSON data (never a
    Python attribute), returning None when missing. Because the compile step admits only the
    node types handled here, a name can only be data and a call only one of :data:`FUNCTIONS`,
    so the per-node result check of simpleeval (a recursive walk over every dict the expression
    touches) is skipped for speed.
    """

    def __init__(self) -> None:
        operators = dict(_OPERATORS)
        for comparison, (compare, symbol) in _ORDERED.items():
            operators[comparison] = self._noting_mismatch(compare, symbol)
        super().__init__(operators=operators, functions=dict(FUNCTIONS), names={})
        for node_type in (ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.Dict, ast.Set):
            self.nodes.pop(node_type, None)
        self.mismatch: str | None = None  # the first comparison of two values of unorderable kinds

    def _noting_mismatch(self, compare: Callable[[Any, Any], bool], symbol: str) -> Callable[[Any, Any], bool]:
        """An ordered comparison that is false on a type mismatch, as before, and notes the first one
        (a missing field, None, is not a mismatch: it is simply no match)."""

        def safe(a: Any, b: Any) -> bool:
            try:
                return bool(compare(a, b))
            except TypeError:
                if self.mismatch is None and a is not None and b is not None:
                    self.mismatch = mismatch_text(a, symbol, b)
                return False

        return safe

    def _eval(self, node: ast.AST) -> Any:
        return self.nodes[type(node)](node)

    def _eval_name(self, node: ast.Name) -> Any:
        return self.names[node.id]

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        return _member(self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        return _member(self._eval(node.value), self._eval(node.slice))


# --------------------------------------------------------------------------- compile


class Filter:
    """A compiled filter. :meth:`matches` is safe to call from several threads."""

    __slots__ = ("_evaluator", "_lock", "_told", "_tree", "names", "on_mismatch", "text")

    def __init__(self, text: str, tree: ast.expr, names: frozenset[str]) -> None:
        self.text = text
        self.names = names  # the names the expression uses
        self._tree = tree
        self._evaluator = _Evaluator()
        self._lock = threading.Lock()
        #: Told once, with :func:`mismatch_text`, the first time an ordered comparison meets values
        #: of kinds that cannot be ordered (``value.amount > "x"`` on a number): silent otherwise.
        self.on_mismatch: Callable[[str], None] | None = None
        self._told = False

    def matches(self, event: Event) -> bool:
        """Whether the event matches; a failure while evaluating counts as no match."""
        scope = _Scope(event)
        with self._lock:
            evaluator = self._evaluator
            evaluator.names = scope
            try:
                return bool(evaluator.eval(self.text, previously_parsed=self._tree))
            except Exception:  # any failure on hostile data is "no match"
                return False
            finally:
                evaluator.names = {}
                if evaluator.mismatch is not None and not self._told and self.on_mismatch is not None:
                    self._told = True
                    self.on_mismatch(evaluator.mismatch)

    __call__ = matches

    @property
    def needs_value(self) -> bool:
        """Whether evaluation decodes the value (it mentions value, type or correlation_id)."""
        return bool(self.names & _NEEDS_VALUE)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


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
            if node.id not in _GETTERS:
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
    expected = _ARITY.get(name, 1)
    if len(node.args) != expected:
        plural = "s" if expected > 1 else ""
        raise _at(node, text, f"{name}() takes {expected} argument{plural}, got {len(node.args)}")
    if name == "matches":
        pattern = node.args[1]
        if isinstance(pattern, ast.Constant):
            if not isinstance(pattern.value, str):
                raise _at(pattern, text, "matches() needs a regular expression string")
            try:
                _regex(pattern.value)
            except re.error as exc:
                raise _at(pattern, text, f"invalid regular expression: {exc}") from None


def compile_filter(text: str) -> Filter:
    """Parse and check a filter expression once; raises :class:`FilterError`."""
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
    return Filter(text, tree.body, names)
