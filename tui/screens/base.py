"""The base of every screen of the app: the one place where single-key actions
are refused while a form control has focus (tui/keys.py says why).

A screen says which of its actions apply now in `action_applies` (False hides the
key, None shows it greyed out), never by overriding `check_action`.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

from tui.keys import FORM_CONTROLS, blocked_while_editing, editing_control


class AppScreen(Screen[None]):
    # A screen that binds escape itself (the dashboard, the runs browser) leaves its forms its own way.
    BINDINGS = [Binding("escape", "leave_form", "Keys", tooltip="leave the form: the single-letter keys work again")]
    palette_running = False  # set while the command palette runs one of this screen's actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_form":
            return editing_control(self) is not None
        if blocked_while_editing(self, action):
            return False
        return self.action_applies(action, parameters)

    def action_leave_form(self) -> None:
        """To the first control that is not a form (a table, the tabs), else to nothing: letters act again."""
        for widget in self.focus_chain:
            if not isinstance(widget, FORM_CONTROLS):
                widget.focus()
                return
        self.set_focus(None)

    def action_applies(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True

    @property
    def store(self) -> Any:
        return self.app.context.store  # type: ignore[attr-defined]

    async def run_from_palette(self, action: str) -> bool:
        """Run `action` (as a binding names it) for the command palette: the typing rule is off,
        since no key was typed; `action_applies` still decides. True when it ran."""
        self.palette_running = True
        try:
            return bool(await self.app.run_action(action, self))  # the app's says whether it ran
        finally:
            self.palette_running = False


def cursor_key(table: Any) -> str | None:
    """The row key under a DataTable's cursor, or None when it is empty (or mid-rebuild)."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # the rows were replaced under the cursor
        return None
