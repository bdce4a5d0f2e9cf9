"""The dashboard's top line: run name, state, backend, device — and what to do next.

It fits its width (80 columns over ssh): parts are dropped by priority, never the run's name.
"""

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
        self._parts: tuple[Any, ...] = (None, "idle", None, None, "", "")

    def set_status(
        self,
        run: str | None,
        state: str,
        backend: str | None = None,
        device: str | None = None,
        extra: str = "",
        right: str = "",
    ) -> None:
        """One line that fits the widget: the run's name and state are never cut; where the
        line is too long, the backend's pid, the hint (`extra`), the backend, the device
        and then `right` (the chart page) are dropped, in that order."""
        # The run's device and backend come from its files: literal characters only.
        self._parts = tuple(plain(p) if p else p for p in (run, state, backend, device, extra, right))
        self._render_line()

    def on_resize(self) -> None:
        self._render_line()

    def _render_line(self) -> None:
        run, state, backend, device, extra, right = self._parts
        width = self.content_region.width or 80
        key = (*self._parts, width)
        if key == self._key:
            return
        self._key = key
        shown = self._fit(width, run, state, backend, device, extra, right)
        text = self._line(run, state, shown["backend"], shown["device"], shown["extra"])
        # What the line says in full (tests and logs read it), whatever was left out for room.
        self._plain = self._line(run, state, backend, device, extra).plain + (f" {right}" if right else "")
        right = shown["right"]
        if not right:
            self.update(text, layout=False)
            return
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True, justify="right")
        grid.add_row(text, Text(f" {right}", style="bold"))
        self.update(grid, layout=False)

    @staticmethod
    def _line(run: str | None, state: str, backend: str | None, device: str | None, extra: str) -> Text:
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
        return text

    @staticmethod
    def _fit(width: int, run: str | None, state: str, backend: str | None, device: str | None, extra: str, right: str) -> dict[str, Any]:
        shown: dict[str, Any] = {"backend": backend, "device": device, "extra": extra, "right": right}

        def length() -> int:
            n = len(run) + 3 if run else len("nsm-tui ")
            n += len(state)
            n += sum(len(shown[k]) + 3 for k in ("backend", "device", "extra") if shown[k])
            return n + (len(shown["right"]) + 1 if shown["right"] else 0)

        if backend and " (pid " in backend and length() > width:
            shown["backend"] = backend.split(" (pid ", 1)[0]
        for part in ("extra", "backend", "device", "right"):
            if length() <= width:
                break
            shown[part] = None if part != "extra" else ""
        return shown

    @property
    def plain(self) -> str:
        return getattr(self, "_plain", "")
