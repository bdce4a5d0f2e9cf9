"""A checkbox that reads as on or off without colour: "▐X▌ on" / "▐ ▌ off".

Textual's Checkbox always draws its X and tells on from off by colour alone, which a
monochrome terminal (or a colour-blind user) cannot see.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Checkbox


class OnOffCheckbox(Checkbox):
    def __init__(self, value: bool = False, on: str = "on", off: str = "off", **kwargs: Any):
        self.on_text, self.off_text = on, off
        super().__init__(on if value else off, value, **kwargs)
        self._show(value)

    def watch_value(self) -> None:
        super().watch_value()
        self._show(self.value)

    def _show(self, value: bool) -> None:
        self.BUTTON_INNER = "X" if value else " "
        self.label = self.on_text if value else self.off_text
