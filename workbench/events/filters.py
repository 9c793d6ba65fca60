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

This module holds the compiled :class:`Filter`; the language's parts live beside it: the parser
and its checks (``filter_parse``), the evaluator and its operators (``filter_eval``), what the
names stand for in an event (``filter_fields``) and the functions (``filter_functions``).
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Callable, Mapping

from workbench.broker import Event
from workbench.events.filter_eval import Evaluator
from workbench.events.filter_fields import NAMES, NEEDS_VALUE, Scope
from workbench.events.filter_functions import FUNCTIONS
from workbench.events.filter_parse import MAX_LENGTH, FilterError, parse
from workbench.events.redaction import filter_view_of

__all__ = ["FUNCTIONS", "MAX_LENGTH", "NAMES", "Filter", "FilterError", "compile_filter", "expand_named"]


class Filter:
    """A compiled filter. :meth:`matches` is safe to call from several threads."""

    __slots__ = ("_evaluator", "_lock", "_told", "_tree", "names", "on_mismatch", "text")

    def __init__(self, text: str, tree: ast.expr, names: frozenset[str]) -> None:
        self.text = text
        self.names = names  # the names the expression uses
        self._tree = tree
        self._evaluator = Evaluator()
        self._lock = threading.Lock()
        #: Told once, with :func:`~workbench.events.filter_eval.mismatch_text`, the first time an ordered comparison meets values
        #: of kinds that cannot be ordered (``value.amount > "x"`` on a number): silent otherwise.
        self.on_mismatch: Callable[[str], None] | None = None
        self._told = False

    def matches(self, event: Event) -> bool:
        """Whether the event matches; a failure while evaluating counts as no match. A redacted event
        is matched on what the [mask] rules let filters see (its filter view, else itself)."""
        scope = Scope(filter_view_of(event))
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
        return bool(self.names & NEEDS_VALUE)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def compile_filter(text: str) -> Filter:
    """Parse and check a filter expression once; raises :class:`FilterError`."""
    tree, names = parse(text)
    return Filter(text, tree, names)


#: A quoted string (kept as it is) or an ``@name`` reference.
_REFERENCE = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")|@([A-Za-z_][A-Za-z0-9_]*)""")
_MAX_DEPTH = 8


def expand_named(text: str, named: Mapping[str, str], _seen: tuple[str, ...] = ()) -> str:
    """``text`` with each ``@name`` (outside string literals) replaced by ``(its expression)``,
    named filters that name others included; raises :class:`FilterError` for an unknown name or a
    loop."""

    def put(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        name = match.group(2)
        if name not in named:
            known = ", ".join(f"@{n}" for n in sorted(named)) or "none (add a [filters] table to the profile file)"
            raise FilterError(f"no named filter @{name}; known: {known}", text, match.start() + 1)
        if name in _seen or len(_seen) >= _MAX_DEPTH:
            raise FilterError(f"named filter @{name} refers to itself ({' -> '.join(_seen + (name,))})", text)
        return f"({expand_named(named[name], named, (*_seen, name))})"

    return _REFERENCE.sub(put, text) if "@" in text else text
