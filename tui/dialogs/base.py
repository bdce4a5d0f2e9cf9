"""What every small dialog shares: a centred box, keys for each choice, escape cancels."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

T = TypeVar("T")


class ChoiceDialog(ModalScreen[T], Generic[T]):
    """A question and a row of buttons; each button's value is what the dialog returns.

    `choices` are (value, label, key, variant, enabled); the key presses the
    button, escape returns `cancel_value`.
    """

    DEFAULT_CSS = """
    ChoiceDialog {
        align: center middle;
        background: $background 60%;
    }
    ChoiceDialog > Vertical {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ChoiceDialog .dialog-title {
        text-style: bold;
        width: 1fr;
    }
    ChoiceDialog .dialog-body {
        width: 1fr;
        margin: 1 0;
    }
    ChoiceDialog .dialog-note {
        color: $warning;
        width: 1fr;
        margin-bottom: 1;
    }
    ChoiceDialog Horizontal {
        height: auto;
        width: 1fr;
        align-horizontal: center;
    }
    ChoiceDialog Button {
        margin: 0 1;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(
        self,
        title: str,
        body: str,
        choices: list[tuple[T, str, str, str, bool]],
        cancel_value: T,
        note: str = "",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.dialog_title = title
        self.body = body
        self.note = note
        self.choices = choices
        self.cancel_value = cancel_value
        self._by_key = {key: value for value, _label, key, _variant, enabled in choices if key and enabled}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.dialog_title, classes="dialog-title", markup=False)
            yield Static(self.body, classes="dialog-body", markup=False)
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            with Horizontal():
                for i, (_value, label, key, variant, enabled) in enumerate(self.choices):
                    text = f"{label} ({key})" if key else label
                    yield Button(text, id=f"choice-{i}", variant=variant, disabled=not enabled, compact=True)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        for i, (_v, _l, _k, _variant, enabled) in enumerate(self.choices):
            if enabled:
                self.query_one(f"#choice-{i}", Button).focus()
                break

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        index = int((event.button.id or "choice-0").split("-")[1])
        self.dismiss(self.choices[index][0])

    def on_key(self, event: Any) -> None:
        if event.key in self._by_key:
            event.stop()
            self.dismiss(self._by_key[event.key])

    def action_cancel(self) -> None:
        self.dismiss(self.cancel_value)
