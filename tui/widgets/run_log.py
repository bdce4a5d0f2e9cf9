"""The run's log events and milestones (start, best epochs, checkpoints, the ending)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from nsm.execution.render import CLOCK_NOTE
from nsm.text import plain
from tui.live_run import MAX_LOG_LINES, LiveRun

LEVEL_STYLES = {"info": "", "event": "", "warning": "yellow", "error": "bold red", "dim": "dim"}


class RunLogPane(RichLog):
    DEFAULT_CSS = """
    RunLogPane {
        height: 5;
        background: $surface-darken-1;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, **kwargs: Any):
        super().__init__(max_lines=MAX_LOG_LINES, wrap=True, markup=False, auto_scroll=True, **kwargs)
        self._run_id: int | None = None
        self._shown = 0
        self.lines_text: list[str] = []  # plain copies (tests and the attach summary read them)

    def clear_run(self) -> None:
        self._run_id = None
        self._shown = 0
        self.lines_text.clear()
        self.clear()

    def note(self, text: str, level: str = "info") -> None:
        """A line from the dashboard itself (not from the run's events)."""
        self._write(Text(plain(text), style=LEVEL_STYLES.get(level, "")))

    def show(self, live: LiveRun) -> None:
        # serial, not id(): a new LiveRun may get the address of one already collected.
        if self._run_id != live.serial:
            self.clear_run()
            self._run_id = live.serial
            # The stamps are "+1m05s": say once which clock that is (the CLI says the same).
            self.note(f"({CLOCK_NOTE})", "dim")
        new = live.log_count - self._shown
        if new <= 0:
            return
        lines = list(live.logs)[-min(new, len(live.logs)) :]
        self._shown = live.log_count
        for line in lines:
            text = Text(no_wrap=False)
            text.append(live.log_time(line), style="dim")
            text.append(" ")
            text.append(plain(line.text), style=LEVEL_STYLES.get(line.level, ""))
            self._write(text)

    def _write(self, text: Text) -> None:
        self.lines_text.append(text.plain)
        del self.lines_text[:-MAX_LOG_LINES]
        self.write(text)
