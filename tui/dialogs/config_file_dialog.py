"""Ask for a TOML config file: the config panel's save and load.

The dialog does the saving or loading itself (through `act`), so a problem
(no such file, a bad key) is shown under the path, in the CLI's words, and the
user can fix the path or cancel; the form is untouched until a load succeeds.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from nsm.text import plain
from tui.dialogs.base import DIALOG_CSS


class ConfigFileDialog(ModalScreen["str | None"]):
    """Returns the path that was saved or loaded, or None when cancelled.

    `act(path)` returns None when it worked, else the problem to show."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfigFileDialog") + """
    ConfigFileDialog {
        background: $background 60%;
    }
    ConfigFileDialog #config-file-problem {
        color: $error;
        width: 100%;
        height: auto;
        display: none;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, verb: str, default_path: str, act: Callable[[str], str | None]):
        super().__init__()
        self.dialog_title = title
        self.verb = verb
        self.default_path = default_path
        self.act = act

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(plain(self.dialog_title)), classes="dialog-title")
            yield Label("TOML file:")
            yield Input(self.default_path, id="config-file-path", placeholder="run.toml")
            yield Static("", id="config-file-problem")
            yield Label(f"enter: {self.verb}  escape: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#config-file-path", Input).focus()

    @on(Input.Submitted, "#config-file-path")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        problem = "type the path of a TOML file, e.g. run.toml" if not path else self.act(path)
        if problem is None:
            self.dismiss(path)
            return
        self.show_problem(problem)

    def show_problem(self, message: str) -> None:
        widget = self.query_one("#config-file-problem", Static)
        widget.update(Text(plain(message)))  # a path or a file's key can hold anything: never markup
        widget.display = True

    def action_cancel(self) -> None:
        self.dismiss(None)
