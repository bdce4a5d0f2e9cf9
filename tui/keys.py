"""The one rule for single-key actions: they never fire while a form control has focus.

Textual hands a printable key to a focused Input first, but a Button, Checkbox or
Select lets letters through to the screen's bindings: typing a run name with the
focus on the Start button used to hide the panel (`c`) and try a resume (`r`).
Every screen (tui/screens/base.py) asks `blocked_while_editing` in `check_action`,
so such a binding is neither run nor shown in the footer until the focus leaves the
form (escape, or a click elsewhere); ctrl keys, F-keys, enter and escape still work.
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any

from textual.keys import _character_to_key
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Select, SelectionList, Switch, TextArea

# Controls a user types into or operates with the keyboard: a letter aimed at them
# must never reach a screen's binding. (Tables, lists and charts are not forms: the
# runs table's letters are its keys.)
FORM_CONTROLS: tuple[type, ...] = (Input, TextArea, Button, Checkbox, RadioButton, Switch, Select, SelectionList, RadioSet)


@lru_cache(maxsize=1)
def typing_keys() -> frozenset[str]:
    """Textual's names of every printable ASCII key ("s", "R", "1", "space", "slash", ...)."""
    chars = string.ascii_letters + string.digits + string.punctuation + " "
    return frozenset({*chars, *(_character_to_key(c) for c in chars)})


def is_typing_key(key: str) -> bool:
    return key in typing_keys()


def editing_control(screen: Any) -> Any:
    """The form control that has the focus on `screen` (or holds it, like an open Select), else None."""
    focused = getattr(screen, "focused", None)
    if focused is None:
        return None
    for node in focused.ancestors_with_self:
        if isinstance(node, FORM_CONTROLS):
            return node
        if node is screen:
            break
    return None


def typing_keys_of(node: Any, action: str) -> list[str]:
    """The printable keys that `node`'s bindings (keymap included) bind to `action`."""
    bindings = getattr(node, "_bindings", None)  # the node's bindings after the app's keymap
    key_to_bindings = getattr(bindings, "key_to_bindings", {})
    return [
        key
        for key, items in key_to_bindings.items()
        if is_typing_key(key) and any(_action_name(b.action) == action for b in items)
    ]


def blocked_while_editing(screen: Any, action: str) -> bool:
    """True when `action` is bound to a printable key of `screen` and a form control has focus."""
    if getattr(screen, "palette_running", False):
        return False  # the command palette asked for it by name: no key was typed
    return bool(typing_keys_of(screen, action)) and editing_control(screen) is not None


def _action_name(action: str) -> str:
    """"chart_page(1)" -> "chart_page"; "app.quit" keeps its namespace off too."""
    return action.split("(", 1)[0].rsplit(".", 1)[-1]
