"""Dialogs of the analysis screens (runs browser, evaluation, comparison):
a read-only info panel, a config diff, export options, run picker; their yes/no
questions are the app's one ConfirmDialog (tui/dialogs/confirm.py, re-exported here).

Every dialog works from the keyboard alone (the keys are in its footer
line) and escape always cancels without changing anything.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from nsm.text import plain
from tui.dialogs.base import DIALOG_CSS
from tui.dialogs.confirm import ConfirmDialog

__all__ = ["ConfirmDialog", "ExportDialog", "InfoDialog", "PickRunsDialog", "config_diff_table", "config_table"]



class InfoDialog(ModalScreen[None]):
    """A read-only panel (a config, a diff); escape, q or enter closes it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="InfoDialog") + """
    InfoDialog VerticalScroll {
        height: auto;
        max-height: 20;
    }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
        Binding("enter", "close", "Close", show=False),
    ]

    def __init__(self, title: str, body: Any, hint: str = "escape: close"):
        super().__init__()
        self.title_text = title
        self.body = body
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(self.body, id="info-body")
            yield Label(self.hint, classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)


def config_table(config: Mapping[str, Any]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("setting")
    table.add_column("value")
    for key, value in config.items():
        if key != "schema_version":
            table.add_row(Text(plain(key)), Text(plain(value)))
    return table


def config_diff_table(names: Sequence[str], differences: Mapping[str, Mapping[str, Any]], refs: Sequence[str]) -> Table | Text:
    """Rows of the settings that differ between runs `refs` (shown as `names`)."""
    if not differences:
        return Text("The configs are identical (every setting has the same value).")
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("setting")
    for name in names:
        table.add_column(name, overflow="fold")
    for key, values in differences.items():
        table.add_row(Text(plain(key)), *(Text("(missing)", style="dim") if values.get(r) is None else Text(plain(values.get(r))) for r in refs))
    return table


class ExportDialog(ModalScreen["tuple[str, str] | None"]):
    """Pick an export format (csv, json, md report, all) and the folder."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ExportDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]
    FORMATS = (("csv", "CSV"), ("json", "JSON"), ("md", "Markdown report"), ("all", "All three"))

    def __init__(self, what: str, default_dir: str):
        super().__init__()
        self.what = what
        self.default_dir = default_dir

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Export {self.what}", classes="dialog-title")
            yield Label("Folder:")
            yield Input(self.default_dir, id="export-dir", placeholder="folder to write into")
            with Horizontal():
                for fmt, label in self.FORMATS:
                    yield Button(label, id=f"export-{fmt}")
            yield Label("tab: move  enter: choose  escape: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#export-csv", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        folder = self.query_one("#export-dir", Input).value.strip()
        if not folder:
            self.notify("Folder is empty: type the folder to write into", severity="error")
            return
        self.dismiss(((event.button.id or "").removeprefix("export-"), folder))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickRunsDialog(ModalScreen["list[str] | None"]):
    """Choose runs for a comparison: type to filter, space toggles, ctrl+s or
    the button compares, escape cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="PickRunsDialog") + """
    PickRunsDialog SelectionList {
        height: auto;
        max-height: 14;
    }
    PickRunsDialog Input {
        margin-bottom: 1;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "done", "Compare", show=False),
    ]

    def __init__(self, options: Iterable[tuple[str, str]], selected: Iterable[str] = ()):
        """`options`: (ref, label) pairs; `selected`: refs ticked at the start."""
        super().__init__()
        self.options = list(options)
        self.selected: list[str] = [r for r in selected if any(r == ref for ref, _ in self.options)]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Pick runs to compare", classes="dialog-title")
            yield Input(placeholder="filter by name, domain or status", id="pick-filter")
            yield SelectionList[str](*self._selections(""), id="pick-list")
            with Horizontal():
                yield Button("Compare (ctrl+s)", id="pick-done", variant="primary")
                yield Button("Cancel", id="pick-cancel")
            yield Label("type: filter  tab: to the list  space: tick  ctrl+s: compare  escape: cancel", classes="dialog-keys")

    def _selections(self, text: str) -> list[Selection[str]]:
        words = text.lower().split()
        return [
            Selection(label, ref, ref in self.selected)
            for ref, label in self.options
            if all(w in label.lower() for w in words)
        ]

    @on(Input.Changed, "#pick-filter")
    def _filter(self, event: Input.Changed) -> None:
        listing = self.query_one("#pick-list", SelectionList)
        listing.clear_options()
        listing.add_options(self._selections(event.value))

    @on(Input.Submitted, "#pick-filter")
    def _to_list(self) -> None:
        listing = self.query_one("#pick-list", SelectionList)
        listing.focus()
        if listing.highlighted is None and listing.option_count:
            listing.highlighted = 0

    @on(SelectionList.SelectionToggled)
    def _toggled(self, event: SelectionList.SelectionToggled) -> None:
        ref = event.selection.value
        if ref in self.selected:
            self.selected.remove(ref)
        else:
            self.selected.append(ref)

    @on(Button.Pressed, "#pick-done")
    def action_done(self) -> None:
        if not self.selected:
            self.notify("Tick at least one run (space), or escape to cancel", severity="warning")
            return
        self.dismiss(list(self.selected))

    @on(Button.Pressed, "#pick-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
