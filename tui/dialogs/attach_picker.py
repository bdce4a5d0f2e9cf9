"""Pick a run to follow: every run in the store, newest first, running ones marked."""

from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from nsm.runs import RunSummary
from tui.live_run import fmt_num
from tui.widgets.status_line import STATE_STYLES


def describe_run(s: RunSummary) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    ref = s.ref if len(s.ref) <= 32 else s.ref[:31] + "…"
    text.append(f"{ref:<32} ", style="bold")
    text.append(f"{s.status:<11} ", style=STATE_STYLES.get(s.status, ""))
    epochs = f"{s.epoch}/{s.epochs}" if s.epochs else str(s.epoch)
    text.append(f"ep {epochs:<9} ")
    if s.best_val_loss is not None:
        text.append(f"val {fmt_num(s.best_val_loss)}", style="dim")
    if s.problem:
        text.append(f"  ({s.problem})", style="yellow")
    return text


class AttachPicker(ModalScreen[str | None]):
    """Returns the chosen run's `domain/name`, or None."""

    DEFAULT_CSS = """
    AttachPicker {
        align: center middle;
        background: $background 60%;
    }
    AttachPicker > Vertical {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    AttachPicker .dialog-title {
        text-style: bold;
    }
    AttachPicker OptionList {
        height: auto;
        max-height: 16;
        margin: 1 0;
    }
    AttachPicker .hint {
        color: $text-muted;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, runs: Sequence[RunSummary], root: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.runs = list(runs)
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Attach to a run", classes="dialog-title")
            if self.runs:
                yield OptionList(*(Option(describe_run(s), id=s.ref) for s in self.runs), id="runs")
                yield Static("enter: follow it · esc: cancel", classes="hint")
            else:
                yield Static(f"\nno runs in {self.root} yet: start one from the config panel (s)\n", markup=False)
                yield Static("esc: close", classes="hint")

    def on_mount(self) -> None:
        if self.runs:
            self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
