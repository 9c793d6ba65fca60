"""A one-line label that repaints only when its text changes (it is updated many times a second)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Line(Static):
    """A Static of fixed height 1: updates never need a new layout, and equal text is not repainted."""

    DEFAULT_CSS = "Line { height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Text | None = None

    def show(self, text: Text) -> None:
        if self._shown is not None and text == self._shown and text.spans == self._shown.spans:
            return
        self._shown = text
        self.update(text, layout=False)
