"""What every small dialog shares: a centred box, a row of buttons, one explicit default.

Every question of the app is one of these (ConfirmDialog for yes/no, tui/dialogs/confirm.py),
so a key means the same everywhere: the default button has the focus when the dialog
opens and is marked `▶`; the mark follows the focus (tab, arrows); enter presses the
marked button; each button's letter presses it; escape cancels.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

T = TypeVar("T")
MARK = "▶ "

# The look every panel dialog shares; `.format(name=...)` with the dialog class name.
DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 90%;
    max-width: 100;
    height: auto;
    max-height: 90%;
    border: thick $primary;
    background: $panel;
    padding: 0 1;
}}
{name} .dialog-title {{
    text-style: bold;
    width: 100%;
    margin-bottom: 1;
}}
{name} .dialog-keys {{
    color: $text-muted;
    width: 100%;
    margin-top: 1;
}}
{name} Horizontal {{
    height: auto;
    align-horizontal: right;
}}
{name} Button {{
    margin-left: 1;
}}
"""


class ChoiceDialog(ModalScreen[T], Generic[T]):
    """A question and a row of buttons; each button's value is what the dialog returns.

    `choices` are (value, label, key, variant, enabled); `default` is the value of the
    button focused (and marked) at the start; the key presses the button, escape
    returns `cancel_value`.
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
    ChoiceDialog .dialog-keys {
        color: $text-muted;
        width: 1fr;
        margin-top: 1;
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

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("left", "app.focus_previous", show=False),
        Binding("right", "app.focus_next", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: str,
        choices: list[tuple[T, str, str, str, bool]],
        cancel_value: T,
        note: str = "",
        *,
        default: T,
        body_id: str = "dialog-body",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.dialog_title = title
        self.body = body
        self.note = note
        self.choices = choices
        self.cancel_value = cancel_value
        self.body_id = body_id
        enabled = [value for value, _l, _k, _v, ok in choices if ok]
        if default not in enabled:
            raise ValueError(f"the default choice {default!r} is not one of the enabled choices {enabled!r}")
        self.default = default
        self._by_key = {key: value for value, _label, key, _variant, ok in choices if key and ok}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.dialog_title, classes="dialog-title", markup=False)
            yield Static(self.body, classes="dialog-body", id=self.body_id, markup=False)
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            with Horizontal():
                for i, (value, _label, _key, variant, enabled) in enumerate(self.choices):
                    yield Button(
                        self._label(i, value == self.default),
                        id=f"choice-{i}",
                        variant=variant,  # type: ignore[arg-type]
                        disabled=not enabled,
                        compact=True,
                    )
            yield Static("enter: the ▶ button · tab/←/→: move · esc: cancel", classes="dialog-keys")

    def _label(self, index: int, marked: bool) -> str:
        _value, label, key, _variant, _enabled = self.choices[index]
        text = f"{label} ({key})" if key else label
        # The unmarked keep the mark's width: the buttons do not shift as the mark moves.
        return (MARK if marked else " " * len(MARK)) + text

    def _index(self, button: Button) -> int:
        return int((button.id or "choice-0").split("-")[1])

    def on_mount(self) -> None:
        index = next(i for i, choice in enumerate(self.choices) if choice[0] == self.default)
        self.query_one(f"#choice-{index}", Button).focus()

    def on_descendant_focus(self, event: Any) -> None:
        # The mark follows the focus: enter presses the marked button, whichever it is.
        focused = event.widget if isinstance(event.widget, Button) else None
        for button in self.query(Button):
            button.label = self._label(self._index(button), button is focused)

    @property
    def marked(self) -> T | None:
        """The value of the button enter would press now."""
        focused = self.focused
        return self.choices[self._index(focused)][0] if isinstance(focused, Button) else None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.choices[self._index(event.button)][0])

    def on_key(self, event: Any) -> None:
        if event.key in self._by_key:
            event.stop()
            self.dismiss(self._by_key[event.key])

    def action_cancel(self) -> None:
        self.dismiss(self.cancel_value)
