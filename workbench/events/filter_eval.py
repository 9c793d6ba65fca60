"""How a checked ``--filter`` expression is evaluated: simpleeval with data-only semantics.

The operators are safe on hostile data (ordering mismatched types is False, ``in`` on a
non-container is False, no huge powers, no string formatting); the first ordered comparison of
unorderable kinds is noted, so a filter that can never match can say why.
"""

from __future__ import annotations

import ast
import operator as op
from collections.abc import Callable
from typing import Any

import simpleeval

from workbench.events.filter_fields import member
from workbench.events.filter_functions import FUNCTIONS

__all__ = ["OPERATORS", "Evaluator", "mismatch_text"]


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


OPERATORS = {
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


class Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with data-only semantics for names, dots and subscripts.

    Names come from the event scope; ``a.b`` and ``a[b]`` only ever look up JSON data (never a
    Python attribute), returning None when missing. Because the compile step admits only the
    node types handled here, a name can only be data and a call only one of :data:`FUNCTIONS`,
    so the per-node result check of simpleeval (a recursive walk over every dict the expression
    touches) is skipped for speed.
    """

    def __init__(self) -> None:
        operators = dict(OPERATORS)
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
        return member(self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        return member(self._eval(node.value), self._eval(node.slice))
