"""The app's one yes/no question: `ConfirmDialog` (a ChoiceDialog[bool]).

The default button is explicit at every call site (`default=True` or False), focused
at the start and marked ▶; enter presses it, y and n press their buttons, escape is
no. Questions that change or lose something (stop, delete, restart) default to the
choice that changes nothing, so an enter pressed out of habit is harmless.
"""

from __future__ import annotations

from typing import Any

from tui.dialogs.base import ChoiceDialog


class ConfirmDialog(ChoiceDialog[bool]):
    def __init__(
        self,
        title: str,
        message: str,
        confirm_label: str = "Yes",
        cancel_label: str = "Cancel",
        *,
        default: bool = False,
        danger: bool = False,
        note: str = "",
        confirm_variant: str | None = None,
        **kwargs: Any,
    ):
        variant = confirm_variant or ("error" if danger else "success")
        super().__init__(
            title,
            message,
            [(True, confirm_label, "y", variant, True), (False, cancel_label, "n", "primary", True)],
            cancel_value=False,
            note=note,
            default=default,
            body_id="confirm-message",
            **kwargs,
        )
