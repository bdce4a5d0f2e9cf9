"""The dashboard's top line: run name, state, backend, device — and what to do next."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from nsm.text import plain

STATE_STYLES = {
    "running": "bold green",
    "starting": "bold cyan",
    "stopping": "bold yellow",
    "finished": "bold blue",
    "interrupted": "bold yellow",
    "failed": "bold red",
    "stale": "bold magenta",
    "deleted": "bold red",
    "created": "dim",
    "idle": "dim",
}


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        width: 1fr;
        background: $panel;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs: Any):
        super().__init__("", **kwargs)
        self._key: tuple[Any, ...] | None = None

    def set_status(
        self,
        run: str | None,
        state: str,
        backend: str | None = None,
        device: str | None = None,
        extra: str = "",
        right: str = "",
    ) -> None:
        """`right` stays visible at the right edge however long the rest is."""
        key = (run, state, backend, device, extra, right)
        if key == self._key:
            return
        self._key = key
        # The run's device and backend come from its files: literal characters only.
        run, state, backend, device, extra, right = (plain(p) if p else p for p in key)
        text = Text(no_wrap=True, overflow="ellipsis")
        if not run:
            text.append("nsm-tui ", style="bold")
        if run:
            text.append(run, style="bold")
            text.append(" · ")
        state_word = state.split(" ", 1)[0]
        text.append(state, style=STATE_STYLES.get(state_word, "bold"))
        for part in (backend, device):
            if part:
                text.append(" · ")
                text.append(part)
        if extra:
            text.append(" · ")
            text.append(extra, style="dim")
        self._plain = text.plain + (f" {right}" if right else "")
        if not right:
            self.update(text, layout=False)
            return
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(text, Text(f" {right}", style="bold"))
        self.update(grid, layout=False)

    @property
    def plain(self) -> str:
        return getattr(self, "_plain", "")
